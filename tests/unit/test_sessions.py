"""Download sessions (DOMAIN §9): the status state machine and the package format."""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import pytest

from chalicelib.domain.errors import DomainError, ValidationError
from chalicelib.domain.jsonvalues import json_default
from chalicelib.domain.sessions import (
    ALLOWED,
    FINAL_STATUSES,
    GZIP_WRITE_BYTES,
    PACKAGE_GZIP_LEVEL,
    OutcomeKind,
    PackageError,
    SessionState,
    SessionStatus,
    StatusMessage,
    apply_messages_in_order,
    apply_status_message,
    assortment_rows,
    build_package_lines,
    delivery_mode_rows,
    gzip_package,
    is_purgeable,
    is_stale,
    read_package,
)

S = SessionStatus
T0 = datetime(2024, 3, 15, 8, 0, tzinfo=UTC)

# §9, written out again on purpose: the implementation must match the specification's table.
SPEC_MOVES = {
    "Started": {"Available", "CreateFailed", "NoData"},
    "Available": {"Requested", "Canceled"},
    "Requested": {"Downloaded", "DownloadFailed", "Canceled"},
    "DownloadFailed": {"Requested", "Canceled"},
    "Downloaded": {"Applied", "ApplyFailed", "Canceled"},
    "ApplyFailed": {"Applied", "Requested", "Suspended", "Canceled"},
    "Suspended": {"Requested", "Canceled"},
}
ALLOWED_PAIRS = [(S(a), S(b)) for a, targets in SPEC_MOVES.items() for b in sorted(targets)]
REFUSED_PAIRS = [
    (a, b) for a, b in itertools.product(SessionStatus, SessionStatus) if b not in ALLOWED[a]
]


def session(status=S.AVAILABLE, **fields) -> SessionState:
    return SessionState(session_id="DS-1", status=status, created_at=T0, **fields)


def msg(status, minutes, text=None, **fields) -> StatusMessage:
    return StatusMessage("DS-1", S(status), T0 + timedelta(minutes=minutes), text, **fields)


def test_the_table_is_exactly_the_specification():
    assert {str(k): {str(v) for v in vs} for k, vs in ALLOWED.items() if vs} == SPEC_MOVES
    assert set(ALLOWED) == set(SessionStatus)
    assert FINAL_STATUSES == {S.APPLIED, S.CANCELED, S.NO_DATA, S.CREATE_FAILED}
    assert all(not ALLOWED[s] for s in FINAL_STATUSES)
    assert len(ALLOWED_PAIRS) + len(REFUSED_PAIRS) == len(SessionStatus) ** 2


@pytest.mark.parametrize(("source", "target"), ALLOWED_PAIRS, ids=lambda s: str(s))
def test_every_allowed_move_is_applied(source, target):
    outcome = apply_status_message(session(source), msg(target, 5, "ok"), try_limit=0)
    assert outcome.kind is OutcomeKind.APPLIED
    assert outcome.error is None
    assert outcome.state.status == target
    assert outcome.state.last_changed_at == T0 + timedelta(minutes=5)
    assert outcome.state.message == "ok"


@pytest.mark.parametrize(("source", "target"), REFUSED_PAIRS, ids=lambda s: str(s))
def test_every_other_move_is_refused_and_changes_nothing(source, target):
    before = session(source)
    outcome = apply_status_message(before, msg(target, 5), try_limit=3)
    assert outcome.kind is OutcomeKind.REFUSED
    assert outcome.state == before
    expected = f"illegal move {source} → {target}"
    if source in FINAL_STATUSES:
        expected += f": session is final ({source})"
    assert outcome.error == expected


def test_refusal_messages_read_as_operators_expect():
    applied = apply_status_message(session(S.APPLIED), msg("Requested", 1), 3)
    assert "illegal move Applied → Requested" in applied.error
    canceled = apply_status_message(session(S.CANCELED), msg("Requested", 1), 3)
    assert "session is final (Canceled)" in canceled.error


def test_status_time_stamps_are_set_from_the_message_time():
    replay = apply_messages_in_order(
        session(),
        [msg("Requested", 1), msg("Downloaded", 2), msg("Applied", 3, rows_affected=42)],
        try_limit=3,
    )
    state = replay.state
    assert state.status == S.APPLIED
    assert state.requested_at == T0 + timedelta(minutes=1)
    assert state.downloaded_at == T0 + timedelta(minutes=2)
    assert state.applied_at == T0 + timedelta(minutes=3)
    assert state.rows_affected == 42
    assert state.try_count == 0


