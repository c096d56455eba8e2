# Stage dev: shares an account with prod safely (every name carries the stage).
stage                  = "dev"
region                 = "us-east-1"
point_in_time_recovery = false
deletion_protection    = false
package_retention_days = 14
log_retention_days     = 14
# alert_emails = ["ops@example.com"]  # subscribed to the alerts topic (hourly digest, per-job alarms)
