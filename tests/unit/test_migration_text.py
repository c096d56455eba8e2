"""Migration text (DOMAIN §13): which encoding a dropped CSV is read in, invalid UTF-8 bytes as
row errors with their byte offset, an encoding forced by the mapping, and resuming with the
encoding decided at the start."""
from __future__ import annotations

import codecs

import pytest

from chalicelib.domain.errors import FieldError
from chalicelib.domain.migration import (
    INVALID_BYTES,
    SNIFF_BYTES,
    FilePosition,
    UnreadableFile,
    decode_stream,
    map_row,
    mapping_encoding,
    read_rows,
    stage_file,
    stage_row,
    validate_mapping,
)
from tests.unit.test_migration_resume import CONTEXT, PRODUCTS, chunked, outcome, stage_with_pauses

HEADER = b"ItemLookupCode,Description,CategoryID,Price\r\n"


def staged(data: bytes, mapping: dict = PRODUCTS, size: int = 7) -> list:
    return list(stage_file("products", mapping, chunked(data, size), CONTEXT))


def names(rows: list) -> dict[int, str | None]:
    return {row.row_number: row.record and row.record["name"] for row in rows}


def filler(size: int, start: int = 0) -> bytes:
    """ASCII rows ``X<n>,Plain <n>,0,1`` of about ``size`` bytes."""
    lines, total, i = [], 0, start
    while total < size:
        line = f"X{i},Plain {i},0,1\r\n".encode()
        lines.append(line)
        total += len(line)
        i += 1
    return b"".join(lines)


# --- the symptom ----------------------------------------------------------------------------

def test_a_utf8_file_with_one_invalid_byte_makes_that_row_an_error_and_reads_the_rest_as_utf8():
    # Was: decoded as Windows-1252 throughout, 0 errors, "CafÃ© crÃ¨me" copied to live data.
    head = HEADER + "U1,Café crème,0,3.20\r\n".encode()
    data = head + b"U2,Th\xe9 vert,0,2.10\r\n" + "U3,Crêpe,0,5\r\n".encode()
    rows = staged(data)
    assert names(rows) == {2: "Café crème", 3: None, 4: "Crêpe"}
    bad = rows[1]
    assert bad.errors == [{"column": "Description",
                           "message": f"invalid UTF-8 byte 0xE9 at byte offset {len(head) + 5}"}]
    assert bad.source["Description"] == "Th\ufffd vert"  # stored readable, never as mojibake
    assert rows[0].position.encoding == "utf-8-sig"


def test_the_invalid_bytes_stay_an_error_when_the_staged_row_is_staged_again_for_copy():
    data = HEADER + "U1,Café,0,1\r\n".encode() + b"U2,Caf\xe9 cr\xe8me,0,2\r\n"
    bad, at = staged(data)[1], data.index(b"\xe9")
    assert bad.source[INVALID_BYTES] == {"Description": f"invalid UTF-8 byte 0xE9 at byte offset {at} and 1 more"}
    again = stage_row("products", PRODUCTS, bad.row_number, bad.source, CONTEXT)  # what copy to target does
    assert (again.record, again.errors) == (None, bad.errors)


def test_invalid_bytes_in_several_cells_and_beyond_the_header_name_each_place():
    first = HEADER + "U1,Über,0,1\r\n".encode()
    row = staged(first + b"\xff1,Caf\xe9,0,1,\xe8\r\n", size=3)[1]
    assert [e["column"] for e in row.errors][:3] == ["ItemLookupCode", "Description", "(extra cells)"]
    assert row.errors[0]["message"] == f"invalid UTF-8 byte 0xFF at byte offset {len(first)}"
    assert row.source["ItemLookupCode"] == "\ufffd1"


def test_an_invalid_byte_in_the_header_of_a_utf8_file_makes_it_unreadable():
    data = "Descr\xe9ption,ItemLookupCode\r\nx,1\r\né,2\r\n".encode("cp1252").replace(b"\xe9,2", "é,2".encode())
    with pytest.raises(UnreadableFile) as caught:
        list(read_rows(decode_stream([data])))
    assert caught.value.reason == "header has an invalid UTF-8 byte 0xE9 at byte offset 5"


# --- Windows-1252 as before ---------------------------------------------------------------

WINDOWS_TEXT = ("ItemLookupCode;Description;CategoryID;Price;Inactive\r\n"
                "W1;Crème brûlée;0;4,50;0\r\nW2;Café Señor ½ — “quoted” €;0;1.234,00;0\r\n"
                "W3;Ærø smørrebrød;0;x;1\r\n")


