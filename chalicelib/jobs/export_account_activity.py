"""Export account activity (DOMAIN §4): every result not yet exported becomes one XML or CSV object
``<file_prefix><result_id>.<ext>`` in its profile's folder of the data bucket.

Results waiting for export are read from a sparse index (never a scan). A result is flagged
exported only after its object is uploaded; the key is deterministic, so a crash between the two
makes the next run overwrite the same object rather than add a second file. A result that fails
(its profile deleted, a name XML cannot carry, S3 refusing) is reported and stays waiting for the
next run; the others go on.
"""
from __future__ import annotations

import io

from chalicelib import settings
from chalicelib.domain.account_activity import AccountExportProfile, FileFormat, export_key, write_csv, write_xml
from chalicelib.domain.errors import ValidationError
from chalicelib.jobs.runtime import JobContext
from chalicelib.storage import account_activity as results
from chalicelib.storage import exports, records

PAGE = 25  # results carry their lines (up to ~100 KB each); pages stay under DynamoDB's 1 MB


class ProfileMissing(Exception):
    pass


def run(ctx: JobContext) -> str:
    profiles = {p["id"]: p for p in records.scan_entity("account-export-profiles")}
    exported = 0
    for page in ctx.pages("unexported", lambda cursor: results.unexported_page(PAGE, cursor)):
        ctx.count(read=len(page))
        for result in page:
            try:
                exported += _export(ctx, result, profiles.get(result.profile_id))
            except Exception as exc:  # noqa: BLE001 - one failing result must not stop the others
                ctx.error(result.result_id, _reason(exc))
    if ctx.dry_run:
        return f"would export {exported} result(s)"
    failed = ctx.counters.get("failed", 0)
    return f"exported {exported} result(s)" + (f"; {failed} failed and stay waiting" if failed else "")


def _export(ctx: JobContext, result, profile_record: dict | None) -> int:
    if profile_record is None:
        raise ProfileMissing(f"account export profile {result.profile_id} no longer exists")
    profile = AccountExportProfile.from_record(profile_record)
    activity = result.to_domain()
    key = export_key(profile, result.result_id)
    if profile.file_format is FileFormat.XML:
        def write(out):
            write_xml(activity, profile, out)
        content_type = "application/xml"
    else:
        write = exports.as_text(lambda out: write_csv(activity, out))
        content_type = "text/csv"
    if ctx.dry_run:
        write(io.BytesIO())  # proves the file can be written (a result is at most ~100 KB)
        return 1
    exports.upload(key, write, content_type)
    results.mark_exported(result, key)
    ctx.count(written=1)
    ctx.output("s3", bucket=settings.data_bucket(), key=key)
    return 1


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return exc.message + ": " + "; ".join(f"{e.path} {e.message}" for e in exc.errors)
    return str(exc) if isinstance(exc, ProfileMissing) else f"{type(exc).__name__}: {exc}"
