"""The embedded local stack: moto's server in process, the unchanged application on top of it.

Development-only (not shipped to Lambda): ``python -m devstack demo | serve | bench | importtime``.
"""
