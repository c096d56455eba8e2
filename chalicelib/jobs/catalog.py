"""Imports every job module; each registers itself with the registry on import."""
from chalicelib.jobs import (
    post_inventory,  # noqa: F401
    post_statements,  # noqa: F401
    purge_run_history,  # noqa: F401
    send_email_receipts,  # noqa: F401
)
