"""Before/after and single-checkpoint tables: pure functions of a RunRecord (Markdown via tabulate, terminal via
rich). Re-tabulating never re-runs a model. The formatting helpers here are shared with boards and the gate.
"""

from __future__ import annotations

import math
from typing import Iterable

from tabulate import tabulate

from harness.record import Comparison, MetricValue, RunRecord, SuiteResult, short_commit
from harness.suite import arrow, signed_gain

HEADERS_RUN = ["suite", "metric", "base [95% CI]", "aligned [95% CI]", "delta [95% CI]", "p", "sig.", "MDE", "n",
               "failures base→aligned"]
HEADERS_EVAL = ["suite", "metric", "value [95% CI]", "n", "failures"]
TEST_SHORT = {"mcnemar": "McN", "paired-bootstrap": "boot", "permutation": "perm"}
MICRO_CAVEAT = ("Micro world: procedural scenes and tiny locally trained models — a simulator of the method, "
                "not a claim about real models.")


# ---------------------------------------------------------------- formatting helpers (shared)

def is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and not math.isnan(x)


def decimals_for(*values) -> int:
    """One precision per row so base, aligned, delta and CIs line up: 3 decimals for rates and small scores,
    fewer for metrics reported on a 0-100 scale."""
    scale = max((abs(v) for v in values if is_num(v)), default=0.0)
    return 3 if scale < 10 else 2 if scale < 100 else 1


def fmt(v, d: int = 3, signed: bool = False) -> str:
    if not is_num(v):
        return "–"
    return f"{v:+.{d}f}" if signed else f"{v:.{d}f}"


def fmt_ci(ci, d: int = 3, signed: bool = False) -> str:
    if not ci or len(ci) != 2 or not (is_num(ci[0]) and is_num(ci[1])):
        return ""
    return f"[{fmt(ci[0], d, signed)}, {fmt(ci[1], d, signed)}]"


