"""The HTTP request path for scripts: gateway, CORS, tokens, limits, errors."""
