"""`harness ls`: methods, synthesis hooks, suites, judges and zoo models — without importing torch.

Method and judge plugins import torch, so they are never imported here: their one-line description is read
from the plugin's source with `ast` (the `description=` of its `Method(...)`, else the first docstring line).
Suites are pure Python value objects and are imported (benchmarks.suites). Zoo models come from the zoo
MANIFEST via harness.zoo.store.list_models (no weights are opened).
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

from harness import registry
from harness.suite import arrow


def source_description(target: str) -> str:
    """One line describing "module:attr" read from source, never by importing the module.

    Looks for `attr = Something(..., description="...")`, then `class attr` docstring, then the module
    docstring's first line. Only the parent packages are imported to locate the file (they are light)."""
    module, _, attr = target.partition(":")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return "(source not found)"
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return "(source unreadable)"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == attr for t in node.targets):
            if isinstance(node.value, ast.Call):
                for kw in node.value.keywords:
                    if kw.arg == "description" and isinstance(kw.value, ast.Constant) and \
                            isinstance(kw.value.value, str):
                        return kw.value.value.strip().splitlines()[0]
        if isinstance(node, ast.ClassDef) and node.name == attr:
            doc = ast.get_docstring(node)
            if doc:
                return doc.strip().splitlines()[0]
    doc = ast.get_docstring(tree)
    return doc.strip().splitlines()[0] if doc else ""


def suite_rows() -> list[dict]:
    rows = []
    for name, target in sorted(registry.names("suites").items()):
        try:
            s = registry.import_target(target)
            gated = [f"{m.name} {arrow(m.direction)}" for m in s.metrics if m.gated]
            rows.append({"name": name, "world": s.world, "tasks": ", ".join(s.tasks),
                         "primary": f"{s.primary} {arrow(s.metric(s.primary).direction)}", "version": s.version,
                         "gated": ", ".join(gated), "judged": s.judged, "description": s.description})
        except Exception as e:  # noqa: BLE001 — one broken third-party suite must not hide the others
            rows.append({"name": name, "world": "?", "tasks": "", "primary": "", "version": "", "gated": "",
                         "judged": False, "description": f"(cannot load {target}: {type(e).__name__}: {e})"})
    return sorted(rows, key=lambda r: (r["world"], r["name"]))


def zoo_rows() -> tuple[list[dict], str]:
    try:
        from harness.zoo import store
        directory = store.zoo_dir()
        return store.list_models(), str(directory)
    except Exception as e:  # noqa: BLE001 — the zoo may not be built or installed yet
        return [], f"(zoo store unavailable: {type(e).__name__}: {e})"


def _size(n) -> str:
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


def _plugin_table(kind: str, title: str):
    """Name, description (read from the plugin's source, never imported) and target of a registry kind."""
    from rich.table import Table
    t = Table(title=title, header_style="bold")
    for c in ("name", "description", "plugin"):
        t.add_column(c)
    for name, target in sorted(registry.names(kind).items()):
        t.add_row(name, source_description(target), target)
    return t


def print_listing(console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    console = console or Console()

    console.print(_plugin_table("methods", "methods (harness run --method NAME)"))
    console.print(_plugin_table("scorers", "scorers (synthesis hooks a method names: how responses are scored)"))
    console.print(_plugin_table("selectors", "selectors (synthesis hooks a method names: how pairs are made)"))

    t = Table(title="suites (--suites a,b; primary metric and gated metrics with their direction)",
              header_style="bold")
    for c in ("name", "world", "version", "lmms-eval tasks", "primary", "gated (harness gate)", "judged"):
        t.add_column(c, overflow="fold", no_wrap=c in ("name", "world", "version"))
    for r in suite_rows():
        t.add_row(r["name"], r["world"], r["version"], r["tasks"] or r["description"], r["primary"], r["gated"],
                  "yes" if r["judged"] else "")
    console.print(t)

    console.print(_plugin_table("judges", "judges (--judge NAME, for judged suites)"))

    models, where = zoo_rows()
    t = Table(title=f"zoo models (micro world) in {where}", header_style="bold")
    for c in ("name", "kind", "params", "size on disk"):
        t.add_column(c)
    for m in models:
        params = m.get("params")
        t.add_row(m["name"], str(m.get("kind", "")), f"{params:,}" if isinstance(params, int) else "?",
                  _size(m.get("bytes")))
    console.print(t)
    if not models:
        console.print("no zoo models found: build them with `harness zoo build`", style="yellow")
