"""Every DynamoDB model of the application (provisioning, tests and Terraform read this list)."""
from __future__ import annotations

from chalicelib.storage.inventory import OnHand
from chalicelib.storage.journals import InventoryJournalRecord, JournalLinePosting
from chalicelib.storage.ledger import LedgerLine
from chalicelib.storage.records import MasterRecord
from chalicelib.storage.runs import Coordination, RunRecord
from chalicelib.storage.statements import StatementRecord
from chalicelib.storage.tokens import ApiToken
from chalicelib.storage.transactions import PosTransaction

ALL_MODELS = [RunRecord, Coordination, ApiToken, MasterRecord, LedgerLine, OnHand,
              PosTransaction, StatementRecord, InventoryJournalRecord, JournalLinePosting]


def reset_connections() -> None:
    """Drop PynamoDB's cached connections (a new endpoint or a fresh moto)."""
    for model in ALL_MODELS:
        model._connection = None
