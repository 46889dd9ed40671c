"""Board rendering for `harness leaderboard`: Markdown, CSV and plots for one world, from published records.

Pure functions of RunRecords (and of the hand-written reported-results file); harness.leaderboard reads the
records, calls these, and writes the files. Columns are keyed by (suite, suite version, metric), so records made
with different versions of a suite never share a column.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from tabulate import tabulate

from harness.config import size_label
from harness.errors import HarnessError
from harness.record import Comparison, MetricValue, RunRecord, short_commit
from harness.suite import arrow
from harness.tables import (MICRO_CAVEAT, decimals_for, fmt, fmt_ci, fmt_p, is_num, mde_text, only_checkpoint,
                            significance)

REPORTED_CAVEAT = ("Reported, not measured here: copied from the papers named in the source column. Numbers "
                   "from different papers are not comparable (the same LLaVA-1.5-7B base scores MMHal 2.01–2.36 "
                   "and Object HalBench CHAIRs 52.7–66.8 across papers); only rows measured under one harness and "
                   "one judge compare.")


def safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name))
    if not cleaned.strip(".-"):
        raise HarnessError(f"unusable name {name!r} for a leaderboard file")
    return cleaned


@dataclass
class Entry:
    """One published record, flattened for the boards."""
    name: str
    record: RunRecord

    def sort_key(self) -> tuple:
        r = self.record
        return (r.kind != "run", r.method or "", r.size or 0, r.seed, self.name)


@dataclass(frozen=True)
class Column:
    suite: str
    version: str
    metric: str
    direction: str

    @property
    def title(self) -> str:
        return f"{self.suite} v{self.version} {self.metric} {arrow(self.direction)}"

    @property
    def slug(self) -> str:
        return safe_name(f"{self.suite}-v{self.version}-{self.metric}")


@dataclass
class Cell:
    """One record's numbers for one column."""
    base: MetricValue | None
    aligned: MetricValue | None
    comp: Comparison | None
    failures: dict

    @property
    def final(self) -> MetricValue | None:
        return self.aligned or self.base


def cells(record: RunRecord, primary_only: bool) -> dict[Column, Cell]:
    out: dict[Column, Cell] = {}
    if record.kind == "eval":
        ck = only_checkpoint(record)
        views = {"base": {}, "aligned": {}}
        views["base" if ck == "base" else "aligned"] = record.checkpoints[ck]
    else:
        views = {"base": record.checkpoints.get("base", {}), "aligned": record.checkpoints.get("aligned", {})}
    for suite in sorted(set(views["base"]) | set(views["aligned"])):
        b_res, a_res = views["base"].get(suite), views["aligned"].get(suite)
        ref = a_res or b_res
        names = [ref.primary] if primary_only and ref.primary else sorted(set(
            (b_res.metrics if b_res else {}).keys()) | set((a_res.metrics if a_res else {}).keys()))
        for m in names:
            bv = b_res.metrics.get(m) if b_res else None
            av = a_res.metrics.get(m) if a_res else None
            if bv is None and av is None:
                continue
            col = Column(suite, ref.version, m, (av or bv).direction)
            out[col] = Cell(bv, av, record.comparisons.get(suite, {}).get(m),
                            {"base": b_res.failures if b_res else {}, "aligned": a_res.failures if a_res else {}})
    return out


