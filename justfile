# wexec developer recipes. `just --list` shows them.

# Run the whole test suite (builds the guest on first use).
test *args:
    python -m pytest {{args}}

# Build the guest engine, its snapshot and machine code (normally done on first use).
build-guest:
    python -m runtime.cli build

# In-process sandbox benchmarks (serverless, worker, compile, start-up, memory) with ratios.
bench:
    python benches/sandbox.py

# HTTP load benchmarks (wrk): bare app vs worker vs serverless per server, plus workerd.
bench-http:
    python benches/http_load.py

# Lint and type-check.
lint:
    ruff check runtime tests benches build
    mypy runtime