def test_a_windows_1252_file_stages_exactly_as_the_same_text_in_utf8():
    windows = staged(WINDOWS_TEXT.encode("cp1252"))
    assert list(map(outcome, windows)) == list(map(outcome, staged(WINDOWS_TEXT.encode())))
    assert names(windows) == {2: "Crème brûlée", 3: "Café Señor ½ — “quoted” €", 4: None}
    assert windows[0].position.encoding == "cp1252"


def test_ascii_then_windows_1252_beyond_the_window_is_decided_where_the_first_accent_is():
    data = HEADER + filler(SNIFF_BYTES + 100) + "L1,Crêpe,0,1\r\nL2,Façade,0,2\r\n".encode("cp1252")
    rows = staged(data, size=4096)
    assert [r.record["name"] for r in rows[-2:]] == ["Crêpe", "Façade"]
    assert rows[-1].position.encoding == "cp1252" and not any(r.errors for r in rows)


def test_ascii_then_a_stray_byte_beyond_the_window_does_not_turn_later_utf8_into_mojibake():
    data = HEADER + filler(SNIFF_BYTES + 100) + b"L1,Cr\xeape,0,1\r\n" + "L2,Café crème,0,2\r\n".encode()
    rows, at = staged(data, size=4096), data.index(b"\xea")
    assert (rows[-2].record, rows[-1].record["name"]) == (None, "Café crème")
    assert rows[-2].errors[0]["message"] == f"invalid UTF-8 byte 0xEA at byte offset {at}"


# --- BOM ------------------------------------------------------------------------------------

def test_a_bom_decides_utf8_even_if_the_window_also_holds_an_invalid_byte():
    data = codecs.BOM_UTF8 + HEADER + b"B1,Caf\xe9,0,1\r\nB2,Plain,0,2\r\n"
    rows = staged(data, size=2)
    assert names(rows) == {2: None, 3: "Plain"}
    assert rows[0].errors[0]["message"] == f"invalid UTF-8 byte 0xE9 at byte offset {3 + len(HEADER) + 6}"
    assert rows[0].position.header_end == 3 + len(HEADER)  # the BOM counts in the byte positions


def test_a_bom_is_not_part_of_the_first_column():
    rows = staged(codecs.BOM_UTF8 + HEADER + "B1,Zoë,0,1\r\n".encode())
    assert rows[0].source["ItemLookupCode"] == "B1" and rows[0].valid


# --- the 64 KB window -----------------------------------------------------------------------