def command_of(record: RunRecord) -> str:
    """The command that produced the row: the record's own if it kept one, else rebuilt from its config
    (method, size, world, suites, seed and a limit; record.json holds the full resolved config)."""
    own = getattr(record, "command", None)      # if RunRecord grows a `command` field, it wins
    if isinstance(own, str) and own.strip():
        return own.strip()
    cfg = record.config or {}
    for key in ("command", "argv"):
        cmd = cfg.get(key)
        if isinstance(cmd, list):
            cmd = " ".join(str(c) for c in cmd)
        if isinstance(cmd, str) and cmd.strip():
            return cmd.strip()
    run_cfg = cfg.get("run") if isinstance(cfg.get("run"), dict) else cfg     # harness.api nests settings
    if record.kind == "eval":
        parts = ["harness eval", f"--model {cfg.get('model', '?')}"]
        if cfg.get("adapter"):
            parts.append(f"--adapter {cfg['adapter']}")
        suites = cfg.get("suites") or sorted(next(iter(record.checkpoints.values()), {}))
    else:
        parts = ["harness run", f"--method {record.method}"]
        if record.size:
            parts.append(f"--size {size_label(record.size)}")
        suites = run_cfg.get("suites")
    if record.world != "micro" and record.kind != "eval":
        parts.append(f"--world {record.world}")
    if suites:
        parts.append("--suites " + (",".join(suites) if isinstance(suites, (list, tuple)) else str(suites)))
    limit = cfg.get("limit") if record.kind == "eval" else (run_cfg.get("eval") or {}).get("limit")
    if limit:
        parts.append(f"--limit {limit}" if record.kind == "eval" else f"eval.limit={limit}")
    if record.seed and record.kind != "eval":
        parts.append(f"seed={record.seed}")
    return " ".join(parts)


def _rank_key(col: Column, cell: Cell, name: str) -> tuple:
    """Best first under the column's declared direction; rows without a number last; ties by run name."""
    v = cell.final.value if cell.final else None
    if not is_num(v):
        return (1, 0.0, name)
    if col.direction == "higher":
        score = -v
    elif col.direction == "lower":
        score = v
    else:
        score = abs(v - float(col.direction.split(":", 1)[1]))
    return (0, score, name)


# ---------------------------------------------------------------- one board per world

GENERATED_MARK = "<!-- generated by `harness leaderboard` from records/; do not edit by hand -->"
CSV_FIELDS = ["world", "suite", "suite_version", "metric", "direction", "primary", "run", "kind", "method",
              "pairs", "seed", "base", "base_lo", "base_hi", "aligned", "aligned_lo", "aligned_hi", "delta",
              "delta_lo", "delta_hi", "p_value", "test", "mde", "mde_from", "n", "failures_base", "failures_aligned", "date",
              "commit", "config_hash", "command"]


def _pairs(record: RunRecord) -> str:
    return size_label(record.size) if record.kind == "run" and record.size else "–"


def _row_label(e: Entry) -> str:
    r = e.record
    if r.kind == "eval":
        model = str(r.config.get("model") or e.name).rstrip("/")
        return f"eval: {model.rsplit('/', 1)[-1]}"     # a local path's last part; the command keeps the path
    return r.method or "run"


def _compact(cell: Cell) -> str:
    """'0.700 → 0.783 (+0.083 *)' for the overview matrix."""
    b, a = cell.base, cell.aligned
    d = decimals_for(b.value if b else None, a.value if a else None)
    if b is None or a is None:
        return fmt((a or b).value, d)
    s = f"{fmt(b.value, d)} → {fmt(a.value, d)}"
    if cell.comp is not None:
        stars = significance(cell.comp, b.value, a.value).split(" ")[0]
        s += f" ({fmt(cell.comp.delta, d, True)}{'' if stars in ('n.s.', '–') else ' ' + stars})"
    return s


def _num_cell(mv: MetricValue | None, d: int) -> str:
    return f"{fmt(mv.value, d)} {fmt_ci(mv.ci, d)}".strip() if mv else "–"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def judge_of(record: RunRecord, suite: str) -> dict:
    """The judge a record's judged suite was scored with: the result's own identity when the record keeps one,
    else the run's configured judge name (older records)."""
    for ck in ("aligned", "base"):
        res = record.checkpoints.get(ck, {}).get(suite)
        ident = getattr(res, "judge", None) if res else None
        if isinstance(ident, dict) and ident.get("name"):
            return ident
    cfg = record.config or {}
    name = (cfg.get("run") or {}).get("judge") if isinstance(cfg.get("run"), dict) else None
    name = name or cfg.get("judge")
    if isinstance(name, dict):
        return name
    return {"name": str(name)} if name else {}


