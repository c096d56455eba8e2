"""The job table: every batch job's name, title, description, schedule, parameters, lock scope,
shards, AWS resources and where its implementation lives — listed here, nothing registers itself.

A job's code (``run``, ``shards``) is named by ``"module:function"`` and imported when a run
executes, and its parameters model (a class of :mod:`chalicelib.models.params`) when a run is
submitted with parameters or the job is described (``GET /jobs``). Reading the table therefore
loads no job module and no pydantic (only the storage models ``resources`` names): the scheduled
tick takes its parameters from ``defaults`` (plain data) and a stored run's are already clean.
``app.py`` spells every schedule out literally (Chalice reads them at import); a test keeps both
equal.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from chalicelib.storage.account_activity import AccountActivityCursor, AccountActivityResult
from chalicelib.storage.alerts import Alert
from chalicelib.storage.distribution import StoreState
from chalicelib.storage.download_sessions import DownloadSession, StatusMessageRecord
from chalicelib.storage.inventory import OnHand
from chalicelib.storage.journals import InventoryJournalRecord
from chalicelib.storage.ledger import LedgerLine, LedgerSequence
from chalicelib.storage.migration import EntityMapping, StagingJob, StagingRow
from chalicelib.storage.pay import PayBacklog, PayItem, PayTransfer, TimeRegistration
from chalicelib.storage.records import MasterRecord
from chalicelib.storage.statements import StatementRecord
from chalicelib.storage.transactions import PosTransaction


@dataclass(frozen=True)
class Resources:
    """The AWS resources a job touches beyond the runtime's own (run and coordination tables,
    the parameters record). Each Lambda function's least-privilege IAM policy is generated from
    these declarations (``deploy/iam.py``); the IAM test fails when a job uses more.

    ``tables``: model class -> ``"read"`` (get, batch get, query; its indexes included) or
    ``"write"`` (read, put, update, delete, batch write); append ``"+scan"`` to allow a Scan.
    ``objects``: ``"<bucket>/<key prefix>"`` (bucket ``data`` or ``migration``) -> ``"read"``
    (get, list under the prefix), ``"write"`` (read, put) or ``"delete"`` (write, delete).
    ``email``: sends mail from ``MAIL_FROM``.
    ``alerts_topic``: publishes to the stage's alerts topic (``ALERTS_TOPIC_ARN``).

    >>> Resources(tables={LedgerLine: "write", MasterRecord: "read"}, objects={"data/exports/": "write"})
    """

    tables: dict = field(default_factory=dict)
    objects: dict = field(default_factory=dict)
    email: bool = False
    alerts_topic: bool = False


@dataclass(frozen=True)
class Ref:
    """A function named by ``"package.module:function"``, imported on its first call."""

    path: str

    def resolve(self) -> Callable:
        module, _, name = self.path.partition(":")
        return getattr(import_module(module), name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)


def _whole_job(params: dict) -> str:
    return "all"


@dataclass
class Job:
    """One job. ``run`` and ``shards`` are callables or ``"module:function"`` references;
    ``params`` is the parameters model (a class, or its name in :mod:`chalicelib.models.params`);
    ``defaults`` are the values of the parameters left out, as plain data."""

    name: str
    title: str
    description: str
    schedule: str  # "" for a job started by a request or an event
    run: Callable | str
    params: type | str = "Params"
    defaults: dict = field(default_factory=dict)
    # Runs whose scopes are equal never execute at once; the default serialises the whole job.
    lock_scope: Callable[[dict], str] = _whole_job
    # For fan-out: returns the shard keys of a run (store ids: a shard per store), or a dict of
    # key -> store ids (a shard per group, e.g. per legal entity), or None to run whole.
    shards: Callable | str | None = None
    # For a fan-out: the parent's last step once every shard has ended (and when no store needed
    # one), ``close(parent, shards, counters, outputs) -> summary``; runs once per run.
    close: Callable | str | None = None
    # What the job touches in AWS beyond the runtime; the default is nothing more.
    resources: Resources = field(default_factory=Resources)

    def __post_init__(self) -> None:
        if isinstance(self.run, str):
            self.run = Ref(self.run)
        if isinstance(self.shards, str):
            self.shards = Ref(self.shards)
        if isinstance(self.close, str):
            self.close = Ref(self.close)

    @property
    def implementation(self) -> str:
        """The module that holds the job's code."""
        run = self.run
        return run.path.partition(":")[0] if isinstance(run, Ref) else run.__module__

    def params_model(self) -> type:
        if not isinstance(self.params, str):
            return self.params
        from chalicelib.models import params  # pydantic: only where parameters are read or described

        return getattr(params, self.params)

    def clean_params(self, params: Any) -> dict:
        """The run's parameters validated, defaults filled in; raises ``ValidationError`` naming
        every offending parameter. A scheduled job asked for its defaults answers from the table."""
        if self.schedule and (params is None or params == {}):
            return dict(self.defaults)
        from chalicelib.models.params import clean  # pydantic: not for the scheduled tick

        return clean(self.params_model(), params, self.defaults, f"invalid parameters for job {self.name}")

    def describe(self) -> dict:
        from chalicelib.models.params import describe  # pydantic: GET /jobs only
        from chalicelib.schedules import in_words

        return {"name": self.name, "title": self.title, "description": self.description,
                "schedule": self.schedule, "schedule_text": in_words(self.schedule),
                "params": describe(self.params_model(), self.defaults)}


