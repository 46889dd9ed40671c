"""The plugin types of alignment: `Method`, and the synthesis hooks `Scorer` and `Selector`.

A method is one file (e.g. pipelines/random_pairs.py) ending in `METHOD = ...` and one entry point in the
`harness.methods` group (pyproject.toml); its presets live in its preset folder (by default
`<the method module's folder>/presets/<name>/`). Most methods are `pipelines.preference.dpo_method(...)`: the
generic DPO-with-rounds trainer configured with the hooks that make the method differ. docs/design.md walks
through adding one. Importing this module never imports torch: `harness ls` reads names and descriptions only.

The two callables of a Method have fixed signatures so `harness.api` can chain and cache them:

    build_pairs(cfg, run, out_dir: Path, stages: Stages) -> dict
        writes a TRL preference dataset (`datasets.save_to_disk`) under out_dir / "dataset" with its card,
        returns the card's summary (counts, reward and length statistics, components).
    train(cfg, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict
        writes a PEFT adapter under out_dir / "adapter" and the training log out_dir / "train_log.json",
        returns a summary (steps, final loss, reward margin, accuracy).

`check(cfg, run)` (optional) refuses impossible runs before anything is written. `cfg` is an instance of
`config_cls` (resolved by harness.config from defaults < preset < overrides), `run` the harness.api.RunSettings.

Caching: every stage of a method is keyed on the source of the modules it is made of (`Method.code_version()`:
the method's module, its callables' and hooks' modules and the first-party modules they import), and every
synthesis stage a hook shapes is keyed on the hook's name, its config (its dataclass fields) and its code.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import HarnessError

FIRST_PARTY = ("harness", "pipelines", "benchmarks")


class Hook:
    """A synthesis hook: a frozen dataclass whose fields are its config, built by `configure(cfg, run)` from a
    method's config and run settings in every round. Registered under `name` in its entry-point group."""

    name: ClassVar[str] = ""

    @classmethod
    def configure(cls, cfg, run) -> Hook:
        return cls()

    def identity(self) -> dict:
        """What the stage key holds besides name and code: the config (add model fingerprints here)."""
        return _plain(self)

    def describe(self) -> Any:
        """What the dataset card says about the hook."""
        return self.name

    def key(self) -> dict:
        return {"name": self.name, "config": self.identity(), "code": code_version_of(type(self).__module__)}


class Scorer(Hook):
    """Scores candidate responses (replaces the response reward model):
    `self(images, questions, responses) -> one list of floats per item` (images: file paths)."""

    def __call__(self, images: list, questions: list[str], responses: list[list[dict]]) -> list[list[float]]:
        raise NotImplementedError


class Selector(Hook):
    """Makes the preference pairs from scored items: `self(items, n_pairs) -> (pairs, selection statistics)`
    (items: {"id", "question", "kind", "category", "image_reward", "responses", "scores", "scene"}; a pair adds
    "chosen", "rejected", "chosen_score", "rejected_score", "chosen_model", "rejected_model")."""

    def __call__(self, items: list[dict], n_pairs: int) -> tuple[list[dict], dict]:
        raise NotImplementedError


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


