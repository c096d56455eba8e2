"""Pausing and resuming a staged file by byte position, drop keys already decoded, row ranges."""
from __future__ import annotations

import codecs
from dataclasses import asdict

import pytest

from chalicelib.domain.migration import (
    DEFAULT_MAPPINGS,
    MAX_ROW_RANGES,
    FilePosition,
    MigrationContext,
    RowRanges,
    classify_drop_key,
    stage_file,
)

CONTEXT = MigrationContext(legal_entities=("USRT",))
PRODUCTS = DEFAULT_MAPPINGS["products"]


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def outcome(staged) -> tuple:
    return staged.row_number, staged.source, staged.record, staged.errors


def stage_with_pauses(data: bytes, every: int, chunk: int = 7, positions: list | None = None) -> list[tuple]:
    """Stage ``data`` stopping after every ``every`` rows and resuming from the saved position
    (through ``asdict``, as a checkpoint stores it) with the two byte ranges S3 would return;
    ``positions`` collects the position after each row."""
    done: list[tuple] = []
    position: FilePosition | None = None
    while True:
        chunks = chunked(data, chunk) if position is None else \
            chunked(data[:position.header_end], chunk) + chunked(data[position.offset:], chunk)
        taken = 0
        for staged in stage_file("products", PRODUCTS, chunks, CONTEXT, resume=position):
            done.append(outcome(staged))
            position = FilePosition(**asdict(staged.position))
            if positions is not None:
                positions.append(position)
            taken += 1
            if taken == every:
                break
        else:
            return done


FILES = {
    "windows-1252, CRLF, blank and quoted multi-line rows": (
        "ItemLookupCode,Description,CategoryID,Price,Inactive\r\n"
        "A1,Crème brûlée,0,1.50,0\r\n\r\n"
        'A2,"Two\r\nlines, one cell",0,2.00,1\r\n'
        "A3,Café,0,x,0\r\n"
        "A4,Façade,0,4.00,0\r\n"
        "A5,Naïve,0,5.00,0"
    ).encode("cp1252"),
    "UTF-8 with BOM and multi-byte characters": (
        codecs.BOM_UTF8 + "ItemLookupCode;Description;CategoryID;Price;Inactive\n"
        "B1;Smørrebrød €;0;1,50;0\nB2;日本茶;0;2,00;0\nB3;Ωmega;0;3,5;1\nB4;Zürich;0;4;0\n".encode()
    ),
    "UTF-8 with invalid bytes among multi-byte characters": (
        "ItemLookupCode,Description,CategoryID,Price\nG1,Grüße,0,1\n".encode()
        + b"G2,Gr\xfc\xdfe,0,2\nG3,\xe2\x82,0,3\n" + "G4,€ 😀,0,4\n".encode()
    ),
    "bare CR line endings": b"ItemLookupCode,Description,CategoryID,Price\rC1,One,0,1\rC2,Two,0,2\rC3,Three,0,3\r",
    "ASCII that turns Windows-1252 beyond the detection window": (
        b"ItemLookupCode,Description,CategoryID,Price\n"
        + b"".join(f"D{i},Plain {i},0,{i}.00\n".encode() for i in range(3000))
        + "D-last,Crêpe,0,9.00\n".encode("cp1252")
    ),
}


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("every", [1, 2, 3, 1000])
def test_a_paused_file_resumes_exactly_where_it_stopped(name, every):
    data = FILES[name]
    whole = [outcome(s) for s in stage_file("products", PRODUCTS, chunked(data, 11), CONTEXT)]
    assert stage_with_pauses(data, every) == whole


def test_positions_are_byte_offsets_of_the_next_row():
    data = FILES["UTF-8 with BOM and multi-byte characters"]
    staged = list(stage_file("products", PRODUCTS, chunked(data, 5), CONTEXT))
    header = len(codecs.BOM_UTF8) + len(b"ItemLookupCode;Description;CategoryID;Price;Inactive\n")
    assert staged[0].position.header_end == header
    assert data[staged[0].position.offset:].startswith("B2;日本茶".encode())
    assert staged[-1].position.offset == len(data)
    assert (staged[0].position.encoding, staged[0].position.delimiter) == ("utf-8-sig", ";")


def test_a_bad_byte_after_resuming_is_a_row_error_at_its_file_offset():
    filler = b"".join(f"F{i},plain,0,1\n".encode() for i in range(8000))  # past the detection window
    data = "ItemLookupCode,Description,CategoryID,Price\nE1,Ünïcode,0,1\n".encode() + filler + b"E3,\xff,0,3\n"
    first = next(iter(stage_file("products", PRODUCTS, chunked(data, 1000), CONTEXT)))
    position = first.position
    rest = [data[:position.header_end], data[position.offset:]]
    last = list(stage_file("products", PRODUCTS, rest, CONTEXT, resume=position))[-1]
    bad_at = data.index(b"\xff")
    assert (last.row_number, last.record, last.source["Description"]) == (8003, None, "\ufffd")
    assert last.errors == [{"column": "Description", "message": f"invalid UTF-8 byte 0xFF at byte offset {bad_at}"}]


def test_classify_drop_key_does_not_decode_again():
    drop = classify_drop_key("migration/data/products/50%+off.csv")
    assert (drop.kind, drop.entity, drop.name, drop.key) == ("data", "products", "50%+off",
                                                           "migration/data/products/50%+off.csv")


def test_row_ranges_merge_consecutive_rows_and_answer_membership():
    rows = RowRanges()
    for row in (2, 3, 4, 7, 9, 10):
        rows.add(row)
    assert rows.ranges == [[2, 4], [7, 7], [9, 10]]
    assert [r for r in range(1, 12) if r in rows] == [2, 3, 4, 7, 9, 10]
    assert rows.count() == 6
    assert RowRanges(rows.ranges).ranges == rows.ranges
    assert not RowRanges() and 1 not in RowRanges()


def test_row_ranges_past_the_cap_keep_every_row_from_the_last_range_on():
    rows = RowRanges()
    for row in range(0, 2 * MAX_ROW_RANGES + 10, 2):
        rows.add(row)
    assert len(rows.ranges) == MAX_ROW_RANGES
    assert rows.ranges[-1][1] is None and rows.count() is None
    assert all(row in rows for row in range(0, 2 * MAX_ROW_RANGES + 10, 2))
    assert 1 not in rows
