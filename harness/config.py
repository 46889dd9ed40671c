"""Typed, layered configuration: dataclass defaults < preset YAML < `key=value` overrides.

Unknown keys are errors that name the full dotted key. The resolved config is a plain dict saved in the
run record, and its hash names the run's caches.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from harness.errors import HarnessError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "pipelines" / "presets"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kK]?)\s*$")


def parse_size(text: str | int) -> int:
    """'5k' -> 5000, '500' -> 500. Anything else ('5kk', '-1', 'big') is bad input."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        m = _SIZE_RE.match(str(text))
        if not m:
            raise HarnessError(f"malformed size {text!r}: use a pair count like 500, 2k or 5k")
        value = float(m.group(1)) * (1000 if m.group(2) else 1)
        if value != int(value):
            raise HarnessError(f"malformed size {text!r}: not a whole number of pairs")
        value = int(value)
    if value <= 0:
        raise HarnessError(f"size must be positive, got {text!r}")
    return value


def size_label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def load_yaml(path: str | Path) -> dict:
    """Read a preset; follow `extends: other.yaml` (relative to the file) so sizes share one base."""
    path = Path(path)
    if not path.is_file():
        raise HarnessError(f"preset not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise HarnessError(f"malformed preset {path}: not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise HarnessError(f"malformed preset {_yaml_problem(path, e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise HarnessError(f"malformed preset {path}: top level must be a mapping, got {type(data).__name__}")
    parent = data.pop("extends", None)
    if parent:
        data = deep_merge(load_yaml(_parent_preset(path, parent)), data)
    return data


def _parent_preset(path: Path, parent) -> Path:
    """`extends: other.yaml` (relative to the file) or `extends: {method: rm-dpo, preset: _micro.yaml}`: a preset
    of another registered method wherever it is installed (how a third-party method builds on a built-in recipe)."""
    if isinstance(parent, dict) and set(parent) == {"method", "preset"}:
        from harness import registry
        return registry.load("methods", str(parent["method"])).preset_dir() / str(parent["preset"])
    if not isinstance(parent, str):
        raise HarnessError(f"malformed preset {path}: `extends` is a file name or {{method: NAME, preset: FILE}}")
    return path.parent / parent


def _yaml_problem(path: Path, e: yaml.YAMLError) -> str:
    """'FILE, line L, column C: problem (context)' on one line; PyYAML's own message spreads the position over
    several lines (the first alone says only 'while scanning for the next token')."""
    mark = getattr(e, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    context = getattr(e, "context", None)
    return f"{where}: {problem}" + (f" ({context})" if context else "")


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_overrides(items: list[str]) -> dict:
    """['train.lr=1e-3', 'seed=2'] -> {'train': {'lr': 0.001}, 'seed': 2} (values parsed as YAML)."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise HarnessError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise HarnessError(f"override {item!r} conflicts with another override")
        node[parts[-1]] = value
    return out


def build(cls: type, data: dict | None, prefix: str = "") -> Any:
    """Instantiate dataclass `cls` from `data` strictly: unknown keys and wrong types are errors."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise HarnessError(f"unknown config key {prefix + unknown[0]!r} (known at this level: {known})")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, prefix + name)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise HarnessError(f"invalid config {prefix.rstrip('.') or cls.__name__}: {e}") from None


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise HarnessError(f"config key {key!r} must be a mapping")
        return build(tp, value, key + ".")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key) if len(args) == 1 else value
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise HarnessError(f"config key {key!r} must be a list")
        (item_t, *_) = typing.get_args(tp) or (Any,)
        return [_coerce(item_t, v, key) for v in value] if origin is list else tuple(value)
    if origin is dict or tp is Any:
        return value
    if tp is float and not isinstance(value, bool):
        return _finite_float(value, key)
    if tp is int and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    if tp is int and isinstance(value, bool):     # bool is an int to isinstance: `seed=true` would be seed 1
        raise HarnessError(f"config key {key!r} must be int, got {value!r}")
    if tp is bool and not isinstance(value, bool):
        raise HarnessError(f"config key {key!r} must be true or false, got {value!r}")
    if isinstance(tp, type) and not isinstance(value, tp):
        raise HarnessError(f"config key {key!r} must be {tp.__name__}, got {value!r}")
    return value


def _finite_float(value: Any, key: str) -> Any:
    """A float config value: YAML 1.1 reads `1e3` (no dot) as a string, so a numeric string is accepted; NaN and
    infinities are refused (`train.lr=.nan` would otherwise train to a non-finite loss)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise HarnessError(f"config key {key!r} must be a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise HarnessError(f"config key {key!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise HarnessError(f"config key {key!r} must be a finite number, got {value!r}")
    return float(value)


def to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def preset_path(method: str, size: int, world: str) -> Path:
    name = size_label(size) if world == "micro" else f"{world}-{size_label(size)}"
    return PRESETS_DIR / method / f"{name}.yaml"


def resolve(method_cfg_cls: type, run_cls: type, method: str, size: int, world: str,
            overrides: list[str] | dict | None = None, preset: str | Path | None = None) -> tuple[Any, Any]:
    """defaults < preset YAML < overrides -> (run settings, method config), both typed.

    Keys that are fields of `run_cls` go to the run settings, everything else to the method config;
    a key known to neither is an error.
    """
    path = Path(preset) if preset else preset_path(method, size, world)
    layered = load_yaml(path) if (preset or path.is_file()) else {}
    over = overrides if isinstance(overrides, dict) else parse_overrides(list(overrides or []))
    layered = deep_merge(layered, over)
    run_keys = {f.name for f in dataclasses.fields(run_cls)}
    method_keys = {f.name for f in dataclasses.fields(method_cfg_cls)}
    unknown = sorted(set(layered) - run_keys - method_keys)
    if unknown:
        raise HarnessError(f"unknown config key {unknown[0]!r} for method {method!r} "
                           f"(known: {', '.join(sorted(run_keys | method_keys))})")
    run_data = {k: v for k, v in layered.items() if k in run_keys}
    run_data.update(method=method, size=size, world=world)  # the CLI picks the world (and so the preset)
    return build(run_cls, run_data), build(method_cfg_cls, {k: v for k, v in layered.items() if k in method_keys})
