"""The Lambda functions of the Chalice app and what triggers each, read from the app itself, so
a function added in ``app.py`` shows up in IAM, failure routing and the checks without edits."""
from __future__ import annotations

from dataclasses import dataclass

from chalice import app as chalice_app

from deploy.stage import API_FUNCTION, stage_names

# How a function is invoked decides its failure routing: asynchronous invocations (EventBridge,
# S3, ``InvocationType=Event``) get retries and an on-failure destination; SQS and API calls do not.
ASYNC_TRIGGERS = frozenset({"schedule", "s3", "event", "invoke"})


@dataclass(frozen=True)
class Function:
    name: str
    trigger: str  # schedule | sqs | s3 | event | invoke | api | authorizer
    schedule: str | None = None
    queue: str | None = None
    bucket: str | None = None
    prefix: str | None = None

    @property
    def asynchronous(self) -> bool:
        return self.trigger in ASYNC_TRIGGERS

    @property
    def job_name(self) -> str:
        """The job a scheduled function runs: the contract names them alike (``post_inventory``)."""
        return self.name.replace("_", "-")


def load_app():
    import app

    return app.app


def functions(application=None) -> list[Function]:
    application = application or load_app()
    found: list[Function] = []
    for source in application.event_sources:
        if isinstance(source, chalice_app.ScheduledEventConfig):
            found.append(Function(source.name, "schedule", schedule=source.schedule_expression))
        elif isinstance(source, chalice_app.SQSEventConfig):
            found.append(Function(source.name, "sqs", queue=source.queue))
        elif isinstance(source, chalice_app.S3EventConfig):
            found.append(Function(source.name, "s3", bucket=source.bucket, prefix=source.prefix or ""))
        elif isinstance(source, chalice_app.CloudWatchEventConfig):
            found.append(Function(source.name, "event"))
        else:
            raise ValueError(f"{type(source).__name__} ({source.name}) is not supported by the deployment")
    found += [Function(f.name, "invoke") for f in application.pure_lambda_functions]
    found += [Function(a.name, "authorizer") for a in application.builtin_auth_handlers]
    if application.routes:
        found.append(Function(API_FUNCTION, "api"))
    return sorted(found, key=lambda f: f.name)


def route_modules(application=None) -> set[str]:
    """The modules (blueprints) whose routes the API handler serves."""
    application = application or load_app()
    return {entry.view_function.__module__ for methods in application.routes.values() for entry in methods.values()}


def managed_key(literal: str, known: dict) -> str:
    """Map a literal bucket or queue name written in a decorator (``retail-sync-shards``) to the
    deployment's key for it (``shards``): the decorators cannot know the stage."""
    from chalicelib.settings import APP_NAME

    name = literal.removeprefix(f"{APP_NAME}-")
    for stage in stage_names():
        name = name.removeprefix(f"{stage}-")
    key = name.replace("-", "_")
    if key not in known:
        raise ValueError(f"{literal!r} names no resource the deployment manages ({', '.join(known)})")
    return key
