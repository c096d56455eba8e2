"""retail-sync: the AWS Chalice application. Wiring only — every handler calls into chalicelib.

Functions (names are the interface contract): one scheduled function per batch job, ``run_job``
(executes and continues runs), ``run_shard`` (per-store shards from SQS), ``on_migration_drop``
(files dropped in the migration bucket) and ``api_handler`` (every HTTP route).

The schedules are spelled out here (Chalice reads them at import) so that importing the app loads
no job: each must equal its job's ``schedule`` in the job table (``chalicelib/jobs/registry.py``),
which a test checks.
"""
from chalice import Chalice

from chalicelib.http import alerts, common, console, distribution, finance, migration, platform, store_ops
from chalicelib.jobs.triggers import (
    MigrationDropEvent,
    on_migration_files,
    on_run_job,
    on_schedule,
    on_shard_messages,
)
from chalicelib.observability import lambda_context_middleware

app = Chalice(app_name="retail-sync")
app.register_middleware(lambda_context_middleware)
app.register_blueprint(common.bp)
app.register_blueprint(platform.bp)
app.register_blueprint(finance.bp)
app.register_blueprint(distribution.bp)
app.register_blueprint(migration.bp)
app.register_blueprint(store_ops.bp)
app.register_blueprint(console.bp)
app.register_blueprint(alerts.bp)

SHARD_QUEUE = "retail-sync-shards"  # Terraform points the event source at the stage's queue
# Chalice needs a literal bucket at import: the dev stage's. Terraform rewrites the notification
# per stage (retail-sync-<stage>-migration); the handler reads the bucket from each event record.
MIGRATION_BUCKET = "retail-sync-dev-migration"


@app.schedule("cron(30 4 * * ? *)", name="purge_run_history")
def purge_run_history(event):
    return on_schedule("purge-run-history", event)


@app.schedule("cron(0 2 * * ? *)", name="generate_account_activity")
def generate_account_activity(event):
    return on_schedule("generate-account-activity", event)


@app.schedule("cron(30 2 * * ? *)", name="export_account_activity")
def export_account_activity(event):
    return on_schedule("export-account-activity", event)


@app.schedule("cron(0 3 * * ? *)", name="transfer_to_pay")
def transfer_to_pay(event):
    return on_schedule("transfer-to-pay", event)


@app.schedule("cron(5 * * * ? *)", name="process_assortments")
def process_assortments(event):
    return on_schedule("process-assortments", event)


@app.schedule("cron(15 2 * * ? *)", name="process_delivery_modes")
def process_delivery_modes(event):
    return on_schedule("process-delivery-modes", event)


@app.schedule("cron(0/15 * * * ? *)", name="process_status_messages")
def process_status_messages(event):
    return on_schedule("process-status-messages", event)


@app.schedule("cron(0 3 ? * SUN *)", name="clean_up_staging")
def clean_up_staging(event):
    return on_schedule("clean-up-staging", event)


@app.on_s3_event(bucket=MIGRATION_BUCKET, events=["s3:ObjectCreated:*"], prefix="migration/",
                 name="on_migration_drop")
def on_migration_drop(event):
    return on_migration_files(event)


on_migration_drop.event_class = MigrationDropEvent  # S3's test event has no records


@app.schedule("cron(0 1 * * ? *)", name="post_statements")
def post_statements(event):
    return on_schedule("post-statements", event)


@app.schedule("cron(0/30 * * * ? *)", name="post_inventory")
def post_inventory(event):
    return on_schedule("post-inventory", event)


@app.schedule("cron(0/15 * * * ? *)", name="send_email_receipts")
def send_email_receipts(event):
    return on_schedule("send-email-receipts", event)


@app.schedule("cron(0 * * * ? *)", name="publish_alerts")
def publish_alerts(event):
    return on_schedule("publish-alerts", event)


@app.lambda_function(name="run_job")
def run_job(event, context):
    return on_run_job(event, context)


@app.on_sqs_message(queue=SHARD_QUEUE, batch_size=1, name="run_shard")
def run_shard(event):
    on_shard_messages(event)
