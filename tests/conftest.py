"""Shared fixtures. moto is imported before the application so every client is intercepted."""
import os

os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.update(AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
                  AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing")

import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402  (must precede the application's imports)

from devstack import localenv  # noqa: E402

localenv.apply("local")


def pytest_configure(config):
    """The receipt catalogs as `make catalogs` compiles them, also for a bare `pytest` run."""
    if not hasattr(config, "workerinput"):  # once, in the controller, before xdist's workers start
        from deploy.catalogs import compile_catalogs

        compile_catalogs()


@pytest.fixture
def local_moto():
    """moto as the local stack runs it (``devstack.moto_transactions``), for this test only: moto's
    own transactions copy a table once per action."""
    from devstack import moto_transactions

    with moto_transactions.installed():
        yield


@pytest.fixture
def aws():
    """A fresh in-process moto with every table, bucket, queue and the SES sender provisioned."""
    from chalicelib.provision import provision
    from chalicelib.storage.tables import reset_connections

    with mock_aws():
        reset_connections()
        provision()
        yield


@pytest.fixture
def client(aws):
    from chalice.test import Client

    import app

    with Client(app.app, stage_name="local", project_dir=str(localenv.PROJECT_DIR)) as test_client:
        yield test_client


@pytest.fixture
def operator_token(aws):
    from chalicelib.auth import issue_token

    return issue_token("operator", label="tests")


@pytest.fixture
def operator(operator_token):
    return {"Authorization": f"Bearer {operator_token}", "Content-Type": "application/json"}


def store_headers(store_id: str) -> dict:
    from chalicelib.auth import issue_token

    return {"Authorization": f"Bearer {issue_token('store', store_id=store_id)}",
            "Content-Type": "application/json"}


def bare_stores(store_ids, org_node: str = "HQ") -> dict[str, list[dict]]:
    """The records a worker's or an upload's store refers to: an org node and stores under it
    (``PUT /data`` refuses a reference to a record that does not exist), entity by entity."""
    return {"org-nodes": [{"id": org_node, "name": "Head office", "parent_id": None}],
            "stores": [{"id": s, "name": f"Store {s}", "legal_entity": "USRT", "org_node_id": org_node}
                       for s in store_ids]}


def schedule_event(client, event_id: str = "evt-1") -> dict:
    """A scheduled EventBridge delivery (chalice's test client has no schedule generator)."""
    event = client.events.generate_cw_event(source="aws.events", detail_type="Scheduled Event", detail={},
                                            resources=["arn:aws:events:us-east-1:123456789012:rule/x"])
    event["id"] = event_id
    return event


def run_directly(job: str, params: dict | None = None) -> dict:
    """Run a job in this process under this process's environment (the test client would apply the
    stage's, e.g. its time budget); the Run as the API shows it, plus its continuation ``hops``."""
    from chalicelib.jobs import runtime

    record = runtime.start(job, params or {}, trigger="manual", requested_by="tests").run
    return {**record.to_api(), "hops": record.hops}
