"""Every DynamoDB model of the application (provisioning, tests and Terraform read this list)."""
from __future__ import annotations

import os

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
from chalicelib.storage.runs import Coordination, RunRecord
from chalicelib.storage.statements import StatementRecord
from chalicelib.storage.tokens import ApiToken
from chalicelib.storage.transactions import PosTransaction
from chalicelib.storage.upload_issues import UploadIssue

ALL_MODELS = [RunRecord, Coordination, ApiToken, MasterRecord, LedgerLine, LedgerSequence, OnHand,
              AccountActivityResult, AccountActivityCursor, TimeRegistration, PayItem, PayTransfer, PayBacklog,
              StoreState, DownloadSession, StatusMessageRecord,
              StagingJob, StagingRow, EntityMapping,
              PosTransaction, StatementRecord, InventoryJournalRecord, UploadIssue, Alert]


_bound_to: tuple | None = None


def reset_connections(force: bool = False) -> None:
    """Drop PynamoDB's cached connections when the endpoint or region changed (or ``force``).

    Each connection owns a botocore client that is costly to build, so they are kept otherwise.
    """
    global _bound_to
    target = (os.environ.get("AWS_DEFAULT_REGION"), os.environ.get("AWS_ENDPOINT_URL"))
    if force or target != _bound_to:
        for model in ALL_MODELS:
            model._connection = None
        _bound_to = target
