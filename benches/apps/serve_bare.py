"""Serve apps/bare.py through `runtime.server.serve`, the code path `wexec serve` uses.

    python benches/apps/serve_bare.py SERVER PORT [WORKERS [LOOP]]

So the baseline gets exactly the server options wexec gets (loop, HTTP parser, access log off,
worker processes), and follows them when they change.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent)]  # bare.py, and the checkout's runtime package

from runtime.config import Settings
from runtime.server import serve

if __name__ == "__main__":
    server, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    loop = sys.argv[4] if len(sys.argv) > 4 else "uvloop"
    settings = Settings(server=server, host="127.0.0.1", port=port, workers=workers, loop=loop)
    serve(settings, "bare:create_app")
