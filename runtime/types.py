"""Names the runtime's packages share, defined once (starlette's `types.py` habit)."""

Query = dict[str, str | list[str]]
"""Decoded query parameters or route parameters: a name repeated keeps all its values."""
