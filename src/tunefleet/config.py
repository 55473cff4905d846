"""Typed, frozen configuration objects validated at the YAML boundary.

All config models forbid unknown keys and reject wrong types; a validation failure
becomes a one-line :class:`ConfigError` naming the offending key, so a typo in a YAML
file never silently falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from tunefleet.errors import ConfigError

M = TypeVar("M", bound="StrictModel")


class StrictModel(BaseModel):
    """Base for every config object: frozen, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def describe_validation_error(err: ValidationError, where: str = "") -> str:
    """Format the first pydantic error as ``where: key.path: message`` (a check of the whole
    object has no key path; pydantic's "Value error, " before our own words says nothing)."""
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = "unknown key (check the spelling; see conf/ for the accepted keys)"
    return ": ".join(part for part in (where, loc, msg) if part)


def parse_model(model: type[M], data: Mapping[str, Any], where: str = "") -> M:
    """Validate ``data`` into ``model`` or raise a one-line ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or model.__name__}: expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, where)) from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning parse errors into one-line ConfigErrors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; check the path")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` onto ``base`` (mappings merge, other values replace)."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def set_value(data: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` (kept as it is) at the dotted ``key``."""
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {key!r} has an empty key; use key.path=value")
    result = dict(data)
    node = result
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = {}
        elif not isinstance(child, Mapping):
            raise ConfigError(f"override {key}: {part} is not a section; use a key that exists in conf/")
        node[part] = dict(child)
        node = node[part]
    node[parts[-1]] = value
    return result


def apply_override(data: Mapping[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``dotted.key=value`` override whose value is YAML text (``--set``).

    One syntax for every override: ``search.num_samples=64``, ``space.lr.high=0.5``,
    ``space.batch_size.values=[32,64]``.
    """
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} must look like key.path=value")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return set_value(data, key, value)


def is_uri(path: str) -> bool:
    """``s3://...``, ``file://...``, ``http://...``: a location for a library, not a local path."""
    return "://" in path


def find_conf_dir(explicit: str | Path | None = None) -> Path:
    """Locate the ``conf/`` directory: explicit, $TUNEFLEET_CONF, ./conf, or the package's own
    (the repository's ``conf/`` through ``src/tunefleet/conf``; an installed wheel holds a copy)."""
    import os

    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("TUNEFLEET_CONF"):
        candidates.append(Path(os.environ["TUNEFLEET_CONF"]))
    candidates.append(Path.cwd() / "conf")
    candidates.append(Path(__file__).resolve().parent / "conf")
    for candidate in candidates:
        if (candidate / "datasets").is_dir():
            return candidate
    raise ConfigError("no conf/ directory found; pass --conf DIR or set TUNEFLEET_CONF")
