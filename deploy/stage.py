"""Physical names of a stage's resources, computed by the application's own settings under the
stage's environment from ``.chalice/config.json`` — so Terraform, IAM and the code agree."""
from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from chalicelib import settings
from chalicelib.storage.tables import ALL_MODELS
from devstack import localenv

# Buckets and queues the deployment owns, by the key that declarations and Terraform use.
BUCKETS = {"data": settings.data_bucket, "migration": settings.migration_bucket}
QUEUES = {
    "shards": settings.shard_queue_name,
    "shards_dlq": lambda: settings.shard_queue_name() + "-dlq",
    "failures": lambda: f"{settings.APP_NAME}-{settings.stage()}-failures",
}
API_FUNCTION = "api_handler"


@contextlib.contextmanager
def stage_environment(stage: str) -> Iterator[dict[str, str]]:
    """``os.environ`` with the stage's variables, restored afterwards."""
    saved = dict(os.environ)
    env = localenv.stage_environment(stage)
    os.environ.update(env)
    try:
        yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def stage_names() -> list[str]:
    config = json.loads((localenv.PROJECT_DIR / ".chalice" / "config.json").read_text())
    return sorted(config["stages"])


def table_base(model) -> str:
    """The stage-less table name of a PynamoDB model (``runs`` for ``retail-sync-dev-runs``)."""
    return model.Meta.__dict__["table_name"].base


def model_by_base() -> dict[str, type]:
    return {table_base(m): m for m in ALL_MODELS}


def tf_key(name: str) -> str:
    """A Terraform resource name for a base name (``on-hand`` -> ``on_hand``)."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class Stage:
    name: str

    @cached_property
    def env(self) -> dict[str, str]:
        return localenv.stage_environment(self.name)

    @cached_property
    def _names(self) -> dict:
        with stage_environment(self.name):
            return {
                "table_prefix": settings.table_name(""),
                "buckets": {key: name() for key, name in BUCKETS.items()},
                "queues": {key: name() for key, name in QUEUES.items()},
                "mail_from": settings.mail_from(),
                "alerts_topic": settings.alerts_topic_name(),
            }

    def table(self, base: str) -> str:
        return self._names["table_prefix"] + base

    def bucket(self, key: str) -> str:
        return self._names["buckets"][key]

    def queue(self, key: str) -> str:
        return self._names["queues"][key]

    @property
    def mail_from(self) -> str:
        return self._names["mail_from"]

    @property
    def alerts_topic(self) -> str:
        return self._names["alerts_topic"]

    def function(self, name: str) -> str:
        """Chalice's deployed function name (the API handler carries no suffix)."""
        prefix = f"{settings.APP_NAME}-{self.name}"
        return prefix if name == API_FUNCTION else f"{prefix}-{name}"

    def prefix(self) -> str:
        return f"{settings.APP_NAME}-{self.name}-"
