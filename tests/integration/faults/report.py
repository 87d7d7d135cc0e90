"""The fault matrix: one row per fault test, printed at the end of the session."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FaultRow:
    fault: str
    rounds: int
    events: int
    lost: int
    duplicated: int
    max_recovery_s: float
    note: str = ""


MATRIX: list[FaultRow] = []


def render_matrix(rows: list[FaultRow]) -> str:
    lines = [
        "| fault | rounds | events | lost | duplicated | max recovery s | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.fault} | {r.rounds} | {r.events} | {r.lost} | {r.duplicated} | "
            f"{r.max_recovery_s:.1f} | {r.note} |"
        )
    return "\n".join(lines)
