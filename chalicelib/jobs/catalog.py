"""Imports every job module; each registers itself with the registry on import."""
from chalicelib.jobs import purge_run_history  # noqa: F401
