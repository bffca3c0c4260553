"""The sandbox: compiled scripts in, responses out, every run inside its own wasm store.

``Sandbox`` (``sandbox.py``) is the one entry point; the rest is its machinery: the engine and
its linear memories (``engine.py``, ``memory.py``), instances and their crossings
(``instance.py``), the request driver (``driver.py``), the guest threads (``threads.py``) and the
serverless images (``images.py``).
"""

from runtime.sandbox.errors import SandboxError, ScriptError, ScriptMemoryError, ScriptTimeout
from runtime.sandbox.sandbox import Sandbox
from runtime.sandbox.types import BodyStream, Invocation, LogRecord, Result

__all__ = [
    "BodyStream",
    "Invocation",
    "LogRecord",
    "Result",
    "Sandbox",
    "SandboxError",
    "ScriptError",
    "ScriptMemoryError",
    "ScriptTimeout",
]
