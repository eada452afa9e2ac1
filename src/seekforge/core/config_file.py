"""Reading YAML configuration files: overrides, relative paths, and every validation problem reported at
once with its dotted path, its line in the file and, for a misspelled key, the nearest valid one.

Used by the recipe and by ``data_quality.yaml``; imports no heavy library.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from seekforge.core.config import PluggableConfig
from seekforge.core.errors import ConfigError, ConfigIssue

M = TypeVar("M", bound=BaseModel)


def load_config(
    source: str | Path | Mapping[str, Any],
    model: type[M],
    *,
    what: str,
    overrides: Iterable[str] = (),
    resolve_paths: bool = False,
    hint: str | None = None,
) -> M:
    """Read, override and validate a YAML configuration of any seekforge config model.

    Every problem is reported at once, with its dotted path, its line in the file and, for a misspelled
    key, the nearest valid one.

    Args:
        source: A YAML file or a mapping.
        model: The config class to validate against.
        what: What the file is, for messages (``recipe``, ``data quality configuration``).
        overrides: ``dotted.key=value`` strings; values are parsed as YAML.
        resolve_paths: Make relative data paths relative to the file's folder.
        hint: What to suggest when the file is not a mapping.

    Raises:
        ConfigError: Unreadable file, malformed YAML or invalid content; lists every problem.
    """
    lines: dict[tuple[Any, ...], int] = {}
    origin: str | None = None
    base_dir: Path | None = None
    if isinstance(source, Mapping):
        raw: Any = json.loads(json.dumps(source, default=str))
    else:
        path = Path(source)
        origin, base_dir = str(path), path.resolve().parent
        raw, lines = _read_yaml(path, what)
    if raw is None and origin is not None:
        raw = {}  # an empty file: every default
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin or what}: expected a mapping of sections, got {type(raw).__name__}", hint=hint)
    override_keys: set[tuple[str, ...]] = set()
    for item in overrides:
        key = _apply_override(raw, item)
        override_keys.add(key)
    if resolve_paths and base_dir is not None:
        _resolve_paths(raw, base_dir)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        issues = [issue for err in exc.errors() for issue in _to_issues(err, raw, lines, override_keys, model)]
        raise ConfigError(
            f"{origin or what} is invalid ({len(issues)} problem{'s' * (len(issues) != 1)}):",
            issues=issues,
            source=origin,
        ) from None


def _read_yaml(path: Path, what: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} file not found: {path}", hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(
            f"{where}: malformed YAML: {problem}", hint="check indentation, colons and quotes on that line"
        ) from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _collect_lines(node, (), lines)
    return data, lines


def _collect_lines(node: yaml.Node, prefix: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            path = (*prefix, key.value)
            out[path] = key.start_mark.line + 1
            _collect_lines(value, path, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            out[(*prefix, i)] = value.start_mark.line + 1
            _collect_lines(value, (*prefix, i), out)


def _apply_override(raw: dict[str, Any], item: str) -> tuple[str, ...]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected dotted.key=value", hint="e.g. --set train.epochs=5")
    parts = tuple(key.strip().split("."))
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    target: Any = raw
    for i, part in enumerate(parts[:-1]):
        if isinstance(target, list) and part.isdigit() and int(part) < len(target):
            target = target[int(part)]
            continue
        if not isinstance(target, dict):
            raise ConfigError(f"--set {item!r}: '{'.'.join(parts[: i + 1])}' is not a section")
        nxt = target.get(part)
        if isinstance(nxt, str) and part in ("model", "optimizer"):  # shorthand {type: name}
            nxt = target[part] = {"type": nxt}
        if nxt is None:
            nxt = target[part] = {}
        target = nxt
    if isinstance(target, list) and parts[-1].isdigit() and int(parts[-1]) < len(target):
        target[int(parts[-1])] = parsed
    elif isinstance(target, dict):
        target[parts[-1]] = parsed
    else:
        raise ConfigError(f"--set {item!r}: '{'.'.join(parts[:-1])}' is not a section")
    return parts


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    def resolve(value: Any) -> Any:
        if not isinstance(value, str) or not value or ":" in value.split("/")[0]:
            return value  # builtin:NAME or another scheme
        path = Path(value).expanduser()
        return value if path.is_absolute() else str((base / path).resolve())

    data = raw.get("data")
    if isinstance(data, dict):
        for key in ("source", "test", "path"):  # path: a fine-tuning recipe's data
            if key in data:
                data[key] = resolve(data[key])
    model = raw.get("model")
    for key in ("pretrained", "base", "start"):  # base, start: a fine-tuning recipe's model, or package to go on from
        if isinstance(model, dict) and key in model:
            model[key] = resolve(model[key])
    warm = raw.get("warm_start")
    if isinstance(warm, dict) and "package" in warm:
        warm["package"] = resolve(warm["package"])
    distill = (raw.get("compress") or {}).get("distill") if isinstance(raw.get("compress"), dict) else None
    if isinstance(distill, dict) and isinstance(distill.get("student"), str):
        distill["student"] = resolve(distill["student"])


# ----------------------------------------------------------------------------------------- error report


def _to_issue(
    err: Mapping[str, Any],
    raw: Any,
    lines: Mapping[tuple[Any, ...], int],
    override_keys: set[tuple[str, ...]],
    model: type[BaseModel],
) -> ConfigIssue:
    path = _data_path(tuple(err["loc"]), raw)
    dotted = ".".join(str(p) for p in path)
    line = None
    text_path = tuple(map(str, path))
    from_override = bool(text_path) and any(
        text_path[: len(key)] == key or key[: len(text_path)] == text_path for key in override_keys
    )
    if not from_override:
        line = next((lines[path[:n]] for n in range(len(path), 0, -1) if path[:n] in lines), None)
    suggestion = None
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _fields_at(path[:-1], raw, model)
        close = difflib.get_close_matches(str(path[-1]), allowed, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
        message = f"unknown key '{path[-1]}'"
        if allowed and not suggestion:
            message += f" (allowed: {', '.join(allowed)})"
    elif kind == "missing":
        message = "is required"
    else:
        message = str(err["msg"]).removeprefix("Value error, ")
        value = err.get("input")
        if not isinstance(value, dict | list) and kind not in ("value_error", "assertion_error"):
            message += f", got {value!r}"
    if from_override:
        message += " (from --set)"
    return ConfigIssue(path=dotted, message=message, line=line, suggestion=suggestion)


def _to_issues(
    err: Mapping[str, Any],
    raw: Any,
    lines: Mapping[tuple[Any, ...], int],
    override_keys: set[tuple[str, ...]],
    model: type[BaseModel],
) -> list[ConfigIssue]:
    """One issue per problem; a cross-section check (at the root) names its path as ``dotted.path: ...``."""
    if err["loc"] or err["type"] != "value_error":
        return [_to_issue(err, raw, lines, override_keys, model)]
    issues = []
    for text in str(err["msg"]).removeprefix("Value error, ").splitlines():
        head, sep, rest = text.partition(": ")
        loc = tuple(head.split(".")) if sep and re.fullmatch(r"[a-z_][\w.]*", head) else ()
        issues.append(_to_issue({**err, "loc": loc, "msg": rest if loc else text}, raw, lines, override_keys, model))
    return issues


def _data_path(loc: tuple[Any, ...], raw: Any) -> tuple[Any, ...]:
    """Drop the union tags pydantic puts in ``loc`` so the path matches the YAML."""
    out: list[Any] = []
    node = raw
    for seg in loc:
        if isinstance(node, dict) and seg not in node and node.get("type") == seg:
            continue  # discriminator tag
        if isinstance(seg, str) and seg.startswith("function-"):
            continue
        out.append(seg)
        if isinstance(node, dict):
            node = node.get(seg)
        elif isinstance(node, list) and isinstance(seg, int) and seg < len(node):
            node = node[seg]
        else:
            node = None
    return tuple(out)


def _fields_at(path: tuple[Any, ...], raw: Any, model: type[BaseModel]) -> list[str]:
    """Names of the valid keys of the section at ``path`` of ``model`` (for suggestions)."""
    cls: type[BaseModel] | None = model
    node = raw
    for seg in path:
        if cls is None:
            return []
        if isinstance(seg, int):
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
            cls = _pick_model(cls, node) if cls else None
            continue
        field = cls.model_fields.get(seg)
        node = node.get(seg) if isinstance(node, dict) else None
        cls = _pick_model(field.annotation, node) if field else None
    if cls is None:
        return []
    return [name for name in cls.model_fields if name != "registry"]


def _pick_model(annotation: Any, node: Any) -> type[BaseModel] | None:
    candidates = _models_in(annotation)
    kind = node.get("type") if isinstance(node, dict) else None
    for cand in candidates:
        if issubclass(cand, PluggableConfig) and kind is not None and hasattr(cand, "registry"):
            registry = cand.registry
            if kind in registry:
                return registry.get(kind)
        field = cand.model_fields.get("type")
        if field is not None and kind in typing.get_args(field.annotation):
            return cand
    return candidates[0] if candidates else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    if typing.get_origin(annotation) is not None:  # Annotated, list, Union, ...
        for arg in typing.get_args(annotation):
            found += _models_in(arg)
    return found
