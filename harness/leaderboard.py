"""Leaderboards regenerated from committed run records alone: no model runs, no torch.

Layout of leaderboards/ (everything except records/ and reported/ is generated and may be deleted):
  records/<world>/<run>/record.json            published run records (`harness publish RUN_DIR`)
  records/<world>/<run>/samples_summary.json   row counts, hashes and a few examples of the samples (not all)
  reported/<world>.yaml                        rows reported in papers, with their source (hand-written)
  calibration/<judge>.json                     judge calibrations (`harness judge calibrate`), shown by judged suites
  <world>.md, <world>.csv                      one board per world: micro and real numbers never share a table
  <world>.html                                 the same board as a static, sortable page (harness.html_board)
  plots/<world>/*.png                          before/after bars per suite; metric vs data size
  README.md                                    what the boards are and how to regenerate them

Output is byte-stable: sorted inputs, no generation timestamps, PNG metadata stripped; a file is only rewritten
when its bytes change. Rendering lives in harness.boards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.boards import (GENERATED_MARK, Entry, board_csv, board_markdown, board_plots, readme_markdown,
                            reported_csv, safe_name)
from harness.config import size_label
from harness.html_board import HTML_MARK, board_html
from harness.errors import HarnessError
from harness.io import atomic_path, file_sha256, read_jsonl, stable_hash, write_json
from harness.record import RunRecord

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "leaderboards"
ALWAYS_WORLDS = ("micro", "real")
N_EXAMPLES = 3            # sample rows kept per suite in a published summary
EXAMPLE_CHARS = 300       # each text field of an example is cut to this length


# ---------------------------------------------------------------- publishing

def run_name(record: RunRecord) -> str:
    """Stable folder name: same method/size/seed/config -> same name, so re-publishing replaces the row."""
    h = (record.config_hash or stable_hash(record.config))[:8]
    if record.kind == "eval":
        model = str(record.config.get("model") or "model").rstrip("/").split("/")[-1]
        return f"eval-{model}-{h}"
    size = size_label(record.size) if record.size else "na"
    return f"{record.method or 'run'}-{size}-s{record.seed}-{h}"


def samples_summary(run_dir: Path, record: RunRecord) -> dict:
    """Per checkpoint and suite: rows, sha256 and split counts of the samples file, plus a few examples."""
    out: dict = {}
    for ck, suites in sorted(record.checkpoints.items()):
        for suite, res in sorted(suites.items()):
            entry: dict = {"samples": res.samples}
            path = run_dir / res.samples if res.samples else None
            if path is None or not path.is_file():
                entry["missing"] = True
            else:
                rows = read_jsonl(path)
                entry["rows"] = len(rows)
                entry["sha256"] = file_sha256(path)
                splits = sorted({str(r["split"]) for r in rows if "split" in r})
                if splits:
                    entry["splits"] = {s: sum(1 for r in rows if str(r.get("split")) == s) for s in splits}
                entry["examples"] = [_trim(r) for r in rows[:N_EXAMPLES]]
            out.setdefault(ck, {})[suite] = entry
    return out


def _trim(row: dict) -> dict:
    return {k: (v[:EXAMPLE_CHARS] + "…" if isinstance(v, str) and len(v) > EXAMPLE_CHARS else v)
            for k, v in sorted(row.items())}


def publish(run_dir: str | Path, dir: str | Path | None = None) -> Path:
    """Copy a finished run's record (+ samples summary) into leaderboards/records/, then regenerate."""
    run_dir = Path(run_dir)
    src = run_dir / "record.json" if run_dir.is_dir() else run_dir
    if run_dir.is_file():
        run_dir = run_dir.parent
    record = RunRecord.load_finished(src, "publish")
    if not record.checkpoints:
        raise HarnessError(f"{src} has no evaluated checkpoint: finish the run before publishing")
    if record.kind == "run" and not {"base", "aligned"} <= set(record.checkpoints):
        raise HarnessError(f"{src} is a run record without both base and aligned results: finish the run first")
    root = Path(dir) if dir else DEFAULT_DIR
    dest = root / "records" / safe_name(record.world) / run_name(record)
    summary = samples_summary(run_dir, record)
    dest.mkdir(parents=True, exist_ok=True)
    # The record's own bytes are kept (it is the artefact); each file lands atomically.
    with atomic_path(dest / "record.json") as tmp:
        shutil.copyfile(src, tmp)
    write_json(dest / "samples_summary.json", summary)
    regenerate(root)
    print(f"published {src} -> {dest}")
    return dest


# ---------------------------------------------------------------- reading records