def test_out_of_order_messages_are_applied_by_time():
    received = [msg("Applied", 3), msg("Requested", 1), msg("Downloaded", 2)]
    replay = apply_messages_in_order(session(), received, try_limit=3)
    assert [o.kind for _, o in replay.outcomes] == [OutcomeKind.APPLIED] * 3
    assert [m.status for m, _ in replay.outcomes] == [S.REQUESTED, S.DOWNLOADED, S.APPLIED]
    assert replay.state.status == S.APPLIED


def test_ties_keep_the_order_received():
    in_order = apply_messages_in_order(session(), [msg("Requested", 1), msg("Downloaded", 1)], 3)
    assert in_order.state.status == S.DOWNLOADED
    reversed_ = apply_messages_in_order(session(), [msg("Downloaded", 1), msg("Requested", 1)], 3)
    assert [o.kind for _, o in reversed_.outcomes] == [OutcomeKind.REFUSED, OutcomeKind.APPLIED]
    assert reversed_.outcomes[0][1].error == "illegal move Available → Downloaded"
    assert reversed_.state.status == S.REQUESTED


def test_a_message_older_than_the_last_change_is_ignored():
    current = session(S.DOWNLOADED, last_changed_at=T0 + timedelta(minutes=10))
    outcome = apply_status_message(current, msg("DownloadFailed", 5), try_limit=3)
    assert outcome.kind is OutcomeKind.IGNORED
    assert outcome.state == current
    assert outcome.error is None
    before_creation = apply_status_message(session(), msg("Requested", -1), try_limit=3)
    assert before_creation.kind is OutcomeKind.IGNORED


def test_a_duplicate_message_is_ignored_not_refused():
    first = apply_status_message(session(), msg("Requested", 1), 3)
    again = apply_status_message(first.state, msg("Requested", 1), 3)
    assert again.kind is OutcomeKind.IGNORED
    assert again.state == first.state


def test_a_message_for_another_session_is_refused():
    other = StatusMessage("DS-2", S.REQUESTED, T0 + timedelta(minutes=1))
    outcome = apply_status_message(session(), other, 3)
    assert outcome.kind is OutcomeKind.REFUSED
    assert outcome.error == "message for session DS-2, not DS-1"


def failing_applies(times):
    msgs, minute = [], 0
    for _ in range(times):
        for status in ("Requested", "Downloaded", "ApplyFailed"):
            minute += 1
            msgs.append(msg(status, minute, "disk full" if status == "ApplyFailed" else None))
    return msgs


def test_suspended_after_try_count_apply_failures():
    replay = apply_messages_in_order(session(), failing_applies(3), try_limit=3)
    assert replay.state.status == S.SUSPENDED
    assert replay.state.try_count == 3
    assert replay.state.message == "suspended after 3 failed tries (ApplyFailed: disk full)"
    two = apply_messages_in_order(session(), failing_applies(2), try_limit=3)
    assert two.state.status == S.APPLY_FAILED
    assert two.state.try_count == 2


def test_download_failures_also_suspend_at_the_limit():
    msgs = [
        msg("Requested", 1),
        msg("DownloadFailed", 2),
        msg("Requested", 3),
        msg("DownloadFailed", 4, "timeout"),
    ]
    replay = apply_messages_in_order(session(), msgs, try_limit=2)
    assert replay.state.status == S.SUSPENDED
    assert replay.state.try_count == 2
    assert replay.state.message == "suspended after 2 failed tries (DownloadFailed: timeout)"


def test_a_retry_from_suspended_keeps_the_count_and_suspends_on_the_next_failure():
    suspended = apply_messages_in_order(session(), failing_applies(3), try_limit=3).state
    retry = apply_messages_in_order(
        suspended, [msg("Requested", 100), msg("Downloaded", 101), msg("ApplyFailed", 102)], 3
    )
    assert retry.state.status == S.SUSPENDED
    assert retry.state.try_count == 4
    recovered = apply_messages_in_order(
        suspended, [msg("Requested", 100), msg("Downloaded", 101), msg("Applied", 102)], 3
    )
    assert recovered.state.status == S.APPLIED


def test_a_redelivered_failure_after_suspension_is_a_duplicate():
    suspended = apply_messages_in_order(session(), failing_applies(3), try_limit=3).state
    again = apply_status_message(suspended, msg("ApplyFailed", 9, "disk full"), 3)
    assert again.kind is OutcomeKind.IGNORED


def test_try_limit_zero_is_unlimited():
    replay = apply_messages_in_order(session(), failing_applies(10), try_limit=0)
    assert replay.state.status == S.APPLY_FAILED
    assert replay.state.try_count == 10


