"""Imports every job module; each registers itself with the registry on import."""
from chalicelib.jobs import (  # noqa: F401
    clean_up_staging,
    copy_migration_to_target,
    purge_run_history,
    stage_migration_file,
)
