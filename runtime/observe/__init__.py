"""Request logs, metrics and tracing."""