def calibration_for(judge: dict, calibrations: list[dict]) -> dict | None:
    """The calibration record of that judge: same name, and the same model where both say one."""
    for cal in calibrations:
        cj = cal.get("judge") or {}
        if cj.get("name") == judge.get("name") and (not judge.get("model") or not cj.get("model")
                                                    or cj.get("model") == judge.get("model")):
            return cal
    return None


def judges_used(col: Column, ranked: list, calibrations: list[dict]) -> list[tuple[dict, dict | None]]:
    """For a judged suite (its results count judge failures): each judge its rows used, with that judge's
    calibration record (None when it has none); [] for a suite without a judge."""
    if not any("judge" in c.failures.get(ck, {}) for _, c in ranked for ck in ("base", "aligned")):
        return []
    judges: list[dict] = []
    for e, _ in ranked:
        j = judge_of(e.record, col.suite)
        if j and j not in judges:
            judges.append(j)
    return [(j, calibration_for(j, calibrations)) for j in judges]


def judge_label(j: dict) -> str:
    return "/".join(str(j[k]) for k in ("name", "model") if j.get(k))


BY_DESIGN = " (the rule judge defines the micro world's truth: perfect by construction)"


def _calibration_lines(col: Column, ranked: list, calibrations: list[dict]) -> list[str]:
    from harness.calibrate import summary

    out = []
    for j, cal in judges_used(col, ranked, calibrations):
        out.append(f"Judge `{judge_label(j)}` — calibration vs ground truth{BY_DESIGN if j.get('name') == 'rule' else ''}: "
                   + (f"{summary(cal)} ([calibration/{cal['_file']}](calibration/{cal['_file']}))" if cal else
                      "not calibrated (`harness judge calibrate --judge " + str(j.get("name")) + "`)"))
    return out + [""] if out else []


def board_markdown(world: str, entries: list[Entry], reported: dict | None, plot_names: dict,
                   calibrations: list[dict] | None = None) -> str:
    per_entry = {e.name: cells(e.record, primary_only=True) for e in entries}
    columns = sorted({c for cs in per_entry.values() for c in cs}, key=lambda c: (c.suite, c.version, c.metric))
    out = [GENERATED_MARK, "", f"# Leaderboard — {world} world", ""]
    if world == "micro":
        out += [f"> {MICRO_CAVEAT} Micro and real numbers never share a table.", ""]
    else:
        out += ["> Measured rows come from run records under `records/" + world + "/`; rows reported in papers "
                "are listed separately at the end and are not measured here.", ""]
    out += [f"{len(entries)} published record(s). Regenerate with `harness leaderboard`; add a run with "
            "`harness publish RUNS/DIR` (or `harness run ... --publish`).", ""]
    if not entries:
        out += ["_No measured runs published for this world yet._", ""]
    else:
        out += ["## Overview: each suite's primary metric, base → aligned (Δ, significance)", ""]
        head = ["method", "pairs", "seed"] + [_md_escape(c.title) for c in columns]
        rows = []
        for e in entries:
            cs = per_entry[e.name]
            rows.append([_row_label(e), _pairs(e.record), str(e.record.seed)] +
                        [_compact(cs[c]) if c in cs else "" for c in columns])
        out += [tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), "",
                "Significance: * p<0.05, ** p<0.01, *** p<0.001 (exact McNemar or paired bootstrap, as the metric "
                "declares); n.s. omitted. In the per-suite tables, MDE is the smallest true Δ the paired test "
                "detects with 80 % power at α 0.05 on the suite's n ('≈': approximated from the Δ CI, for records "
                "made before MDEs were stored): a paper's reported gain below it could not be seen here. Columns are keyed by suite version: runs on different versions of a "
                "suite never share a column.", ""]
        for c in columns:
            out += _column_section(world, c, entries, per_entry, plot_names, calibrations or [])
        sized = [c for c in columns if plot_names.get(("size", c))]
        if sized:
            out += ["## Metric vs data size", ""]
            for c in sized:
                out += [f"![{c.title} vs pairs]({plot_names[('size', c)]})", ""]
    if reported:
        out += _reported_section(reported)
    return "\n".join(out).rstrip() + "\n"


