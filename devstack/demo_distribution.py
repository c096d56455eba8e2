"""Demo steps for distribution: HQ publishes assortments and processes delivery modes; every store
lists its Available sessions on its own route, downloads each package from its presigned URL,
checks it and reports Requested → Downloaded → Applied; one store keeps failing to apply until
its sessions are Suspended; process-status-messages applies the reports."""
from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

FAILING_STORE_TRIES = 3  # the retail parameters' default try_count


def publish_assortments(demo: Any) -> None:
    """The operator publishes the retailer's assortments; each publish runs process-assortments."""
    for assortment_id in demo.retailer.published_assortment_ids:
        started = time.monotonic()
        response = demo.stack.http("POST", f"/assortments/{assortment_id}/publish", demo.operator)
        if response.status_code not in (200, 202):
            raise SystemExit(f"publish {assortment_id}: HTTP {response.status_code} {response.body!r}")
        run = response.json_body["run"]
        demo.record(f"process-assortments ({assortment_id})", run, time.monotonic() - started)
        if run["status"] != "Ended":
            raise SystemExit(f"publishing {assortment_id} ended {run['status']}: {run['message']}")


def process_delivery_modes(demo: Any) -> None:
    demo.fire("process_delivery_modes")


def stores_download_and_apply(demo: Any) -> None:
    """Each store downloads its Available packages; the last store fails to apply them, then
    retries until its sessions are Suspended (try_count failures)."""
    from chalicelib.domain.sessions import read_package

    failing = demo.retailer.stores[-1]["id"]
    clock = _Clock()
    sessions = rows = 0
    saved = False
    for store in demo.retailer.stores:
        store_id = store["id"]
        token = demo.store_token(store_id)
        listed = demo.stack.http("GET", f"/stores/{store_id}/download-sessions?status=Available", token)
        if listed.status_code != 200:
            raise SystemExit(f"store {store_id}: HTTP {listed.status_code} {listed.body!r}")
        messages = []
        for session in listed.json_body["sessions"]:
            messages.append(_message(session, "Requested", clock))
            with urllib.request.urlopen(session["package_url"], timeout=30) as response:  # noqa: S310 (loopback)
                body = response.read()
            header, package_rows = read_package(body, session["checksum"])
            messages.append(_message(session, "Downloaded", clock))
            if store_id == failing:
                messages.append(_message(session, "ApplyFailed", clock, "POS database locked"))
            else:
                messages.append(_message(session, "Applied", clock, rows_affected=len(package_rows)))
            sessions, rows = sessions + 1, rows + len(package_rows)
            if not saved and header["data_group"] == "assortments":
                _save_package(demo, session, body)
                saved = True
        _post(demo, store_id, token, messages)
    demo.say(f"{len(demo.retailer.stores)} stores downloaded {sessions} package(s), {rows} row(s); "
             f"store {failing} could not apply its packages")
    _fail_until_suspended(demo, failing, clock)


def _fail_until_suspended(demo: Any, store_id: str, clock: _Clock) -> None:
    """The failing store retries (Requested → Downloaded → ApplyFailed) between job runs."""
    token = demo.store_token(store_id)
    for _ in range(FAILING_STORE_TRIES - 1):
        demo.fire("process_status_messages")
        response = demo.stack.http("GET", f"/download-sessions?store_id={store_id}&status=ApplyFailed",
                                   demo.operator)
        failed = response.json_body["sessions"]
        messages = []
        for session in failed:
            messages += [_message(session, "Requested", clock), _message(session, "Downloaded", clock),
                         _message(session, "ApplyFailed", clock, "POS database locked")]
        _post(demo, store_id, token, messages)


def process_status_messages(demo: Any) -> None:
    run = demo.fire("process_status_messages")
    counts = {}
    for status in ("Available", "Applied", "ApplyFailed", "Suspended"):
        response = demo.stack.http("GET", f"/download-sessions?status={status}&limit=500", demo.operator)
        counts[status] = len(response.json_body["sessions"])
    demo.say("sessions now " + ", ".join(f"{status} {n}" for status, n in counts.items()))
    for store_id in (demo.retailer.stores[0]["id"], demo.retailer.stores[-1]["id"]):
        response = demo.stack.http("GET", f"/download-sessions?store_id={store_id}", demo.operator)
        for session in response.json_body["sessions"]:
            demo.say(f"{store_id} seq {session['seq']} {session['data_group']}: {session['status']} "
                     f"(tries {session['try_count']}){' — ' + session['message'] if session['message'] else ''}")
    if not counts["Suspended"]:
        raise SystemExit(f"expected the failing store's sessions Suspended: {run['message']}")


def _message(session: dict, status: str, clock: _Clock, text: str | None = None,
             rows_affected: int | None = None) -> dict:
    message = {"session_id": session["session_id"], "status": status, "at": clock.next()}
    if text:
        message["message"] = text
    if rows_affected is not None:
        message["rows_affected"] = rows_affected
    return message


def _post(demo: Any, store_id: str, token: str, messages: list[dict]) -> None:
    if not messages:
        return
    response = demo.stack.http("POST", f"/stores/{store_id}/status-messages", token, {"messages": messages})
    if response.status_code != 202:
        raise SystemExit(f"store {store_id} status messages: HTTP {response.status_code} {response.body!r}")


def _save_package(demo: Any, session: dict, body: bytes) -> None:
    import gzip

    folder = demo.out / "packages" / session["store_id"]
    folder.mkdir(parents=True, exist_ok=True)
    name = session["package"]["key"].rsplit("/", 1)[1]
    (folder / name).write_bytes(body)
    (folder / name.removesuffix(".gz")).write_bytes(gzip.decompress(body))
    demo.say(f"wrote {folder / name} (and the unzipped .jsonl beside it)")


class _Clock:
    """Store clocks: the time of each report, strictly increasing even within a millisecond."""

    def __init__(self) -> None:
        self._last = datetime.now(UTC)

    def next(self) -> str:
        self._last = max(datetime.now(UTC), self._last + timedelta(milliseconds=1))
        return self._last.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


STEPS = [
    ("Publish assortments", publish_assortments),
    ("Process delivery modes", process_delivery_modes),
    ("Stores download packages and report status", stores_download_and_apply),
    ("Process status messages", process_status_messages),
]
