"""Script source → QuickJS bytecode artefact, cached by content.

``Compiler`` is the entry point; the guest compile step is handed in as a ``ToBytecode``.
"""

from .artefact import Artefact
from .bytecode import ToBytecode, wrap_factory
from .compiler import COMPILER_VERSION, Compiler
from .errors import CompileError
from .shape import Shape

__all__ = ["COMPILER_VERSION", "Artefact", "CompileError", "Compiler", "Shape", "ToBytecode",
           "wrap_factory"]
