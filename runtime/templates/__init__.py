"""Script templates: code with `{{name}}` placeholders, and the metadata that describes them.

Built-in templates are the files beside this module: `<name>.ts` (the code) and `<name>.json`
(its metadata), each a script that runs once its placeholders are filled (every placeholder has
a default). A tenant's own templates use the same two files under `_wexec/templates/` in its
folder; `_hoody/templates/`, where the reference product keeps them, is read too. Folders whose
names start with `_` are never routes, so a template is never served before it is generated.

A placeholder is `{{name}}` (spaces inside the braces allowed); `metadata.params` lists every
placeholder of the code, in order of first appearance, and `metadata.defaults` may give a value
for any of them. Values are substituted as text.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runtime.catalog.files import TenantFiles

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
CUSTOM_DIR = "_wexec/templates"
REFERENCE_DIR = "_hoody/templates"
"""Where the reference product keeps custom templates: read as custom, after `CUSTOM_DIR`."""
SUFFIXES = {".ts": "typescript", ".js": "javascript"}
BUILTIN_DIR = Path(__file__).resolve().parent

Source = Literal["builtin", "custom"]


class TemplateError(Exception):
    """What a template operation refuses; not a file error, so callers tell them apart."""


class UnknownTemplate(TemplateError):
    """No template of that name."""


class BuiltinTemplate(TemplateError):
    """An attempt to change or delete a built-in template."""


class TemplateExists(TemplateError):
    """A template of that name exists already."""


class InvalidTemplate(TemplateError):
    """A template that cannot be stored as given; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Template:
    name: str
    code: str
    metadata: dict[str, Any]
    source: Source
    path: str
    """The code's file: relative to the tenant's folder for a custom template, the file name
    for a built-in one."""


@dataclass(frozen=True, slots=True)
class Rendered:
    code: str
    values: dict[str, str]
    """What each placeholder was replaced with: given variables, then defaults."""
    missing: list[str]
    """Placeholders left in the code: neither a variable nor a default fills them."""

    @property
    def substituted(self) -> bool:
        return bool(self.values)


def placeholders(code: str) -> list[str]:
    """The placeholder names in `code`, each once, in order of first appearance."""
    return list(dict.fromkeys(PLACEHOLDER.findall(code)))


def as_text(value: Any) -> str:
    """A variable's value as it is substituted: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def render(template: Template, variables: Mapping[str, Any]) -> Rendered:
    """The template's code with its placeholders filled from `variables`, then its defaults."""
    defaults = template.metadata.get("defaults") or {}
    values: dict[str, str] = {}
    for name in placeholders(template.code):
        if name in variables:
            values[name] = as_text(variables[name])
        elif name in defaults:
            values[name] = as_text(defaults[name])
    code = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template.code)
    missing = [name for name in placeholders(template.code) if name not in values]
    return Rendered(code, values, missing)


def default_output(template: Template) -> str:
    """Where `generate` saves a template's code when no path is given."""
    suffix = ".ts" if template.metadata.get("language") == "typescript" else ".js"
    return str(template.metadata.get("outputPath") or f"{template.name}{suffix}")


@functools.cache
def builtins() -> dict[str, Template]:
    """The built-in templates, read once: they change only with the installed package."""
    found: dict[str, Template] = {}
    for code_file in sorted(BUILTIN_DIR.glob("*.ts")):
        metadata = json.loads(code_file.with_suffix(".json").read_text())
        code = code_file.read_text()
        found[code_file.stem] = Template(
            code_file.stem, code, _normal(code_file.stem, code, metadata, "typescript"),
            "builtin", code_file.name,
        )
    return found


