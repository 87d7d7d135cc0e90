"""What counting for drift costs a served model: the same 20-column DataFrame pipeline built
twice, with a reference sample (the template counts every batch over its bins) and without.

Run: ``uv run python -m benchmarks.drift_overhead [--duration 8] [--repeat 2]`` (needs ``wrk``).
Single-row requests at c=32, then 100-row batches at c=8; the server is pinned to CPU 0 and
wrk to CPU 1. Prints req/s, rows/s, p50, p99, and the ratio of counting to not counting.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.frame_serving import rows_json, table, train
from benchmarks.rounds import measure, print_table


def build(model_path: Path, reference: Path | None, name: str) -> str:
    from bentomesh_contracts.publish import build_model_registered
    from services.packager.pipeline import package

    data = build_model_registered(
        model_path, name=name, version="1", task="classification", reference_path=reference
    )
    return package(data, chain_id=name).built.bento_tag


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (servers interleaved)")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-bench-drift-"))
    os.environ.setdefault("BENTOML_HOME", str(workdir / "bentoml"))
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    os.environ["BENTOMESH_HOME"] = str(workdir / "mesh")
    print(f"workdir {workdir}\ntraining the pipeline and building two bentos ...", flush=True)
    model_path = train(workdir)
    from bentomesh_contracts.training import save_reference

    reference = save_reference(table(5000, 2), workdir / "artifacts" / "frame")
    py = sys.executable
    tags = {
        "counting (reference)": build(model_path, reference, "bench-drift-on"),
        "not counting": build(model_path, None, "bench-drift-off"),
    }
    one, hundred = rows_json(1), rows_json(100)
    servers = {
        name: ([py, "-m", "bentoml", "serve", tag, "--port", str(port)],
               f"http://127.0.0.1:{port}/predict_proba")
        for port, (name, tag) in enumerate(tags.items(), start=3121)
    }  # fmt: skip
    best = measure(
        servers, one, hundred, repeat=args.repeat, duration=args.duration, workdir=workdir
    )
    print_table(best, "not counting", "x off")
    print(f"\n(best of {args.repeat} interleaved rounds per server and workload)")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