def test_a_negative_try_limit_is_rejected():
    with pytest.raises(DomainError, match="try limit"):
        apply_status_message(session(), msg("Requested", 1), try_limit=-1)


def test_records_parse_with_naive_times_as_utc():
    state = SessionState.from_record(
        {
            "session_id": "DS-1",
            "status": "Requested",
            "created_at": "2024-03-15T08:00:00Z",
            "requested_at": "2024-03-15T08:01:00",
            "try_count": None,
        }
    )
    assert state.status is S.REQUESTED
    assert state.requested_at == T0 + timedelta(minutes=1)
    assert state.try_count == 0
    message = StatusMessage.from_record(
        {"session_id": "DS-1", "status": "Downloaded", "at": "2024-03-15T10:00:00+02:00"}
    )
    assert message.at == T0
    with pytest.raises(ValidationError) as error:
        StatusMessage.from_record({"session_id": "DS-1", "status": "Lost", "at": "2024-03-15"})
    assert error.value.errors[0].path == "status"


# --- stale and purge ----------------------------------------------------------------------------


def test_stale_after_hours_in_available_or_requested():
    now = T0 + timedelta(hours=25)
    assert is_stale(session(S.AVAILABLE), now, 24)
    assert not is_stale(session(S.AVAILABLE), now, 26)
    assert is_stale(session(S.REQUESTED, last_changed_at=T0 + timedelta(minutes=30)), now, 24)
    assert not is_stale(session(S.REQUESTED, last_changed_at=T0 + timedelta(hours=2)), now, 24)
    assert not is_stale(session(S.DOWNLOADED), now, 24)
    assert not is_stale(session(S.APPLIED), now, 24)


def test_only_final_sessions_past_retention_are_purgeable():
    now = T0 + timedelta(days=31)
    assert is_purgeable(session(S.APPLIED), now, 30)
    assert is_purgeable(session(S.NO_DATA), now, 30)
    assert not is_purgeable(session(S.APPLIED, last_changed_at=T0 + timedelta(days=2)), now, 30)
    assert not is_purgeable(session(S.REQUESTED), now, 30)
    assert not is_purgeable(session(S.SUSPENDED), now, 30)


# --- packages -----------------------------------------------------------------------------------

HEADER = {
    "session_id": "DS-1",
    "store_id": "S1",
    "data_group": "assortments",
    "seq": 7,
    "created_at": "2024-03-15T08:00:00+00:00",
    "full": False,
}


def packed(lines) -> tuple[bytes, str]:
    out = io.BytesIO()
    checksum = gzip_package(lines, out)
    return out.getvalue(), checksum


def test_package_round_trip_with_checksum():
    rows = list(assortment_rows({("TEE", "RED-L"), ("JACKET", "*")}, {("POLO", "S")}, full=False))
    rows.append(
        {"op": "upsert", "entity": "price", "key": "TEE", "data": {"price": Decimal("9.90")}}
    )
    body, checksum = packed(build_package_lines(HEADER, rows))
    assert checksum == hashlib.sha256(body).hexdigest()
    header, read_rows = read_package(body, expected_sha256=checksum)
    assert header == {**HEADER, "rows": 4}
    assert read_rows[-1]["data"] == {"price": "9.90"}
    assert read_rows[:3] == rows[:3]


def test_packages_are_deterministic_and_compact():
    rows = list(delivery_mode_rows({"GROUND": {"products": ["TEE/RED-L"], "addresses": []}}, ["AIR"]))
    first = packed(build_package_lines(HEADER, rows))
    second = packed(build_package_lines(dict(reversed(HEADER.items())), iter(rows)))
    assert first == second
    lines = gzip.decompress(first[0]).splitlines()
    assert lines[0] == (
        b'{"created_at":"2024-03-15T08:00:00+00:00","data_group":"assortments","full":false,'
        b'"rows":2,"seq":7,"session_id":"DS-1","store_id":"S1"}'
    )
    assert lines[1] == b'{"data":null,"entity":"delivery-mode","key":"AIR","op":"delete"}'


