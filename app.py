"""retail-sync: the AWS Chalice application. Wiring only — every handler calls into chalicelib.

Functions (names are the interface contract): one scheduled function per batch job, ``run_job``
(executes and continues runs), ``run_shard`` (per-store shards from SQS), ``on_migration_drop``
(files dropped in the migration bucket) and ``api_handler`` (every HTTP route).
"""
from chalice import Chalice, ConvertToMiddleware

from chalicelib.http import common, platform, store_ops
from chalicelib.jobs.triggers import on_run_job, on_schedule, on_shard_messages, schedule_of
from chalicelib.observability import logger

app = Chalice(app_name="retail-sync")
app.register_middleware(ConvertToMiddleware(logger().inject_lambda_context))
app.register_blueprint(common.bp)
app.register_blueprint(platform.bp)
app.register_blueprint(store_ops.bp)

SHARD_QUEUE = "retail-sync-shards"  # Terraform points the event source at the stage's queue


@app.schedule(schedule_of("purge-run-history"), name="purge_run_history")
def purge_run_history(event):
    return on_schedule("purge-run-history", event)


@app.schedule(schedule_of("post-statements"), name="post_statements")
def post_statements(event):
    return on_schedule("post-statements", event)


@app.schedule(schedule_of("post-inventory"), name="post_inventory")
def post_inventory(event):
    return on_schedule("post-inventory", event)


@app.schedule(schedule_of("send-email-receipts"), name="send_email_receipts")
def send_email_receipts(event):
    return on_schedule("send-email-receipts", event)


@app.lambda_function(name="run_job")
def run_job(event, context):
    return on_run_job(event, context)


@app.on_sqs_message(queue=SHARD_QUEUE, batch_size=1, name="run_shard")
def run_shard(event):
    on_shard_messages(event)
