"""Where magic comments were parsed before the compiler, their only parser, took them over.

Kept so code written against the old path still imports; new code imports
`runtime.compiler.magic`.
"""

from runtime.compiler.magic import (
    DIRECTIVES,
    MagicCommentError,
    MagicComments,
    magic_comment_schema,
    parse_magic_comments,
)

__all__ = [
    "DIRECTIVES",
    "MagicCommentError",
    "MagicComments",
    "magic_comment_schema",
    "parse_magic_comments",
]
