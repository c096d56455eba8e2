# Stage prod.
stage                            = "prod"
region                           = "us-east-1"
point_in_time_recovery           = true
deletion_protection              = true
package_retention_days           = 30
log_retention_days               = 90
migration_version_retention_days = 90
async_retry_attempts             = 2
async_max_event_age_seconds      = 3600
# alarm_actions = ["arn:aws:sns:us-east-1:123456789012:retail-sync-ops"]
# alert_emails = ["ops@example.com"]  # subscribed to the alerts topic (hourly digest, per-job alarms)
