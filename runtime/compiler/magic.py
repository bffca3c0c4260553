"""Magic comments: the ``// @name value`` directives at the top of a script.

They are the only per-script configuration, so a mistake in one must be loud: every problem is
reported with its line, and nothing silently falls back to a default. The directive table below
is the single source for both the parser and the published schema.

No problem message ever quotes a directive's value: values include secrets (`@token`,
`@ai-key`, and whatever a script keeps in `@env`), and errors are shown to callers. The line
number says where to look. What the secret directives hold is known even when the comments are
invalid (`Secrets`), so a broken script's errors can still be kept from anyone without its token.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from croniter import croniter  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

Mode = Literal["worker", "serverless"]
LogLevel = Literal["none", "minimal", "standard", "full", "debug"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
"""In rising order of detail: the request log ranks them by position."""

FOREIGN_TAGS = frozenset(
    {"author", "copyright", "deprecated", "example", "file", "fileoverview", "flow", "format",
     "license", "link", "module", "param", "preserve", "returns", "return", "see", "since",
     "template", "throws", "type", "typedef", "version"}
)
"""Tags other tools own (JSDoc, licence headers): skipped, never an unknown-directive error.
``@ts-*`` and ``@jsx*`` pragmas are skipped too."""


SECRET_DIRECTIVES = ("token", "ai-key")


@dataclass(frozen=True, slots=True)
class Secrets:
    """What a script's secret directives hold, read even from comments that are otherwise invalid."""

    token: str | None = None
    """The ``@token``, when there is exactly one and it could be read."""
    values: tuple[str, ...] = ()
    """Every value written in a secret directive, well-formed or not: never to be shown."""
    unreadable_token: bool = False
    """A ``@token`` line that could not be read: nobody can prove they hold the token."""


class MagicCommentError(ValueError):
    """Magic comments that cannot be honoured; ``problems`` holds ``(line, message)`` pairs."""

    def __init__(self, problems: list[tuple[int, str]], secrets: Secrets | None = None) -> None:
        self.problems = sorted(problems)
        self.secrets = secrets if secrets is not None else Secrets()
        lines = "\n".join(f"  line {line}: {message}" for line, message in self.problems)
        super().__init__(f"invalid magic comments:\n{lines}")


def check_cors(value: str) -> str:
    """Accept ``none``, ``*``, ``reflective`` or one origin (scheme://host[:port], no path)."""
    if value in ("none", "*", "reflective"):
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/") \
            or parts.query or parts.fragment:
        raise ValueError(
            "expected reflective, *, none or an origin like https://app.example.com"
        )
    return f"{parts.scheme}://{parts.netloc}"


def check_schedule(value: str) -> str:
    """Accept a five-field cron expression (UTC) or a croniter macro such as ``@daily``."""
    fields = value.split()
    if not (len(fields) == 5 or (len(fields) == 1 and value.startswith("@"))) \
            or not croniter.is_valid(value):
        raise ValueError("expected a five-field cron expression like '*/5 * * * *'")
    return " ".join(fields)