def _reference_line(obj) -> bytes:
    """How a package line was written before the encoder was tuned: the specification of its bytes."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default)
    return text.encode() + b"\n"


class _Kind(StrEnum):
    CHAIN = "chaîne"


TRICKY_ROWS = [
    {"op": "upsert", "entity": "assortment", "key": 'SHIRT "Oxford"/XL',
     "data": {"variant_id": "XL", "product_id": 'SHIRT "Oxford"'}},
    {"op": "upsert", "entity": "price", "key": "Crème brûlée \\ 🍮",
     "data": {"price": Decimal("9.90"), "was": Decimal("1E+2")}},
    {"op": "delete", "entity": "delivery-mode", "key": "línea\u2028sep\ttab\x00nul", "data": None},
    {"op": "upsert", "entity": _Kind.CHAIN, "key": 42, "data": {"z": [date(2024, 2, 29), {"b": 1, "a": None}],
                                                              "a": datetime(2024, 3, 15, 8, 0, tzinfo=UTC),
                                                              "tags": {"β", "α"}, "ratio": 0.1, "ok": True}},
    {"entity": "assortment", "op": "upsert", "key": "日本/中", "extra": "dropped"},
    {"op": "upsert", "entity": "text", "key": "k", "data": "just a \"string\" \U0001f600"},
    {"op": "upsert", "entity": "flat", "key": "k", "data": {"é": "ü\n", "Z": "", "a\"b": "\\"}},
    {"op": "upsert", "entity": "flat", "key": "k", "data": {}},
    {"op": "upsert", "entity": "flat", "key": "k", "data": {2: "x", 1: "y"}},
    {"op": "upsert", "entity": "flat", "key": "k", "data": {"b": "x", "a": _Kind.CHAIN}},
]


def test_package_lines_are_byte_identical_to_the_reference_encoding():
    lines = list(build_package_lines({**HEADER, "note": "ünïcode \"q\""}, TRICKY_ROWS))
    assert lines[0] == _reference_line({**HEADER, "note": "ünïcode \"q\"", "rows": len(TRICKY_ROWS)})
    assert lines[1:] == [
        _reference_line({"op": r["op"], "entity": r["entity"], "key": r["key"], "data": r.get("data")})
        for r in TRICKY_ROWS
    ]


def test_gzip_is_byte_identical_whatever_the_pieces_it_is_written_in():
    rows = assortment_rows((), (), full=True, all_items={(f"P{i:06d}", v) for i in range(20_000) for v in "SML"})
    lines = list(build_package_lines({**HEADER, "rows": 60_000}, rows))
    line_by_line = io.BytesIO()
    with gzip.GzipFile(fileobj=line_by_line, mode="wb", filename="", mtime=0, compresslevel=PACKAGE_GZIP_LEVEL) as g:
        for line in lines:
            g.write(line)
    body, checksum = packed(iter(lines))
    assert len(b"".join(lines)) > 10 * GZIP_WRITE_BYTES  # written in many pieces
    assert body == line_by_line.getvalue()
    assert checksum == hashlib.sha256(line_by_line.getvalue()).hexdigest()


def test_a_corrupted_package_is_refused():
    body, checksum = packed(build_package_lines(HEADER, []))
    with pytest.raises(PackageError, match="checksum"):
        read_package(body + b"x", expected_sha256=checksum)
    with pytest.raises(PackageError, match="unreadable"):
        read_package(b"not gzip")


def test_package_header_and_rows_are_checked():
    with pytest.raises(PackageError, match="lacks seq"):
        list(build_package_lines({k: v for k, v in HEADER.items() if k != "seq"}, []))
    with pytest.raises(PackageError, match="says 5 rows, got 0"):
        list(build_package_lines({**HEADER, "rows": 5}, iter([])))
    with pytest.raises(PackageError, match="bad package row"):
        list(build_package_lines(HEADER, [{"op": "merge", "entity": "assortment", "key": "A/*"}]))


def test_assortment_rows_incremental_and_full():
    rows = list(assortment_rows({("TEE", "RED-L")}, {("POLO", "S")}, full=False, all_items={("X", "*")}))
    assert rows == [
        {
            "op": "delete",
            "entity": "assortment",
            "key": "POLO/S",
            "data": {"product_id": "POLO", "variant_id": "S"},
        },
        {
            "op": "upsert",
            "entity": "assortment",
            "key": "TEE/RED-L",
            "data": {"product_id": "TEE", "variant_id": "RED-L"},
        },
    ]
    full = assortment_rows(
        set(), {("POLO", "S")}, full=True, all_items={("TEE", "RED-L"), ("JACKET", "*")}
    )
    assert [(r["op"], r["key"]) for r in full] == [("upsert", "JACKET/*"), ("upsert", "TEE/RED-L")]


def test_delivery_mode_rows():
    rows = list(delivery_mode_rows({"B": {"products": []}, "A": {"products": ["P/*"]}}, ["Z"]))
    assert [(r["op"], r["key"]) for r in rows] == [
        ("delete", "Z"),
        ("upsert", "A"),
        ("upsert", "B"),
    ]
    assert rows[1] == {
        "op": "upsert",
        "entity": "delivery-mode",
        "key": "A",
        "data": {"products": ["P/*"]},
    }