@pytest.mark.parametrize("char", ["é", "€", "😀"])
def test_a_character_cut_by_the_end_of_the_window_is_not_an_invalid_byte(char):
    encoded = char.encode()
    for cut in range(1, len(encoded)):
        # An invalid byte early in the window; the window's only valid multi-byte character is cut
        # at 64 KB. Counting its first bytes as invalid would decide Windows-1252 (mojibake).
        head = HEADER + b"E1,Stray \xff,0,1\r\n" + filler(SNIFF_BYTES)
        head = head[:SNIFF_BYTES - cut - len(b"C1,")]
        head = head[:head.rindex(b"\n") + 1]
        data = head + b"C1," + b"y" * (SNIFF_BYTES - cut - len(head) - 3) + encoded + b",0,1\r\n"
        assert data.index(encoded) + cut == SNIFF_BYTES
        rows = staged(data, size=SNIFF_BYTES // 2 + 1)
        assert rows[-1].record["name"].endswith(char), cut
        assert rows[-1].position.encoding == "utf-8-sig"
        assert rows[0].errors == [{"column": "Description",
                                   "message": f"invalid UTF-8 byte 0xFF at byte offset {len(HEADER) + 9}"}]


def test_a_character_cut_by_the_end_of_the_file_is_an_invalid_byte():
    (row,) = staged(HEADER + "E1,Ünï,0,1\r\n".encode() + b"E2,x\xe2\x82")[-1:]
    assert row.record is None and "invalid UTF-8 byte 0xE2" in row.errors[0]["message"]


def test_windows_1252_bytes_only_after_the_window_do_not_change_the_decision():
    # Decided UTF-8 in the first 64 KB ("ü"): a later Windows-1252 byte is a row error, not a switch.
    data = HEADER + "U1,Über,0,1\r\n".encode() + filler(SNIFF_BYTES) + b"L1,Cr\xeape,0,1\r\n"
    rows = staged(data, size=1000)
    assert rows[0].record["name"] == "Über" and rows[-1].record is None


# --- a forced encoding --------------------------------------------------------------------

@pytest.mark.parametrize(("encoding", "data", "expected"), [
    # Windows-1252 text that happens to be valid UTF-8 ("Ã©" is the UTF-8 of "é").
    ("windows-1252", "F1,MÃ©tal,0,1\r\n".encode("cp1252"), {2: "MÃ©tal"}),
    ("Windows-1252", "F1,Crème,0,1\r\n".encode("cp1252"), {2: "Crème"}),
    ("latin-1", "F1,Crème,0,1\r\n".encode("latin-1"), {2: "Crème"}),
    ("utf-8", b"F1,Cr\xe8me,0,1\r\nF2,Plain,0,1\r\n", {2: None, 3: "Plain"}),  # auto would say Windows-1252
])
def test_a_mapping_forces_the_encoding(encoding, data, expected):
    mapping = {**PRODUCTS, "encoding": encoding}
    assert validate_mapping("products", mapping) == []
    rows = staged(HEADER + data, mapping)
    assert names(rows) == expected
    assert rows[0].position.encoding == mapping_encoding(mapping)


def test_an_unknown_encoding_is_a_mapping_error_and_encoding_is_not_a_field():
    expected = "expected one of: utf-8, windows-1252, latin-1"
    assert validate_mapping("products", {**PRODUCTS, "encoding": "utf-16"}) == [
        FieldError("encoding", f"unknown encoding 'utf-16'; {expected}")]
    assert validate_mapping("products", {**PRODUCTS, "encoding": 1252}) == [
        FieldError("encoding", f"unknown encoding 1252; {expected}")]
    assert mapping_encoding(PRODUCTS) is None
    row = {"ItemLookupCode": "1", "Description": "x", "CategoryID": "0", "Price": "1", "windows-1252": "y"}
    assert "encoding" not in map_row("products", {**PRODUCTS, "encoding": "windows-1252"}, row, CONTEXT)


def test_a_forced_windows_1252_file_with_an_undefined_byte_is_unreadable_with_its_offset():
    mapping = {**PRODUCTS, "encoding": "windows-1252"}
    with pytest.raises(UnreadableFile) as caught:
        staged(HEADER + b"F1,Bad \x81,0,1\r\n", mapping)
    assert caught.value.reason == f"file is not valid Windows-1252 text: byte 0x81 at offset {len(HEADER) + 7}"


# --- resuming -------------------------------------------------------------------------------

def test_resuming_across_chunks_that_split_multi_byte_characters_and_invalid_bytes():
    data = HEADER + "M1,Smørrebrød €,0,1\r\nM2,日本茶 😀,0,2\r\n".encode() + b"M3,\xe9t\xe9,0,3\r\n" \
        + "M4,Ωmega,0,4\r\n".encode()
    whole = [outcome(r) for r in staged(data, size=len(data))]
    for every in (1, 2):
        for chunk in (1, 2, 3, 5):
            assert stage_with_pauses(data, every, chunk=chunk) == whole
    at = data.index(b"\xe9")
    assert whole[2][3][0]["message"] == f"invalid UTF-8 byte 0xE9 at byte offset {at} and 1 more"


def test_the_encoding_decided_at_the_start_is_reused_on_resume_not_decided_again():
    # Windows-1252 by its first 64 KB; further on, text that would read as UTF-8 on its own.
    data = HEADER + "W1,Crème,0,1\r\n".encode("cp1252") + filler(2 * SNIFF_BYTES) + b"W9,M\xc3\xa9tal,0,9\r\n"
    positions: list[FilePosition] = []
    outcomes = stage_with_pauses(data, 4000, chunk=4096, positions=positions)
    assert outcomes[-1][2]["name"] == "MÃ©tal"
    assert positions[3999].offset > SNIFF_BYTES and positions[3999].encoding == "cp1252"
    assert outcomes == stage_with_pauses(data, 10**6, chunk=4096)


def test_a_pause_before_the_encoding_is_decided_decides_it_at_the_same_byte():
    data = HEADER + filler(SNIFF_BYTES + 10) + b"L1,Cr\xeape,0,1\r\n" + "L2,Café,0,2\r\n".encode()
    positions: list[FilePosition] = []
    outcomes = stage_with_pauses(data, 1000, chunk=4096, positions=positions)
    assert positions[999].ascii_only and positions[999].offset < SNIFF_BYTES
    assert positions[-1].encoding == "utf-8-sig" and not positions[-1].ascii_only
    assert outcomes == stage_with_pauses(data, 10**6, chunk=4096)
    assert (outcomes[-2][2], outcomes[-1][2]["name"]) == (None, "Café")