def _column_section(world: str, col: Column, entries: list[Entry], per_entry: dict, plot_names: dict,
                    calibrations: list[dict]) -> list[str]:
    from harness.plots import direction_words

    ranked = sorted(((e, per_entry[e.name][col]) for e in entries if col in per_entry[e.name]),
                    key=lambda ec: _rank_key(col, ec[1], ec[0].name))
    out = [f"## {col.suite} v{col.version} — {col.metric} {arrow(col.direction)} ({direction_words(col.direction)})",
           ""]
    if plot_names.get(("bars", col)):
        out += [f"![{col.title} before/after]({plot_names[('bars', col)]})", ""]
    out += _calibration_lines(col, ranked, calibrations)
    head = ["#", "method", "pairs", "seed", "base [95% CI]", "aligned [95% CI]", "Δ [95% CI]", "p", "sig.", "MDE",
            "n", "failures", "date", "commit", "command"]
    rows = []
    for i, (e, cell) in enumerate(ranked, 1):
        b, a, comp = cell.base, cell.aligned, cell.comp
        d = decimals_for(b.value if b else None, a.value if a else None)
        fails = ", ".join(f"{ck} {k} {v}" for ck in ("base", "aligned")
                          for k, v in sorted(cell.failures.get(ck, {}).items()) if v) or "0"
        rows.append([str(i), _row_label(e), _pairs(e.record), str(e.record.seed), _num_cell(b, d), _num_cell(a, d),
                     f"{fmt(comp.delta, d, True)} {fmt_ci(comp.ci, d, True)}".strip() if comp else "–",
                     fmt_p(comp.p_value) if comp else "–",
                     significance(comp, b.value if b else None, a.value if a else None) if comp else "–",
                     mde_text(comp, d), str((a or b).n), fails, (e.record.created or "")[:10] or "–",
                     short_commit(e.record.git_commit) or "–", f"`{command_of(e.record)}`"])
    out += [tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), ""]
    return out


def _reported_section(reported: dict) -> list[str]:
    out = ["## Reported in papers — reported, not measured here", "", f"> {REPORTED_CAVEAT}", ""]
    for t in reported.get("tables", []):
        out += [f"### {t['title']} (reported, not measured here)", ""]
        if t.get("note"):
            out += [t["note"], ""]
        head = ["row", "data", "feedback"] + list(t["columns"]) + ["source"]
        rows = []
        for r in t["rows"]:
            vals = ["–" if v is None else str(v) for v in r["values"]]
            if len(vals) != len(t["columns"]):
                raise HarnessError(f"reported table {t['title']!r}: row {r['row']!r} has {len(vals)} values for "
                                   f"{len(t['columns'])} columns")
            rows.append([r["row"], r.get("data") or "–", r.get("feedback") or "–"] + vals +
                        [r.get("source") or t["source"]])
        out += [tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), ""]
    return out


