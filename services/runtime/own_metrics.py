"""Run a ``bentoml`` command with its Prometheus files in ``$PROMETHEUS_MULTIPROC_DIR``:
``python -m services.runtime.own_metrics bentoml serve TAG ...``.

BentoML keeps its workers' counters in ``$BENTOML_HOME/prometheus_multiproc_dir`` whatever that
variable says, and empties the directory whenever a server starts. Servers sharing a home would
wipe each other's counts (a running model's requests vanished from its ``/metrics`` the moment
another model started, so the monitor saw no traffic and no errors) and add up each other's.
Each server gets its own directory; its command line still reads ``bentoml serve TAG``.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> None:
    from bentoml._internal.configuration.containers import BentoMLContainer
    from bentoml_cli.cli import cli

    BentoMLContainer.prometheus_multiproc_dir.set(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    sys.argv = argv
    cli()


if __name__ == "__main__":
    main(sys.argv[1:])