class CustomTemplates:
    """One tenant's own templates, kept as files in its folder (confined and written atomically
    by `TenantFiles`)."""

    def __init__(self, files: TenantFiles) -> None:
        self.files = files

    def all(self) -> dict[str, Template]:
        found: dict[str, Template] = {}
        for folder in (REFERENCE_DIR, CUSTOM_DIR):  # the later folder wins a name
            found.update(self._read_folder(folder))
        return found

    def get(self, name: str) -> Template:
        """The template `name`, built-in or custom; UnknownTemplate when neither exists."""
        builtin = builtins().get(name)
        if builtin is not None:
            return builtin
        custom = self.all().get(name)
        if custom is None:
            raise UnknownTemplate(
                f"no template named {name!r}; GET templates/list shows the ones there are")
        return custom

    def create(self, name: str, code: str, metadata: Mapping[str, Any]) -> Template:
        if not NAME.match(name):
            raise InvalidTemplate(
                f"name {name!r} cannot name a template: use 1 to 64 lower-case letters, digits, "
                "'-' or '_', starting with a letter or digit")
        if name in builtins():
            raise TemplateExists(f"{name!r} is a built-in template; choose another name")
        if name in self.all():
            raise TemplateExists(
                f"a custom template {name!r} exists; change it with PUT templates/update-custom/"
                f"{name} or delete it first")
        language = metadata.get("language", "javascript")
        return self._store(name, code, _normal(name, code, metadata, language), CUSTOM_DIR)

    def update(self, name: str, code: str | None, patch: Mapping[str, Any]) -> Template:
        """New code and/or metadata merged over the old; `params` follows the code."""
        if name in builtins():
            raise BuiltinTemplate(
                f"{name!r} is a built-in template and cannot be changed; create a custom one "
                "from its code under another name")
        old = self.all().get(name)
        if old is None:
            raise UnknownTemplate(f"no custom template named {name!r}")
        new_code = old.code if code is None else code
        merged = {**old.metadata, **patch}
        if "params" not in patch:
            merged.pop("params", None)
        if "defaults" not in patch:  # a placeholder the new code dropped loses its default
            found = placeholders(new_code)
            merged["defaults"] = {k: v for k, v in old.metadata["defaults"].items() if k in found}
        metadata = _normal(name, new_code, merged, merged["language"])
        stored = self._store(name, new_code, metadata, old.path.rsplit("/", 1)[0])
        if stored.path != old.path:  # the language changed, and the code's suffix with it
            self.files.delete(old.path)
        return stored

    def delete(self, name: str) -> Template:
        if name in builtins():
            raise BuiltinTemplate(f"{name!r} is a built-in template; built-in templates cannot "
                                  "be deleted")
        old = self.all().get(name)
        if old is None:
            raise UnknownTemplate(f"no custom template named {name!r}")
        self.files.delete(old.path)
        with contextlib.suppress(FileNotFoundError):  # the reference's may have no metadata
            self.files.delete(f"{old.path.rsplit('/', 1)[0]}/{name}.json")
        return old

    def _store(self, name: str, code: str, metadata: dict[str, Any], folder: str) -> Template:
        path = f"{folder}/{name}{_suffix(metadata['language'])}"
        self.files.write(f"{folder}/{name}.json", json.dumps(metadata, indent=2).encode() + b"\n")
        self.files.write(path, code.encode())
        return Template(name, code, metadata, "custom", path)

    def _read_folder(self, folder: str) -> dict[str, Template]:
        try:
            entries = self.files.entries(folder)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        found: dict[str, Template] = {}
        for entry in entries:
            suffix = Path(entry.path).suffix
            name = Path(entry.path).stem
            if entry.kind != "file" or suffix not in SUFFIXES or not NAME.match(name):
                continue
            code = self.files.read(entry.path).decode("utf-8", errors="replace")
            try:
                metadata = json.loads(self.files.read(f"{folder}/{name}.json"))
            except (FileNotFoundError, ValueError):
                metadata = {}  # the reference's templates may come without metadata
            if not isinstance(metadata, dict):
                metadata = {}
            metadata.pop("params", None)  # the code's placeholders are the truth
            try:
                normal = _normal(name, code, metadata, SUFFIXES[suffix])
            except InvalidTemplate:  # edited by hand into a contradiction: keep the code usable
                normal = _normal(name, code, {}, SUFFIXES[suffix])
            found[name] = Template(name, code, normal, "custom", entry.path)
        return found


def _suffix(language: str) -> str:
    return ".ts" if language == "typescript" else ".js"


def _normal(name: str, code: str, metadata: Mapping[str, Any], language: str) -> dict[str, Any]:
    """Metadata with the reference's fields filled in; InvalidTemplate when it contradicts the
    code (a placeholder `params` does not list, or a listed one the code does not have)."""
    if language not in SUFFIXES.values():
        raise InvalidTemplate(f"metadata.language {language!r}: use typescript or javascript")
    found = placeholders(code)
    params = metadata.get("params", found)
    if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
        raise InvalidTemplate("metadata.params must be a list of placeholder names")
    unlisted = [p for p in found if p not in params]
    unused = [p for p in params if p not in found]
    if unlisted or unused:
        problems = []
        if unlisted:
            shown = ", ".join("{{" + p + "}}" for p in unlisted)
            problems.append(f"the code has {shown} which "
                            "metadata.params does not list")
        if unused:
            problems.append(f"metadata.params lists {', '.join(unused)} which the code never "
                            "uses as {{name}}")
        raise InvalidTemplate("; ".join(problems) + " (leave params out to take the code's)")
    defaults = metadata.get("defaults", {})
    if not isinstance(defaults, dict) or any(k not in found for k in defaults):
        raise InvalidTemplate("metadata.defaults must be an object whose keys are placeholders "
                              f"of the code ({', '.join(found) or 'it has none'})")
    tags = metadata.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise InvalidTemplate("metadata.tags must be a list of strings")
    for key in ("category", "description", "version", "author", "outputPath"):
        value = metadata.get(key, "")
        if not isinstance(value, str) and not (value is None and key in ("author", "outputPath")):
            raise InvalidTemplate(f"metadata.{key} must be a string")
    return {
        "category": "custom",
        "description": "",
        "version": "1.0.0",
        **metadata,
        "name": name,
        "tags": tags,
        "params": found,
        "defaults": defaults,
        "language": language,
    }
