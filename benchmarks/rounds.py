"""Interleaved rounds of wrk against several servers of the same model, and the table of the
best round of each (shared by the DataFrame benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.serving import Result, start, stop, wait_ready, wrk

Servers = dict[str, tuple[list[str], str]]  # name -> (command, URL to POST)


def measure(
    servers: Servers, one: str, hundred: str, *, repeat: int, duration: int, workdir: Path
) -> dict[tuple[str, str], Result]:
    """Single rows at c=32 and 100-row batches at c=8, ``repeat`` rounds with the servers
    interleaved; the best round of each server and workload."""
    results: list[Result] = []
    for round_no in range(repeat):
        for name, (cmd, url) in servers.items():
            process = start(cmd, cwd=workdir)
            try:
                wait_ready(url, "", json.dumps({"rows": json.loads(one)}))
                for workload, rows, payload, conns in (
                    ("1 row, c=32", 1, one, 32),
                    ("100 rows, c=8", 100, hundred, 8),
                ):
                    print(f"  round {round_no + 1}: {name}, {workload} ...", flush=True)
                    body = json.dumps({"rows": json.loads(payload)})
                    rps, p50, p99 = wrk(url, body, duration, conns, workdir)
                    results.append(Result(name, workload, rps, p50, p99, rows))
            finally:
                stop(process)
    best: dict[tuple[str, str], Result] = {}
    for r in results:
        if (r.server, r.workload) not in best or r.rps > best[(r.server, r.workload)].rps:
            best[(r.server, r.workload)] = r
    return best


def print_table(best: dict[tuple[str, str], Result], baseline: str, label: str) -> None:
    """Each server and workload, with its throughput as a ratio to ``baseline``'s."""
    print(f"\n{'server':<24} {'workload':<15} {'req/s':>8} {'rows/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8} {label:>8}")  # fmt: skip
    for (server, workload), r in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base = best[(baseline, workload)].rps
        print(
            f"{server:<24} {workload:<15} {r.rps:>8.0f} {r.rows_per_s:>9.0f} {r.p50_ms:>8.1f} "
            f"{r.p99_ms:>8.1f} {r.rps / base:>8.3f}"
        )