@dataclass(frozen=True)
class Method:
    name: str
    config_cls: type
    build_pairs: Callable[..., dict[str, Any]]
    train: Callable[..., dict[str, Any]]
    description: str = ""
    worlds: tuple[str, ...] = ("micro", "real")
    # optional up-front validation check(cfg, run) -> None: raise HarnessError before any work is done
    check: Callable[..., None] | None = None
    # the synthesis hooks the method names (registry names or Hook subclasses; dpo_method always names both)
    scorer: str | type | None = None
    selector: str | type | None = None
    presets: Path | None = None       # preset folder; default <folder of `module`>/presets/<name>
    module: str = ""                  # the module that defines the method (set by the registry when empty)

    def registered_from(self, module: str) -> Method:
        return dataclasses.replace(self, module=module)

    def check_world(self, world: str) -> None:
        if world not in self.worlds:
            raise HarnessError(f"method {self.name!r} does not support world {world!r} "
                               f"(supported: {', '.join(self.worlds)})")

    def hook(self, kind: str) -> type:
        """The Scorer / Selector class the method names (kind "scorers" / "selectors")."""
        from harness import registry
        named = getattr(self, kind[:-1])
        if named is None:
            raise HarnessError(f"method {self.name!r} names no {kind[:-1]}")
        if isinstance(named, str):
            return registry.load(kind, named)
        registry.check_type(kind, named.__name__, f"{named.__module__}.{named.__qualname__}", named)
        return named

    def preset_dir(self) -> Path:
        if self.presets is not None:
            return Path(self.presets)
        spec = importlib.util.find_spec(self.module) if self.module else None
        if spec is None or not spec.origin:
            raise HarnessError(f"method {self.name!r} has no preset folder: give Method(presets=...)")
        return Path(spec.origin).parent / "presets" / self.name

    def preset_for(self, size_label: str, world: str) -> Path:
        """The method's preset for a size (`2k.yaml`, `real-5k.yaml`), else its world's base preset
        (`_micro.yaml`, `_real.yaml`). A method without one is refused: the config defaults are the GPU recipe,
        and a micro run on them would run silently wrong."""
        folder = self.preset_dir()
        sized = folder / (f"{size_label}.yaml" if world == "micro" else f"{world}-{size_label}.yaml")
        base = folder / f"_{world}.yaml"
        for path in (sized, base):
            if path.is_file():
                return path
        raise HarnessError(f"method {self.name!r} has no {world} preset ({sized.name} or {base.name} in {folder}): "
                           "its config defaults are the real-world GPU recipe; add a preset or pass --preset FILE")

    def code_version(self) -> str:
        """Hash of the method's source: the module of the method, of its callables and of the hooks it names,
        and the first-party modules they import (import_closure)."""
        roots = {self.module} if self.module else set()
        hooks = [self.hook(kind) for kind in ("scorers", "selectors") if getattr(self, kind[:-1]) is not None]
        for obj in (self.config_cls, self.build_pairs, self.train, self.check, *hooks):
            obj = getattr(obj, "func", obj)           # functools.partial
            if obj is not None and getattr(obj, "__module__", None):
                roots.add(obj.__module__)
        return code_version_of(*sorted(roots))


def import_closure(roots: list[str]) -> dict[str, Path]:
    """`roots` and every module they import (at any depth of the file, so lazy imports count) whose top-level
    package is first-party (harness, pipelines, benchmarks) or one of the roots' own -> module: source file.
    A package counts by its __init__.py alone (its submodules count when they are imported)."""
    packages = set(FIRST_PARTY) | {r.split(".")[0] for r in roots}
    found: dict[str, Path] = {}
    todo, seen = list(roots), set()
    while todo:
        name = todo.pop()
        if name in seen or name.split(".")[0] not in packages:
            continue
        seen.add(name)
        origin = _origin(name)
        if origin is not None:
            found[name] = origin
            todo += _imports(origin, name)
    return dict(sorted(found.items()))


def _origin(module: str) -> Path | None:
    mod = sys.modules.get(module)
    origin = getattr(mod, "__file__", None)
    if origin is None:
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            return None
        origin = spec.origin if spec else None
    return Path(origin) if origin and origin.endswith(".py") else None


def _imports(path: Path, module: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            out.append(base)
            out += [f"{base}.{a.name}" for a in node.names]     # `from pkg import submodule`
    return [m for m in out if m]


def code_version_of(*modules: str) -> str:
    """Hash of the source files of `modules` and of their first-party import closure (import_closure)."""
    key = tuple(sorted(modules))
    files = import_closure(list(key))
    stamp = tuple((name, p.stat().st_mtime_ns, p.stat().st_size) for name, p in files.items())
    if _CODE.get(key, (None,))[0] != stamp:
        h = hashlib.sha256()
        for name, p in files.items():
            h.update(name.encode() + b"\0" + p.read_bytes() + b"\0")
        _CODE[key] = (stamp, h.hexdigest()[:16])
    return _CODE[key][1]


_CODE: dict[tuple[str, ...], tuple[tuple, str]] = {}
