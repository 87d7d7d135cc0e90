"""What counting for drift costs a served model: the same 20-column DataFrame pipeline built
twice, with a reference sample (the template counts every batch over its bins) and without.

Run: ``uv run python -m benchmarks.drift_overhead [--duration 8] [--repeat 2]`` (needs ``wrk``);
``--in-process`` times counting against the model's own call, without HTTP's noise.
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


def in_process(model_path: Path, reference: Path) -> None:
    """The cost without HTTP or scheduling noise: counting per row against the model's own
    call, both timed in this process on the same rows."""
    import time

    import joblib
    import numpy as np
    import pandas as pd

    from bentomesh_contracts.features import Feature
    from services.packager.profile import reference_profile
    from services.packager.templates.live import LiveProfile

    model = joblib.load(model_path)
    sample = pd.read_parquet(reference) if reference.suffix == ".parquet" else table(5000, 2)
    features = tuple(
        Feature(name=c, dtype="float" if pd.api.types.is_numeric_dtype(sample[c]) else "string")
        for c in sample
    )
    columns = {c: sample[c].tolist() for c in sample}
    profile = reference_profile(columns, features, model.predict(sample), "classification")
    for size in (1, 100):
        frame = table(size, 3)
        rows = frame.values.tolist()
        live = LiveProfile(profile, list(frame.columns))
        out = model.predict_proba(frame)
        # the wrapper around a call that costs nothing: what is timed is counting alone
        counting = live.watching(
            lambda batch, out=out: out,
            lambda proba: model.classes_[np.asarray(proba).argmax(axis=1)],
        )
        started = time.perf_counter()
        for _ in range(200):
            model.predict_proba(frame)
        model_s = (time.perf_counter() - started) / 200
        calls = 5120 // size * 4  # whole rounds of counting (512 rows each)
        started = time.perf_counter()
        for _ in range(calls):
            counting(rows)
        live.count_pending()  # what still waited is counted too
        extra = (time.perf_counter() - started) / calls
        assert live.errors == 0, live.last_error
        print(
            f"{size:>4}-row batches: model {model_s * 1e3:.3f} ms per call, counting adds "
            f"{extra * 1e6:.1f} us per call ({extra / model_s:.2%})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=2, help="rounds (servers interleaved)")
    parser.add_argument(
        "--in-process", action="store_true", help="only the in-process cost per call (no wrk)"
    )
    args = parser.parse_args()
    if not args.in_process and (shutil.which("wrk") is None or shutil.which("taskset") is None):
        sys.exit("needs wrk and taskset: apt-get install wrk util-linux")
    workdir = Path(tempfile.mkdtemp(prefix="bentomesh-bench-drift-"))
    os.environ.setdefault("BENTOML_HOME", str(workdir / "bentoml"))
    os.environ["BENTOMESH_ARTIFACT_ROOTS"] = str(workdir / "artifacts")
    os.environ["BENTOMESH_HOME"] = str(workdir / "mesh")
    print(f"workdir {workdir}\ntraining the pipeline and building two bentos ...", flush=True)
    model_path = train(workdir)
    from bentomesh_contracts.training import save_reference

    reference = save_reference(table(5000, 2), workdir / "artifacts" / "frame")
    if args.in_process:
        in_process(model_path, reference)
        return
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