def fmt_p(p) -> str:
    if not is_num(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def verdict(direction: str, base, aligned) -> str:
    """'better' / 'worse' / 'same' under the declared direction (e.g. lower CHAIR is better)."""
    if not (is_num(base) and is_num(aligned)):
        return ""
    g = signed_gain(direction, base, aligned)
    return "better" if g > 0 else "worse" if g < 0 else "same"


def significance(comp: Comparison | None, base=None, aligned=None) -> str:
    """Stars for p (* <0.05, ** <0.01, *** <0.001) plus better/worse per direction; 'n.s.' otherwise."""
    if comp is None or not is_num(comp.p_value):
        return "–"
    p = comp.p_value
    if p >= 0.05:
        return "n.s."
    stars = "***" if p < 0.001 else "**" if p < 0.01 else "*"
    if not (is_num(base) and is_num(aligned)) and is_num(comp.delta):
        # No stored values: the delta's sign is enough for higher/lower metrics.
        base, aligned = 0.0, comp.delta
    v = verdict(comp.direction, base, aligned)
    return f"{stars} {v}".strip()


def mde_text(comp: Comparison | None, d: int = 3) -> str:
    """The comparison's minimum detectable effect (α 0.05, power 0.8, paired; harness.stats.metric_mde); for a
    record made before MDEs were stored, '≈' and the normal approximation from the delta's CI (stats.mde_from_ci)."""
    if comp is None:
        return "–"
    mde = getattr(comp, "mde", None)
    if is_num(mde):
        return fmt(mde, d)
    if isinstance(mde, float):          # stored but NaN: no item changed, nothing to estimate it from
        return "–"
    from harness.stats import mde_from_ci
    approx = mde_from_ci(comp.ci)
    return "≈" + fmt(approx, d) if is_num(approx) else "–"


def failures_text(*failures: dict | None) -> str:
    """{'parse': 3, 'judge': 0} x checkpoints -> 'parse 3→1, judge 0→0' (only kinds that appear)."""
    kinds = sorted({k for f in failures if f for k in f})
    parts = []
    for k in kinds:
        parts.append(f"{k} " + "→".join(str((f or {}).get(k, 0)) for f in failures))
    return ", ".join(parts) if parts else "0"


def only_checkpoint(record: RunRecord) -> str:
    """The checkpoint an eval record holds (or 'aligned' when a run record has one)."""
    if "aligned" in record.checkpoints:
        return "aligned"
    if len(record.checkpoints) == 1:
        return next(iter(record.checkpoints))
    if "base" in record.checkpoints:
        return "base"
    from harness.errors import HarnessError
    raise HarnessError(f"record has no checkpoint to read (found: {sorted(record.checkpoints)})")


def record_title(record: RunRecord) -> str:
    if record.kind == "eval":
        model = record.config.get("model") or record.checkpoint_paths.get(only_checkpoint(record), "") or "model"
        return f"eval of {model} ({record.world} world)"
    size = f" {record.size:,} pairs" if record.size else ""
    return f"{record.method or 'run'}{size} ({record.world} world, seed {record.seed})"


def provenance(record: RunRecord) -> str:
    bits = [f"created {record.created or '?'}", f"commit {short_commit(record.git_commit, 10) or '?'}"]
    if record.config_hash:
        bits.append(f"config {record.config_hash}")
    return ", ".join(bits)


# ---------------------------------------------------------------- rows

def _suite_order(record: RunRecord, checkpoints: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for ck in checkpoints:
        for s in record.checkpoints.get(ck, {}):
            if s not in seen:
                seen.append(s)
    return seen


def _metric_names(results: Iterable[SuiteResult | None]) -> list[str]:
    results = list(results)
    names: list[str] = []
    primary = next((r.primary for r in results if r is not None and r.primary), "")
    for r in results:
        if r is None:
            continue
        for m in r.metrics:
            if m not in names:
                names.append(m)
    # primary first: it is the number people read
    return sorted(names, key=lambda m: m != primary)


def _n_text(*mvs: MetricValue | None) -> str:
    ns = [mv.n for mv in mvs if mv is not None]
    if not ns:
        return "–"
    return str(ns[0]) if len(set(ns)) == 1 else "/".join(str(n) for n in ns)


def before_after_cells(record: RunRecord) -> list[dict]:
    """One dict per (suite, metric) with every cell as text, parts kept apart so that Markdown can put a CI
    beside its value and the terminal can put it underneath."""
    out = []
    base_all, al_all = record.checkpoints.get("base", {}), record.checkpoints.get("aligned", {})
    for suite in _suite_order(record, ("base", "aligned")):
        b_res, a_res = base_all.get(suite), al_all.get(suite)
        ref = a_res or b_res
        comps = record.comparisons.get(suite, {})
        fails = failures_text(b_res.failures if b_res else None, a_res.failures if a_res else None)
        for i, name in enumerate(_metric_names([b_res, a_res])):
            bv = b_res.metrics.get(name) if b_res else None
            av = a_res.metrics.get(name) if a_res else None
            comp = comps.get(name)
            direction = (comp.direction if comp else None) or (av or bv).direction
            d = decimals_for(bv.value if bv else None, av.value if av else None)
            out.append(dict(
                suite=f"{suite} v{ref.version}", first=i == 0, failures=fails,
                metric=f"{name} {arrow(direction)}", primary=name == ref.primary,
                base=fmt(bv.value, d) if bv else "–", base_ci=fmt_ci(bv.ci, d) if bv else "",
                aligned=fmt(av.value, d) if av else "–", aligned_ci=fmt_ci(av.ci, d) if av else "",
                delta=fmt(comp.delta, d, True) if comp else "–", delta_ci=fmt_ci(comp.ci, d, True) if comp else "",
                p=fmt_p(comp.p_value) if comp else "–", test=TEST_SHORT.get(comp.test, comp.test) if comp else "",
                sig=significance(comp, bv.value if bv else None, av.value if av else None),
                mde=mde_text(comp, d), n=_n_text(bv, av)))
    return out


def before_after_rows(record: RunRecord) -> list[list[str]]:
    rows = []
    for c in before_after_cells(record):
        label = f"**{c['metric']} (primary)**" if c["primary"] else c["metric"]
        rows.append([c["suite"] if c["first"] else "", label,
                     f"{c['base']} {c['base_ci']}".strip(), f"{c['aligned']} {c['aligned_ci']}".strip(),
                     f"{c['delta']} {c['delta_ci']}".strip(), f"{c['p']} ({c['test']})" if c["test"] else c["p"],
                     c["sig"], c["mde"], c["n"], c["failures"] if c["first"] else ""])
    return rows


def eval_cells(record: RunRecord) -> list[dict]:
    ck = only_checkpoint(record)
    out = []
    for suite, res in record.checkpoints.get(ck, {}).items():
        for i, name in enumerate(_metric_names([res])):
            mv = res.metrics[name]
            d = decimals_for(mv.value)
            out.append(dict(suite=f"{suite} v{res.version}", first=i == 0, failures=failures_text(res.failures),
                            metric=f"{name} {arrow(mv.direction)}", primary=name == res.primary,
                            value=fmt(mv.value, d), value_ci=fmt_ci(mv.ci, d), n=str(mv.n)))
    return out


def eval_rows(record: RunRecord) -> list[list[str]]:
    return [[c["suite"] if c["first"] else "",
             f"**{c['metric']} (primary)**" if c["primary"] else c["metric"],
             f"{c['value']} {c['value_ci']}".strip(), c["n"], c["failures"] if c["first"] else ""]
            for c in eval_cells(record)]


LEGEND = ("delta = aligned − base, with its 95 % paired-bootstrap CI; p from the exact McNemar test (McN) on "
          "per-item correctness or the paired bootstrap (boot); * p<0.05, ** p<0.01, *** p<0.001, with "
          "better/worse read from the metric's declared direction (↑ higher is better, ↓ lower is better, "
          "→v closer to v is better); MDE = the smallest true delta the paired test detects with 80 % power at "
          "α 0.05 on these n items (McNemar from the discordance rate, else a paired t on the per-item differences; "
          "'≈' = approximated from the delta's CI for records made before MDEs were stored; '–': no item's value "
          "changed, so nothing to estimate it from): a delta smaller than the MDE may be real but this suite "
          "could not see it; n = items; failures = unparsable answers / failed judge calls, counted, never scored "
          "as 0.")


# ---------------------------------------------------------------- renderers

def before_after_markdown(record: RunRecord) -> str:
    if record.kind == "eval" or "aligned" not in record.checkpoints or "base" not in record.checkpoints:
        return eval_markdown(record)
    lines = [f"# {record_title(record)}", "", provenance(record), ""]
    if record.world == "micro":
        lines += [f"> {MICRO_CAVEAT}", ""]
    lines.append(tabulate(before_after_rows(record), headers=HEADERS_RUN, tablefmt="github", disable_numparse=True))
    lines += ["", LEGEND, ""]
    return "\n".join(lines)


def eval_markdown(record: RunRecord) -> str:
    ck = only_checkpoint(record)
    lines = [f"# {record_title(record)}", "", f"checkpoint: {ck}; {provenance(record)}", ""]
    if record.world == "micro":
        lines += [f"> {MICRO_CAVEAT}", ""]
    lines.append(tabulate(eval_rows(record), headers=HEADERS_EVAL, tablefmt="github", disable_numparse=True))
    lines += ["", "Values with their 95 % bootstrap CI over items; n = items; failures = unparsable answers / "
              "failed judge calls (counted, never scored as 0).", ""]
    return "\n".join(lines)


def _rich_table(title: str, caption: str, columns: list[tuple[str, str]], cells: list[dict], keys):
    """Terminal table: one section per suite (its name and failure counts as a title row), CIs under their
    values so the table fits an 80-column terminal without breaking numbers."""
    from rich.table import Table
    t = Table(title=title, caption=caption, header_style="bold")
    for name, justify in columns:
        t.add_column(name, justify=justify, overflow="fold")
    for c in cells:
        if c["first"]:
            if t.row_count:
                t.add_section()
            t.add_row(f"[bold cyan]{c['suite']}[/]\n[dim]failures: {c['failures']}[/]", *([""] * (len(columns) - 1)))
        t.add_row(*keys(c), style="bold" if c["primary"] else None)
    return t


def _colour_sig(sig: str, sep: str = "\n") -> str:
    stars, _, word = sig.partition(" ")
    colour = {"better": "green", "worse": "red"}.get(word)
    return f"[{colour}]{stars}{sep}{word}[/]" if colour else sig


def _is_detail(cell: dict) -> bool:
    """Per-split / per-type metrics ("adversarial/f1"): in table.md always, in the terminal on request."""
    return "/" in cell["metric"].split(" ")[0] and not cell["primary"]


def print_before_after(record: RunRecord, console=None, details: bool = False) -> None:
    from rich.console import Console
    console = console or Console()
    if record.kind == "eval" or "aligned" not in record.checkpoints or "base" not in record.checkpoints:
        return print_eval(record, console, details)
    cells = before_after_cells(record)
    shown = [c for c in cells if details or not _is_detail(c)]
    for c, prev in zip(shown, [None] + shown[:-1]):
        c["first"] = prev is None or prev["suite"] != c["suite"]
    hidden = len(cells) - len(shown)
    caption = provenance(record) + (f"\n{MICRO_CAVEAT}" if record.world == "micro" else "")
    if hidden:
        caption += f"\n{hidden} per-split/per-type metrics not shown here: see table.md"
    columns = [("metric", "left"), ("base", "right"), ("aligned", "right"), ("Δ", "right"),
               ("p", "right"), ("sig.", "left"), ("MDE", "right"), ("n", "right")]
    # Wide terminals get one line per metric; narrow ones get the CI under its value.
    sep = " " if console.width >= 150 else "\n"
    table = _rich_table(record_title(record), caption, columns, shown, lambda c: [
        c["metric"] + (f"{sep}(primary)" if c["primary"] else ""),
        f"{c['base']}{sep}{c['base_ci']}", f"{c['aligned']}{sep}{c['aligned_ci']}",
        f"{c['delta']}{sep}{c['delta_ci']}", f"{c['p']}{sep}{c['test']}", _colour_sig(c["sig"], sep), c["mde"], c["n"]])
    console.print(table)
    console.print(LEGEND, style="dim")


def print_eval(record: RunRecord, console=None, details: bool = False) -> None:
    from rich.console import Console
    console = console or Console()
    cells = eval_cells(record)
    shown = [c for c in cells if details or not _is_detail(c)]
    for c, prev in zip(shown, [None] + shown[:-1]):
        c["first"] = prev is None or prev["suite"] != c["suite"]
    caption = f"checkpoint {only_checkpoint(record)}; " + provenance(record) + \
        (f"\n{MICRO_CAVEAT}" if record.world == "micro" else "")
    if len(cells) > len(shown):
        caption += f"\n{len(cells) - len(shown)} per-split/per-type metrics not shown here: see the Markdown table"
    columns = [("metric", "left"), ("value", "right"), ("95% CI", "right"), ("n", "right")]
    console.print(_rich_table(record_title(record), caption, columns, shown, lambda c: [
        c["metric"] + (" (primary)" if c["primary"] else ""), c["value"], c["value_ci"], c["n"]]))
