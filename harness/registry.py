"""One registry of plugins: methods, suites, judges and the synthesis hooks (scorers, selectors).

Every plugin, built-in or third-party, is an entry point in one of the groups below ("name = module:attr");
the built-ins are declared in this project's pyproject.toml exactly like a third party declares its own (see
docs/design.md, "Plugins"). Names are resolved lazily: listing them never imports a plugin module, so
`harness ls` stays free of torch. Two different targets under one name are an error that names both; the
loaded object's type is checked (a method must be a `Method`, a judge a `Judge` subclass, ...).

`METHODS`, `SUITES`, `JUDGES`, `SCORERS` and `SELECTORS` are live views of the registry that also accept
registrations made in code (`SUITES["toy"] = "my.module:TOY"`, e.g. a test's monkeypatch).
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Iterator, MutableMapping
from importlib.metadata import PackageNotFoundError, distribution, entry_points
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

# kind -> (entry-point group, "module:attr" of the type a plugin must be an instance (or subclass) of)
KINDS: dict[str, tuple[str, str]] = {
    "methods": ("harness.methods", "harness.method:Method"),
    "suites": ("harness.suites", "harness.suite:Suite"),
    "judges": ("harness.judges", "harness.judges:Judge"),
    "scorers": ("harness.scorers", "harness.method:Scorer"),
    "selectors": ("harness.selectors", "harness.method:Selector"),
}
_PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _declared(group: str) -> list[tuple[str, str, str]]:
    """(name, target, where) of every entry point in `group`. When this project itself is not installed
    (a bare source checkout on sys.path), its own pyproject.toml tables stand in for its entry points."""
    found = [(ep.name, ep.value, _dist_name(ep)) for ep in entry_points(group=group)]
    try:
        distribution("harness")
    except PackageNotFoundError:
        if _PYPROJECT.is_file():
            table = tomllib.loads(_PYPROJECT.read_text(encoding="utf-8"))
            eps = table.get("project", {}).get("entry-points", {}).get(group, {})
            found += [(name, target, str(_PYPROJECT)) for name, target in eps.items()]
    return found


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return f"distribution {dist.name}" if dist is not None else "an entry point"


class Kind(MutableMapping):
    """name -> "module:attr" for one kind: entry points + registrations made in code."""

    def __init__(self, kind: str):
        self.kind = kind
        self.group = KINDS[kind][0]
        self.extra: dict[str, str] = {}

    def table(self) -> dict[str, str]:
        out: dict[str, tuple[str, str]] = {}
        for name, target, where in _declared(self.group) + [(n, t, "code") for n, t in self.extra.items()]:
            if name in out and out[name][0] != target:
                raise HarnessError(f"{self.kind[:-1]} name {name!r} is registered twice: {out[name][0]} "
                                   f"({out[name][1]}) and {target} ({where}); rename one of them")
            out.setdefault(name, (target, where))
        return {name: target for name, (target, _) in out.items()}

    def __getitem__(self, name: str) -> str:
        return self.table()[name]

    def __setitem__(self, name: str, target: str) -> None:
        self.extra[name] = target

    def __delitem__(self, name: str) -> None:
        del self.extra[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table())

    def __len__(self) -> int:
        return len(self.table())


METHODS, SUITES, JUDGES = Kind("methods"), Kind("suites"), Kind("judges")
SCORERS, SELECTORS = Kind("scorers"), Kind("selectors")
_BY_KIND = {"methods": METHODS, "suites": SUITES, "judges": JUDGES, "scorers": SCORERS, "selectors": SELECTORS}


def names(kind: str) -> dict[str, str]:
    """All registered names of a kind -> "module:attr" (nothing is imported)."""
    if kind not in _BY_KIND:
        raise HarnessError(f"unknown plugin kind {kind!r} (known: {', '.join(_BY_KIND)})")
    return _BY_KIND[kind].table()


def load(kind: str, name: str) -> Any:
    """Import the plugin `name` of `kind` and check its type."""
    table = names(kind)
    if name not in table:
        known = ", ".join(sorted(table))
        raise HarnessError(f"unknown {kind[:-1]} {name!r} (known: {known})")
    obj = import_target(table[name])
    check_type(kind, name, table[name], obj)
    if kind == "methods" and not obj.module:
        obj = obj.registered_from(table[name].partition(":")[0])
    return obj


def check_type(kind: str, name: str, target: str, obj: Any) -> None:
    expected = import_target(KINDS[kind][1])
    ok = isinstance(obj, expected) or (kind in ("judges", "scorers", "selectors") and isinstance(obj, type)
                                        and issubclass(obj, expected))
    if not ok:
        what = "a subclass of" if kind in ("judges", "scorers", "selectors") else "an instance of"
        raise HarnessError(f"{kind[:-1]} {name!r} ({target}) is {type(obj).__name__} {obj!r:.60}, not {what} "
                           f"{expected.__module__}.{expected.__name__}")


def import_target(target: str) -> Any:
    module, _, attr = target.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise HarnessError(f"cannot load plugin {target}: {type(e).__name__}: {e}") from None
    return obj
