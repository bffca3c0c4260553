"""Names the runtime's packages share, defined once (starlette's `types.py` habit)."""

Query = dict[str, str | list[str]]
"""Decoded query parameters or route parameters: a name repeated keeps all its values."""

DEFAULT_SUBDOMAIN, DEFAULT_EXEC_ID = "default", "1"
DEFAULT_TENANT = f"{DEFAULT_SUBDOMAIN}/{DEFAULT_EXEC_ID}"
"""The default tenant's name (`Tenant.name`), for code that names a tenant before it has one."""
