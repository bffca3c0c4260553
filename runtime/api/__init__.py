"""The management API under /api/v1/exec/, one module per namespace."""
