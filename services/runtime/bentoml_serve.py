"""``bentoml serve`` with a Prometheus directory of its own: ``python -m`` this ``DIR serve ...``.

BentoML keeps its workers' counters in ``$BENTOML_HOME/prometheus_multiproc_dir`` and empties
that directory whenever a server starts. Servers sharing a home would wipe each other's counts
(a running model's requests vanished from its ``/metrics`` the moment another model started, so
the monitor saw no traffic and no errors) and add up each other's. Each server gets its own.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    metrics_dir, *bentoml_args = argv
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml_cli.cli import cli

    BentoMLContainer.prometheus_multiproc_dir.set(metrics_dir)
    sys.argv = ["bentoml", *bentoml_args]
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