class MagicComments(BaseModel):
    """What a script's magic comments ask for; every field has the reference product's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = "serverless"
    cors: str = "none"
    timeout: int | None = Field(default=None, ge=0, description="Milliseconds; None: the settings default; 0: no limit.")
    concurrent: int | None = Field(default=None, ge=1, description="None: unlimited; 1: strictly serial.")
    token: SecretStr | None = None
    websocket: bool = False
    ai: bool = False
    ai_model: str | None = None
    ai_temperature: float | None = Field(default=None, ge=0, le=2)
    ai_max_tokens: int | None = Field(default=None, ge=1)
    ai_key: SecretStr | None = None
    schedule: str | None = None
    log_level: LogLevel = "standard"
    log_request_body: bool = False
    description: str | None = None
    label: str | None = None
    tags: tuple[str, ...] = ()
    enabled: bool = True
    env: dict[str, str] = Field(default_factory=dict, repr=False)
    allow_hosts: tuple[str, ...] = ()

    @field_validator("cors")
    @classmethod
    def _cors(cls, value: str) -> str:
        return check_cors(value)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        return None if value is None else check_schedule(value)

    @property
    def secrets(self) -> Secrets:
        token = self.token.get_secret_value() if self.token is not None else None
        values = tuple(s.get_secret_value() for s in (self.token, self.ai_key) if s is not None)
        return Secrets(token, values)


def _flag(value: str) -> bool:
    if value in ("", "true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false (or nothing)")


def _boolean(value: str) -> bool:
    if not value:
        raise ValueError("expected true or false")
    return _flag(value)


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"expected one of {', '.join(allowed)}")
        return value
    return parse


def _text(value: str) -> str:
    if not value:
        raise ValueError("expected a value")
    return value


def _word(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError("expected one word without spaces")
    return value


def _secret(value: str) -> SecretStr:
    return SecretStr(_word(value))


def _timeout(value: str) -> int:
    if value == "unlimited":
        return 0
    if not value.isdigit():
        raise ValueError("expected milliseconds (an integer), 0 or unlimited")
    return int(value)


def _concurrent(value: str) -> int | None:
    if value in ("", "true"):
        return None
    if value == "false":
        return 1
    if not value.isdigit() or int(value) < 1:
        raise ValueError("expected a number >= 1, true (unlimited) or false (serial)")
    return int(value)


def _temperature(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a number between 0 and 2") from None
    if not 0 <= number <= 2:
        raise ValueError("expected a number between 0 and 2")
    return number


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ValueError("expected a positive integer")
    return int(value)


def _tags(value: str) -> tuple[str, ...]:
    tags = tuple(t for t in re.split(r"[,\s]+", value) if t)
    if not tags:
        raise ValueError("expected one or more tags separated by commas")
    return tags


_HOST_ENTRY = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")


def _hosts(value: str) -> tuple[str, ...]:
    hosts = tuple(h for h in re.split(r"[,\s]+", value) if h)
    if not hosts or not all(_HOST_ENTRY.fullmatch(h) for h in hosts):
        raise ValueError("expected host[:port] entries separated by commas, like api.example.com:443")
    return hosts


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env(value: str) -> tuple[str, str]:
    name, eq, raw = value.partition("=")
    name = name.strip()
    if not eq or not _ENV_NAME.fullmatch(name):
        raise ValueError("expected NAME=value with NAME a letter or _ then letters, digits or _")
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        raw = raw[1:-1]
    return name, raw


@dataclass(frozen=True)
class Directive:
    """One magic comment: how its value is read and how it is documented."""

    name: str
    field: str
    parse: Callable[[str], Any]
    type: str
    description: str
    values: tuple[str, ...] = ()
    example: str = ""
    repeatable: bool = False


DIRECTIVES: tuple[Directive, ...] = (
    Directive("mode", "mode", _choice("worker", "serverless"), "enum",
              "worker: one persistent instance keeps module state between requests; "
              "serverless: a fresh instance per request.", ("worker", "serverless"), "worker"),
    Directive("cors", "cors", check_cors, "string",
              "reflective mirrors the request origin, * allows any, an origin allows only it, "
              "none sends no CORS headers.", ("reflective", "*", "none", "<origin>"), "reflective"),
    Directive("timeout", "timeout", _timeout, "integer",
              "Request time limit in milliseconds; 0 or unlimited removes it. Absent: the "
              "server default.", ("<ms>", "0", "unlimited"), "5000"),
    Directive("concurrent", "concurrent", _concurrent, "integer|boolean",
              "Cap on simultaneous executions: a number, true for unlimited, false for one at a "
              "time (strict ordering).", ("<n>", "true", "false"), "false"),
    Directive("token", "token", _secret, "secret",
              "Shared secret clients must present (Bearer, Basic password, X-Token header or "
              "token query parameter). Redacted everywhere.", (), "my-secret-key"),
    Directive("websocket", "websocket", _flag, "flag",
              "Accept WebSocket connections; requires @mode worker.", ("true", "false"), ""),
    Directive("ai", "ai", _boolean, "boolean",
              "Inject the AI helpers (ai, model, generateText, streamText, generateObject). "
              "Implied by any @ai-* directive.", ("true", "false"), "true"),
    Directive("ai-model", "ai_model", _word, "string",
              "Model for the AI helpers, as provider/model.", (), "openai/gpt-4o"),
    Directive("ai-temperature", "ai_temperature", _temperature, "number",
              "Sampling temperature for the AI helpers, 0 to 2.", (), "0.7"),
    Directive("ai-max-tokens", "ai_max_tokens", _positive, "integer",
              "Output token cap for the AI helpers.", (), "2048"),
    Directive("ai-key", "ai_key", _secret, "secret",
              "Key or usage tag sent to the AI provider. Redacted everywhere.", (), "team-tag"),
    Directive("schedule", "schedule", check_schedule, "cron",
              "Run the script on a five-field cron schedule (UTC), one per file.", (),
              "*/5 * * * *"),
    Directive("log-level", "log_level", _choice(*LOG_LEVELS), "enum",
              "Access and console log verbosity.", LOG_LEVELS, "full"),
    Directive("log-request-body", "log_request_body", _flag, "flag",
              "Include request bodies in the access log.", ("true", "false"), ""),
    Directive("description", "description", _text, "string",
              "What the endpoint does; repeated lines are joined.", (), "Greeting handler",
              repeatable=True),
    Directive("label", "label", _text, "string",
              "A short name for listings and filters.", (), "billing"),
    Directive("tags", "tags", _tags, "list",
              "Tags for listings and filters, comma separated.", (), "webhook, stripe"),
    Directive("enabled", "enabled", _boolean, "boolean",
              "false keeps the file but does not serve it.", ("true", "false"), "false"),
    Directive("allow-hosts", "allow_hosts", _hosts, "list",
              "The only hosts (host[:port]) this script's fetch may reach; it narrows what the "
              "server allows and never widens it.", (), "api.example.com, hooks.example.com:8443"),
    Directive("env", "env", _env, "NAME=value",
              "Set process.env.NAME for this script; repeat for more variables.", (),
              "API_BASE=https://api.example.com", repeatable=True),
)
_BY_NAME = {d.name: d for d in DIRECTIVES}


def magic_comment_schema() -> dict[str, Any]:
    """Describe every directive, with its default, for the magic-comments schema endpoint."""
    defaults = MagicComments()
    directives = []
    for d in DIRECTIVES:
        default = getattr(defaults, d.field)
        if isinstance(default, tuple):
            default = list(default)
        directives.append({
            "name": d.name, "syntax": f"// @{d.name} {d.example}".rstrip(), "type": d.type,
            "default": default, "values": list(d.values), "repeatable": d.repeatable,
            "description": d.description,
        })
    return {
        "placement": "Comment lines (// or inside a leading /* */ block) before the first line "
                     "of code; one directive per line.",
        "ignored": sorted(FOREIGN_TAGS) + ["ts-*", "jsx*"],
        "directives": directives,
    }


_DIRECTIVE_LINE = re.compile(r"@([A-Za-z][\w-]*)(?:\s+(.*?))?\s*$")
_DIRECTIVE_NAME = re.compile(r"@([A-Za-z][\w-]*)(.*?)\s*$")
"""A line that starts like a directive; when `_DIRECTIVE_LINE` refuses it (``@token=x``) and it
names a known directive, it is a problem rather than an ignored comment."""


def _leading_comment_lines(source: str) -> list[tuple[int, str]]:
    """The text of each comment line before the first code, with its 1-based line number."""
    found: list[tuple[int, str]] = []
    in_block = False
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if number == 1:
            text = text.removeprefix("\ufeff")
            if text.startswith("#!"):
                continue
        while True:
            if in_block:
                body, closed, rest = text.partition("*/")
                body = body.strip()
                body = body[1:].strip() if body.startswith("*") and not body.startswith("*/") else body
                found.append((number, body))
                if not closed:
                    break
                in_block, text = False, rest.strip()
                if not text:
                    break
                continue
            if not text:
                break
            if text.startswith("//"):
                found.append((number, text[2:].strip()))
                break
            if text.startswith("/*"):
                in_block, text = True, text[2:].lstrip("*")
                continue
            return found
    return found


def directive_lines(source: str) -> list[tuple[int, str]]:
    """The comment lines the parser reads directives from, with their 1-based numbers: what
    the management API edits in place."""
    return _leading_comment_lines(source)


def parse_magic_comments(source: str) -> MagicComments:
    """Read the directives of ``source``; raise MagicCommentError listing every problem."""
    problems: list[tuple[int, str]] = []
    values: dict[str, Any] = {}
    seen: dict[str, int] = {}
    secret_values: list[str] = []
    tokens: list[str | None] = []  # each @token line's value, None for one that cannot be read
    for number, text in _leading_comment_lines(source):
        match = _DIRECTIVE_LINE.match(text)
        if match is None:
            loose = _DIRECTIVE_NAME.match(text)
            if loose is not None and loose.group(1).lower() in _BY_NAME:
                name, rest = loose.group(1), loose.group(2).lstrip("=: \t")
                if name.lower() in SECRET_DIRECTIVES:
                    secret_values.append(rest)
                    if name.lower() == "token":
                        tokens.append(None)
                problems.append((number, f"@{name} must be followed by a space, then its value"))
            continue
        name, raw = match.group(1), (match.group(2) or "")
        if name in FOREIGN_TAGS or name.startswith(("ts-", "jsx")):
            continue
        if name.lower() in SECRET_DIRECTIVES:
            secret_values.append(raw)
            if name.lower() == "token":
                tokens.append(raw if name == "token" else None)
        directive = _BY_NAME.get(name)
        if directive is None:
            close = difflib.get_close_matches(name.lower(), _BY_NAME, n=1)
            hint = f" (did you mean @{close[0]}?)" if close else ""
            problems.append((number, f"unknown directive @{name}{hint}"))
            continue
        if name in seen and not directive.repeatable:
            problems.append((number, f"@{name} given twice (first on line {seen[name]})"))
            continue
        seen.setdefault(name, number)
        try:
            value = directive.parse(raw)
        except ValueError as exc:
            problems.append((number, f"@{name}: {exc}"))
            if name == "token":
                tokens[-1] = None
            continue
        if directive.field == "env":
            values.setdefault("env", {})[value[0]] = value[1]
        elif directive.field == "description" and "description" in values:
            values["description"] += " " + value
        else:
            values[directive.field] = value
    if values.get("websocket") and values.get("mode", "serverless") != "worker":
        problems.append((seen["websocket"], "@websocket requires @mode worker"))
    ai_extras = [n for n in ("ai-model", "ai-temperature", "ai-max-tokens", "ai-key") if n in seen]
    if ai_extras:
        if values.get("ai") is False:
            problems.append((seen["ai"], f"@ai false contradicts @{ai_extras[0]}"))
        values.setdefault("ai", True)
    if problems:
        token = tokens[0] if len(tokens) == 1 else None
        unreadable = bool(tokens) and token is None
        raise MagicCommentError(problems, Secrets(token, tuple(secret_values), unreadable))
    return MagicComments(**values)
