"""The one error the compiler raises: a script that cannot be turned into an artefact."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .magic import Secrets


class CompileError(Exception):
    """A script failed to compile; ``line`` and ``col`` (both 1-based) point into the original file.

    ``secrets`` is what the script's secret directives hold, when they could be read: the
    message may quote source text next to them, so whoever shows it needs them.
    """

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 col: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.secrets: Secrets | None = None

    def located(self, path: str) -> CompileError:
        """The same error attributed to ``path``, keeping its cause (e.g. a MagicCommentError)."""
        error = CompileError(self.message, path, self.line, self.col)
        error.__cause__ = self.__cause__
        error.secrets = self.secrets
        return error

    def __str__(self) -> str:
        where = self.path or "<script>"
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        return f"{where}: {self.message}"
