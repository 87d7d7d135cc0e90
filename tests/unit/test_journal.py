"""The journal's files: records round-trip exactly, a torn last line is dropped, offsets
translate across a replay."""

from __future__ import annotations

from pathlib import Path

from services.runtime.journal import Journal, Record, translate


def _record(offset: int, *, partition: int = 0, value: bytes | None = b"{}") -> Record:
    return Record(
        "bentomesh.t", partition, offset, b"model", value, (("ce_type", b"x\x00y"),), 1700 + offset
    )


def test_records_round_trip_byte_for_byte(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    records = [_record(0), _record(1, value=None), _record(0, partition=2, value=b"\xff\xfe")]
    assert journal.append(records) == 3
    assert list(journal.records()) == records


def test_a_line_torn_by_a_crash_is_left_out_and_cut_before_the_next_append(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path)
    journal.append([_record(0)])
    with journal.records_path.open("a") as out:
        out.write(_record(1).to_line()[:20])  # the crash: no newline
    assert list(journal.records()) == [_record(0)]
    journal.append([_record(1)])
    assert list(journal.records()) == [_record(0), _record(1)]


def test_offsets_and_topics_survive_a_new_journal_object(tmp_path: Path) -> None:
    Journal(tmp_path).save_offsets({"bentomesh-packager": {("t", 0): 3, ("t", 2): 1}})
    Journal(tmp_path).save_topics({"t": 3})
    again = Journal(tmp_path)
    assert again.offsets() == {"bentomesh-packager": {("t", 0): 3, ("t", 2): 1}}
    assert again.topics() == {"t": 3}
    assert not list(tmp_path.glob("*.tmp"))


def test_translate_resumes_at_the_first_unread_record() -> None:
    old, new = [0, 1, 2, 5, 6], [0, 1, 2, 3, 4]
    assert translate(0, old, new) == 0
    assert translate(3, old, new) == 3  # read up to 2; 5 is the next record, now at 3
    assert translate(6, old, new) == 4
    assert translate(7, old, new) == 5  # read everything: the new end
    assert translate(9, old, new) == 5  # committed past what the journal kept
    assert translate(4, [], []) == 0