def load_entries(root: Path) -> dict[str, list[Entry]]:
    """world -> entries, from records/<world>/<run>/record.json (sorted; malformed records are errors)."""
    out: dict[str, list[Entry]] = {}
    base = root / "records"
    if not base.is_dir():
        return out
    for world_dir in sorted(p for p in base.iterdir() if p.is_dir()):
        for run_dir in sorted(p for p in world_dir.iterdir() if p.is_dir()):
            path = run_dir / "record.json"
            if not path.is_file():
                continue
            try:
                rec = RunRecord.load(path)
            except HarnessError as e:
                raise HarnessError(f"{path}: {e}") from None
            if rec.world != world_dir.name:
                raise HarnessError(f"{path} is a {rec.world!r}-world record filed under {world_dir.name!r}")
            out.setdefault(world_dir.name, []).append(Entry(run_dir.name, rec))
    for entries in out.values():
        entries.sort(key=Entry.sort_key)
    return out


def load_reported(root: Path, world: str) -> dict | None:
    """reported/<world>.yaml (hand-written rows from papers), checked for the keys the board needs."""
    path = root / "reported" / f"{world}.yaml"
    if not path.is_file():
        return None
    import yaml
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise HarnessError(f"malformed reported-results file {path}: {e}".splitlines()[0]) from None
    tables = data.get("tables") if isinstance(data, dict) else None
    if not isinstance(tables, list):
        raise HarnessError(f"malformed reported-results file {path}: needs a 'tables' list")
    for t in tables:
        missing = [k for k in ("title", "source", "columns", "rows") if not isinstance(t, dict) or k not in t]
        if missing:
            raise HarnessError(f"malformed reported-results file {path}: a table lacks {', '.join(missing)}")
        for r in t["rows"]:
            if not isinstance(r, dict) or "row" not in r or len(r.get("values") or []) != len(t["columns"]):
                raise HarnessError(f"malformed reported-results file {path}: in {t['title']!r}, every row needs "
                                   f"'row' and {len(t['columns'])} values")
    return data


# ---------------------------------------------------------------- regenerate

def _write_if_changed(path: Path, data: bytes) -> bool:
    if path.is_file() and path.read_bytes() == data:
        return False
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return True


def regenerate(dir: str | Path | None = None) -> list[Path]:
    """Rebuild every board, CSV, plot and README under `dir` from its records/; return the files written."""
    root = Path(dir) if dir else DEFAULT_DIR
    if root.exists() and not root.is_dir():
        raise HarnessError(f"leaderboards path {root} is not a directory")
    entries = load_entries(root)
    worlds = sorted(set(entries) | set(ALWAYS_WORLDS))
    produced: dict[Path, bytes] = {}
    reported_worlds = []
    from harness.calibrate import load_calibrations
    calibrations = load_calibrations(root / "calibration")
    for w in worlds:
        es = entries.get(w, [])
        reported = load_reported(root, w)
        plots = board_plots(w, es)
        names = {k: rel for k, (rel, _) in plots.items()}
        for rel, png in plots.values():
            produced[root / rel] = png
        produced[root / f"{w}.md"] = board_markdown(w, es, reported, names, calibrations).encode()
        produced[root / f"{w}.html"] = board_html(w, es, reported, names, calibrations).encode()
        produced[root / f"{w}.csv"] = board_csv(w, es).encode()
        if reported:
            reported_worlds.append(w)
            produced[root / f"{w}-reported.csv"] = reported_csv(w, reported).encode()
    findings = {w: f"FINDINGS-{w}.md" for w in worlds if (root / f"FINDINGS-{w}.md").is_file()}
    produced[root / "README.md"] = readme_markdown({w: len(entries.get(w, [])) for w in worlds},
                                                   reported_worlds, findings).encode()
    written = [p for p, data in sorted(produced.items()) if _write_if_changed(p, data)]
    _remove_stale(root, set(produced))
    print(f"leaderboards: {sum(len(v) for v in entries.values())} record(s), {len(worlds)} board(s), "
          f"{len(written)} file(s) changed under {root}")
    return written


def _remove_stale(root: Path, produced: set[Path]) -> None:
    """Drop generated files no record backs any more (a plot for a suite version that was unpublished)."""
    plots = root / "plots"
    if plots.is_dir():
        for p in sorted(plots.rglob("*.png")):
            if p not in produced:
                p.unlink()
        for d in sorted((d for d in plots.rglob("*") if d.is_dir()), reverse=True):
            if not any(d.iterdir()):
                d.rmdir()
    for page in sorted(root.glob("*.html")):
        if page not in produced and HTML_MARK in page.read_text(encoding="utf-8")[:300]:
            page.unlink()
    for md in sorted(root.glob("*.md")):
        if md not in produced and md.read_text(encoding="utf-8").startswith(GENERATED_MARK):
            md.unlink()
            for csv_path in (md.with_suffix(".csv"), root / f"{md.stem}-reported.csv"):
                if csv_path not in produced and csv_path.exists():
                    csv_path.unlink()
