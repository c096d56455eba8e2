"""Imports every job module; each registers itself with the registry on import."""
from chalicelib.jobs import (  # noqa: F401
    clean_up_staging,
    copy_migration_to_target,
    export_account_activity,
    generate_account_activity,
    post_inventory,
    post_statements,
    process_assortments,
    process_delivery_modes,
    process_status_messages,
    purge_run_history,
    send_email_receipts,
    stage_migration_file,
    transfer_to_pay,
)