def board_csv(world: str, entries: list[Entry]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for e in entries:
        r = e.record
        primaries = {col: None for col in cells(r, primary_only=True)}
        for col, cell in sorted(cells(r, primary_only=False).items(), key=lambda kv: (kv[0].suite, kv[0].metric)):
            b, a, comp = cell.base, cell.aligned, cell.comp
            w.writerow({
                "world": world, "suite": col.suite, "suite_version": col.version, "metric": col.metric,
                "direction": col.direction, "primary": int(col in primaries), "run": e.name, "kind": r.kind,
                "method": r.method or "", "pairs": r.size or "", "seed": r.seed,
                "base": _csvnum(b.value if b else None), "base_lo": _csvnum(b.ci[0] if b else None),
                "base_hi": _csvnum(b.ci[1] if b else None), "aligned": _csvnum(a.value if a else None),
                "aligned_lo": _csvnum(a.ci[0] if a else None), "aligned_hi": _csvnum(a.ci[1] if a else None),
                "delta": _csvnum(comp.delta if comp else None), "delta_lo": _csvnum(comp.ci[0] if comp else None),
                "delta_hi": _csvnum(comp.ci[1] if comp else None),
                "p_value": _csvnum(comp.p_value if comp else None), "test": comp.test if comp else "",
                **_mde_csv(comp),
                "n": (a or b).n, "failures_base": json.dumps(cell.failures.get("base", {}), sort_keys=True),
                "failures_aligned": json.dumps(cell.failures.get("aligned", {}), sort_keys=True),
                "date": (r.created or "")[:10], "commit": r.git_commit or "", "config_hash": r.config_hash,
                "command": command_of(r)})
    return buf.getvalue()


def _mde_csv(comp: Comparison | None) -> dict:
    """The stored MDE ('items': computed from the per-item samples), else the approximation from the delta's CI."""
    from harness.stats import mde_from_ci

    if comp is None:
        return {"mde": "", "mde_from": ""}
    if is_num(comp.mde):
        return {"mde": _csvnum(comp.mde), "mde_from": "items"}
    if isinstance(comp.mde, float):
        return {"mde": "", "mde_from": "items"}
    return {"mde": _csvnum(mde_from_ci(comp.ci)), "mde_from": "delta-ci"}


def reported_csv(world: str, reported: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["world", "status", "table", "row", "data", "feedback", "column", "value", "source"])
    for t in reported.get("tables", []):
        for r in t["rows"]:
            for col, v in zip(t["columns"], r["values"]):
                if v is not None:
                    w.writerow([world, "reported, not measured here", t["title"], r["row"], r.get("data") or "",
                                r.get("feedback") or "", col, v, r.get("source") or t["source"]])
    return buf.getvalue()


def _csvnum(v) -> str:
    # 6 significant digits: more than any CI supports, and stable across platforms.
    return f"{v:.6g}" if is_num(v) else ""


def board_plots(world: str, entries: list[Entry]) -> dict[tuple, tuple[str, bytes]]:
    """(kind, column) -> (relative path, PNG bytes): before/after bars per suite, size curves where a method
    was run at two or more sizes."""
    from harness.plots import Bar, SizePoint, SizeSeries, before_after_png, size_png

    sub = "micro world (simulator, not real models)" if world == "micro" else f"{world} world, measured here"
    per_entry = {e.name: cells(e.record, primary_only=True) for e in entries}
    columns = sorted({c for cs in per_entry.values() for c in cs}, key=lambda c: (c.suite, c.version, c.metric))
    out: dict[tuple, tuple[str, bytes]] = {}
    for col in columns:
        bars = []
        for e in entries:
            cell = per_entry[e.name].get(col)
            if cell is None:
                continue
            label = _row_label(e) if e.record.kind == "eval" else \
                f"{_row_label(e)} {_pairs(e.record)} s{e.record.seed}"
            marker = significance(cell.comp, cell.base.value if cell.base else None,
                                  cell.aligned.value if cell.aligned else None) if cell.comp else ""
            bars.append(Bar(label, cell.base.value if cell.base else None, cell.base.ci if cell.base else None,
                            cell.aligned.value if cell.aligned else None, cell.aligned.ci if cell.aligned else None,
                            "" if marker in ("–", "n.s.") else marker))
        rel = f"plots/{world}/before-after-{col.slug}.png"
        out[("bars", col)] = (rel, before_after_png(f"{col.suite} v{col.version}: base vs aligned", col.metric,
                                                    col.direction, bars, sub))
        series = []
        methods = sorted({e.record.method for e in entries if e.record.kind == "run" and col in per_entry[e.name]})
        for m in methods:
            runs = [(e.record, per_entry[e.name][col]) for e in entries
                    if e.record.kind == "run" and e.record.method == m and col in per_entry[e.name]
                    and per_entry[e.name][col].aligned is not None and e.record.size]
            sizes = sorted({r.size for r, _ in runs})
            if len(sizes) < 2:
                continue
            s = SizeSeries(m)
            for n in sizes:
                at = [c.aligned for r, c in runs if r.size == n and is_num(c.aligned.value)]
                if not at:
                    continue
                # Several seeds at one size: plot their mean with the widest CI among them.
                mean = sum(v.value for v in at) / len(at)
                s.points.append(SizePoint(n, mean, [min(v.ci[0] for v in at), max(v.ci[1] for v in at)], len(at)))
            bases = [c.base.value for _, c in runs if c.base is not None and is_num(c.base.value)]
            s.base = sum(bases) / len(bases) if bases else None
            series.append(s)
        if series:
            rel = f"plots/{world}/size-{col.slug}.png"
            out[("size", col)] = (rel, size_png(f"{col.suite} v{col.version}: aligned {col.metric} vs data size",
                                                col.metric, col.direction, series, sub))
    return out


# ---------------------------------------------------------------- index

def readme_markdown(worlds: dict[str, int], reported_worlds: list[str], findings: dict[str, str] | None = None) -> str:
    """The index. `findings` maps a world to a hand-written findings file beside the boards (linked, not generated)."""
    findings = findings or {}
    lines = [GENERATED_MARK, "", "# Leaderboards", "",
             "Boards regenerated from the run records committed under `records/` — no model is run. One board per "
             "world: micro-world and real-world numbers never share a table.", "",
             f"> {MICRO_CAVEAT}", "",
             "| world | board | page | data | published records | findings |", "|---|---|---|---|---|---|"]
    for w, n in sorted(worlds.items()):
        extra = f" (+ reported rows: `{w}-reported.csv`)" if w in reported_worlds else ""
        note = f"[{findings[w]}]({findings[w]})" if w in findings else "–"
        lines.append(f"| {w} | [{w}.md]({w}.md) | [{w}.html]({w}.html) | [{w}.csv]({w}.csv){extra} | {n} | {note} |")
    lines += ["", "## What is in a board", "",
              "- an overview: for each run, each suite's primary metric base → aligned with Δ and significance;",
              "- per suite and suite version, runs ranked by the aligned value under the metric's declared "
              "direction, with 95 % CIs, the paired test's p (exact McNemar on per-item correctness, or the paired "
              "bootstrap), n, parse/judge failures, date, commit and the command that produced the row;",
              "- plots under `plots/<world>/`: before/after bars per suite, and metric vs number of preference "
              "pairs for methods run at two or more sizes;",
              "- for judged suites (MMHal, MM-Vet), each judge's calibration against the micro world's ground truth "
              "(`calibration/<judge>.json`, written by `harness judge calibrate --judge J`): weighted κ, Spearman ρ, "
              "mean bias, hallucination-rate error and failure rate;",
              "- a column MDE: the minimum detectable effect of the paired test at the suite's n (α 0.05, power 0.8);",
              "- the real board also lists rows reported in papers (`reported/real.yaml`, each with its source), "
              "marked \"reported, not measured here\": numbers from different papers are not comparable.", "",
              "Columns are keyed by (suite, suite version, metric): records of different suite versions never share "
              "a column. The CSV files hold every metric of every record in long format.", "",
              "## Regenerate, publish, gate", "",
              "```bash",
              "harness leaderboard                 # rebuild every board from records/ (same bytes if nothing changed)",
              "harness publish runs/<run-dir>      # copy a finished run's record.json + samples summary, then rebuild",
              "harness run --method rm-dpo --size 5k --publish",
              "harness gate --record runs/<run-dir>/record.json --reference leaderboards/references/<name>.json",
              "harness gate --record runs/<run-dir>/record.json --reference leaderboards/references/<name>.json --update",
              "```", "",
              "`harness gate` compares the gated metrics (declared `gated=True` in `benchmarks/suites.py`) of a "
              "record's aligned checkpoint with a reference record and exits 1 when one moves the wrong way by more "
              "than max(floor, k·sqrt(hw_ref² + hw_rec²)) (hw = half-width of the 95 % CI; see harness/gate.py); "
              "`--update` deliberately makes the record the new reference and prints what changed.", "",
              "Layout: `records/<world>/<method>-<pairs>-s<seed>-<config hash>/record.json` (+ "
              "`samples_summary.json`: row counts, hashes and a few example rows, not the full samples). Everything "
              "else here except `records/`, `reported/` and `references/` (gate references) is generated.", ""]
    return "\n".join(lines)
