"""Scripts on disk: magic comments, routes and tenants."""
