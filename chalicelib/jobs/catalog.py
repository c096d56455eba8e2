"""Imports every job module; each registers itself with the registry on import."""
from chalicelib.jobs import (
    process_assortments,  # noqa: F401
    process_delivery_modes,  # noqa: F401
    process_status_messages,  # noqa: F401
    purge_run_history,  # noqa: F401
)