def _jobs(*jobs: Job) -> dict[str, Job]:
    table = {job.name: job for job in jobs}
    if len(table) != len(jobs):
        raise ValueError("a job name is listed twice")
    return table


SCHEDULED_CLEAN_UP_DAYS = 30  # clean-up-staging on its schedule: staging jobs older than this

JOBS: dict[str, Job] = _jobs(
    Job(
        name="clean-up-staging",
        title="Clean up staging",
        description="Deletes migration staging rows (never live data) and marks their staging jobs Cleaned; weekly "
                    f"for jobs older than {SCHEDULED_CLEAN_UP_DAYS} days, and for an entity when its mapping is "
                    "dropped.",
        schedule="cron(0 3 ? * SUN *)",
        run="chalicelib.jobs.clean_up_staging:run",
        params="CleanUpStaging",
        defaults={"scope": "all"},
        # Different entities clean in parallel (several mappings dropped at once); deletes are idempotent.
        lock_scope=lambda params: params.get("entity") or "all",
        resources=Resources(tables={StagingJob: "write", StagingRow: "write"}),
    ),
    Job(
        name="copy-migration-to-target",
        title="Copy migration to target",
        description="Upserts a staging job's valid rows into the live tables "
                    "(POST /migration/jobs/{id}/copy-to-target).",
        schedule="",  # started over HTTP for one staging job
        run="chalicelib.jobs.copy_migration_to_target:run",
        params="CopyMigrationToTarget",
        defaults={"rows": "all"},
        lock_scope=lambda params: params["staging_job_id"],
        resources=Resources(tables={StagingJob: "write", StagingRow: "write", MasterRecord: "write",
                                    OnHand: "write"}),
    ),
    Job(
        name="export-account-activity",
        title="Export account activity",
        description="Writes every account activity result not yet exported to S3 as XML or CSV "
                    "(<file_prefix><result_id>.<ext> in the profile's folder) and marks it exported.",
        schedule="cron(30 2 * * ? *)",
        run="chalicelib.jobs.export_account_activity:run",
        resources=Resources(tables={AccountActivityResult: "write"}, objects={"data/account-activity/": "write"}),
    ),
    Job(
        name="generate-account-activity",
        title="Generate account activity",
        description="Adds up ledger debits and credits per mapped account for each account export profile, "
                    "from the day after its previous result through the profile's yesterday (today is never "
                    "included); ledger lines posted late for dates already covered go into an adjustment result.",
        schedule="cron(0 2 * * ? *)",
        run="chalicelib.jobs.generate_account_activity:run",
        params="GenerateAccountActivity",
        resources=Resources(tables={AccountActivityResult: "write", AccountActivityCursor: "write",
                                    LedgerLine: "read", LedgerSequence: "read+scan"}),
    ),
    Job(
        name="post-inventory",
        title="Post inventory",
        description="Applies the inventory journals of posted statements to on-hand stock, every line exactly "
                    "once; items that may not go negative are refused with the AX message and posted on a rerun.",
        schedule="cron(0/30 * * * ? *)",
        run="chalicelib.jobs.post_inventory:run",
        params="StoreTargeting",
        shards="chalicelib.jobs.post_inventory:stores_with_open_journals",
        resources=Resources(tables={InventoryJournalRecord: "write+scan", OnHand: "write"}),
    ),
    Job(
        name="post-statements",
        title="Post statements",
        description="Turns each store's completed transactions of each business date into a statement: balanced "
                    "ledger lines, an inventory journal, transactions Posted and their receipts ready to send.",
        schedule="cron(0 1 * * ? *)",
        run="chalicelib.jobs.post_statements:run",
        params="PostStatements",
        shards="chalicelib.jobs.post_statements:legal_entity_shards",
        resources=Resources(tables={PosTransaction: "write", StatementRecord: "write", LedgerLine: "write",
                                    LedgerSequence: "write", InventoryJournalRecord: "write"}),
    ),
    Job(
        name="process-assortments",
        title="Process assortments",
        description="Explodes published assortments into the products each store may sell, writes only what "
                    "changed and sends each changed store a download session (data group assortments); "
                    "publishes InProgress assortments and expires ended ones.",
        schedule="cron(5 * * * ? *)",
        run="chalicelib.jobs.process_assortments:run",
        shards="chalicelib.jobs.process_assortments:changed_stores",
        close="chalicelib.jobs.process_assortments:close",
        params="ProcessAssortments",
        defaults={"full_sync": False},
        resources=Resources(tables={StoreState: "write", DownloadSession: "write", MasterRecord: "write"},
                            objects={"data/packages/": "write", "data/fanout-plans/": "delete"}),
    ),
    Job(
        name="process-delivery-modes",
        title="Process delivery modes",
        description="Explodes delivery modes into stores, products and addresses, writes only what changed "
                    "and sends each changed store a download session (data group delivery-modes).",
        schedule="cron(15 2 * * ? *)",
        run="chalicelib.jobs.process_delivery_modes:run",
        shards="chalicelib.jobs.process_delivery_modes:changed_stores",
        close="chalicelib.jobs.process_delivery_modes:close",
        params="ProcessDeliveryModes",
        defaults={"full_sync": False},
        resources=Resources(tables={StoreState: "write", DownloadSession: "write"},
                            objects={"data/packages/": "write", "data/fanout-plans/": "delete"}),
    ),
    Job(
        name="process-status-messages",
        title="Process status messages",
        description="Applies the status messages stores posted to their download sessions (DOMAIN §9 moves, "
                    "try count and Suspended), flags stale sessions and purges final ones past the retention "
                    "period with their packages.",
        schedule="cron(0/15 * * * ? *)",
        run="chalicelib.jobs.process_status_messages:run",
        resources=Resources(tables={DownloadSession: "write", StatusMessageRecord: "write"},
                            objects={"data/packages/": "delete"}),
    ),
    Job(
        name="publish-alerts",
        title="Publish alerts",
        description="Hourly digest of the alerts recorded since the last one (runs ended Error or with failed "
                    "records, refused pay periods, suspended or stale sessions, upload conflicts): one message per "
                    "kind and job (or store) to the alerts topic, whose subscribers get it by email.",
        schedule="cron(0 * * * ? *)",
        run="chalicelib.jobs.publish_alerts:run",
        resources=Resources(tables={Alert: ("Query", "UpdateItem")}, alerts_topic=True),
    ),
    Job(
        name="purge-run-history",
        title="Purge run history",
        description="Deletes finished run records older than run_history_retention_days (default 90).",
        schedule="cron(30 4 * * ? *)",
        run="chalicelib.jobs.purge_run_history:run",
        params="PurgeRunHistory",
    ),
    Job(
        name="send-email-receipts",
        title="Send email receipts",
        description="Emails the receipts customers asked for (HTML, text and a PDF) once their transactions are "
                    "posted; each receipt is claimed before it is sent, so none goes twice.",
        schedule="cron(0/15 * * * ? *)",
        run="chalicelib.jobs.send_email_receipts:run",
        shards="chalicelib.jobs.send_email_receipts:queue_shards",
        close="chalicelib.jobs.send_email_receipts:close",
        params="SendEmailReceipts",
        defaults={"include_unposted": False},
        resources=Resources(tables={PosTransaction: "write"}, email=True),
    ),
    Job(
        name="stage-migration-file",
        title="Stage migration file",
        description="Reads an RMS export dropped at migration/data/<entity>/<name>.csv into staging rows, each "
                    "validated with its errors (started by the drop; start it again to re-stage an object).",
        schedule="",  # event-driven: on_migration_drop starts it
        run="chalicelib.jobs.stage_migration_file:run",
        params="StageMigrationFile",
        # A new upload of a file still being staged is staged beside it, not refused.
        lock_scope=lambda params: f"{params.get('bucket', '')}/{params['key']}#{params.get('etag', '')}",
        resources=Resources(tables={StagingJob: "write", StagingRow: "write", EntityMapping: "read"},
                            objects={"migration/migration/": "read"}),
    ),
    Job(
        name="transfer-to-pay",
        title="Transfer to pay",
        description="Exports approved worked time per worker, pay type and day as a payroll CSV per period type "
                    "and period: every ended period's pay items not yet transferred; late and changed ones in a "
                    "supplementary file for their period.",
        schedule="cron(0 3 * * ? *)",
        run="chalicelib.jobs.transfer_to_pay:run",
        params="TransferToPay",
        defaults={"include_already_exported": False, "accept_errors": False},
        resources=Resources(tables={PayItem: "write", PayTransfer: "write", TimeRegistration: "read",
                                    PayBacklog: "write"},
                            objects={"data/payroll/": "write"}),
    ),
)


def get_job(name: str) -> Job | None:
    return JOBS.get(name)


def all_jobs() -> list[Job]:
    return sorted(JOBS.values(), key=lambda j: j.name)
