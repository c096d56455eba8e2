"""Deployment tooling (never shipped to Lambda): the Terraform package, least-privilege IAM per
function, failure routing, the offline check and the cost model. ``python -m deploy --help``."""
