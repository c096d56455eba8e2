"""retail-sync: the AWS Chalice application. Wiring only — every handler calls into chalicelib.

Functions (names are the interface contract): one scheduled function per batch job, ``run_job``
(executes and continues runs), ``run_shard`` (per-store shards from SQS), ``on_migration_drop``
(files dropped in the migration bucket) and ``api_handler`` (every HTTP route).
"""
from chalice import Chalice, ConvertToMiddleware

from chalicelib.http import common, distribution, finance, platform
from chalicelib.jobs.triggers import on_run_job, on_schedule, on_shard_messages, schedule_of
from chalicelib.observability import logger

app = Chalice(app_name="retail-sync")
app.register_middleware(ConvertToMiddleware(logger().inject_lambda_context))
app.register_blueprint(common.bp)
app.register_blueprint(platform.bp)
app.register_blueprint(finance.bp)
app.register_blueprint(distribution.bp)

SHARD_QUEUE = "retail-sync-shards"  # Terraform points the event source at the stage's queue


@app.schedule(schedule_of("purge-run-history"), name="purge_run_history")
def purge_run_history(event):
    return on_schedule("purge-run-history", event)


@app.schedule(schedule_of("generate-account-activity"), name="generate_account_activity")
def generate_account_activity(event):
    return on_schedule("generate-account-activity", event)


@app.schedule(schedule_of("export-account-activity"), name="export_account_activity")
def export_account_activity(event):
    return on_schedule("export-account-activity", event)


@app.schedule(schedule_of("transfer-to-pay"), name="transfer_to_pay")
def transfer_to_pay(event):
    return on_schedule("transfer-to-pay", event)


@app.schedule(schedule_of("process-assortments"), name="process_assortments")
def process_assortments(event):
    return on_schedule("process-assortments", event)


@app.schedule(schedule_of("process-delivery-modes"), name="process_delivery_modes")
def process_delivery_modes(event):
    return on_schedule("process-delivery-modes", event)


@app.schedule(schedule_of("process-status-messages"), name="process_status_messages")
def process_status_messages(event):
    return on_schedule("process-status-messages", event)


@app.lambda_function(name="run_job")
def run_job(event, context):
    return on_run_job(event, context)


@app.on_sqs_message(queue=SHARD_QUEUE, batch_size=1, name="run_shard")
def run_shard(event):
    on_shard_messages(event)
