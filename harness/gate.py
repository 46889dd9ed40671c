"""`harness gate`: fail CI (exit 1) when a gated hallucination metric regresses against a reference record.

Which metrics: those declared `gated=True` in the suite definitions (benchmarks.suites), with the direction
declared there. What is compared: the aligned checkpoint of each record (or the only checkpoint of an eval
record). No model runs and no torch: records only.

Tolerance (per metric):

    move = signed_gain(direction, reference, record)          # > 0 better, < 0 worse (target: distance)
    tol  = max(FLOOR_ABS, FLOOR_REL * |reference|, K * sqrt(hw_ref**2 + hw_rec**2))
    regression  <=>  move < -tol

hw_* are the half-widths of the two 95 % bootstrap CIs stored in the records. sqrt(hw_ref² + hw_rec²) is the
95 % half-width of the difference of two *independent* estimates (1.96·sqrt(σ_ref² + σ_rec²)); with K = 1 a
drop beyond it is what an unpaired test would call significant at 5 % two-sided (2.5 % one-sided, and we only
fail on one side). Both records answer the same items, so their item-sampling noise is positively correlated
and the real spread of the difference is smaller: the rule is deliberately conservative, because a CI gate that
flakes gets switched off. Worked example: POPE accuracy 0.80 on 3,000 items has hw ≈ 1.96·sqrt(.8·.2/3000)
≈ 0.014, so tol ≈ 0.020: a 2-point accuracy drop fails, a 1-point wobble passes.

The floors cover what item resampling cannot see: run-to-run spread from training/decoding nondeterminism and
degenerate CIs (all items right -> a zero-width interval). FLOOR_REL = 1 % of the reference value and
FLOOR_ABS = 0.005 (half a point on a 0-1 rate) are starting values; the lead calibrates them from a measured
run-to-run spread (same config, different seeds) and may pass per-metric floors (`floors={"suite/metric": x}`).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.io import atomic_path
from harness.record import MetricValue, RunRecord, SuiteResult
from harness.suite import Suite, arrow, signed_gain
from harness.tables import decimals_for, fmt, fmt_ci, is_num, only_checkpoint

GATE_K = 1.0
FLOOR_ABS = 0.005
FLOOR_REL = 0.01


@dataclass
class Check:
    suite: str
    metric: str
    direction: str
    reference: MetricValue
    record: MetricValue
    move: float               # signed gain, positive = better
    tol: float
    regressed: bool
    note: str = ""


def _load(path: str | Path, what: str) -> tuple[RunRecord, Path]:
    p = Path(path)
    if p.is_dir():
        p = p / "record.json"
    if not p.is_file():
        raise HarnessError(f"{what} record not found: {path}")
    return RunRecord.load_finished(p, "gate"), p


def _half_width(mv: MetricValue) -> float | None:
    ci = mv.ci or []
    if len(ci) == 2 and is_num(ci[0]) and is_num(ci[1]):
        return abs(ci[1] - ci[0]) / 2
    return None


def tolerance(ref: MetricValue, new: MetricValue, *, k: float = GATE_K, floor_abs: float = FLOOR_ABS,
              floor_rel: float = FLOOR_REL) -> float:
    """max(floor_abs, floor_rel·|ref|, k·sqrt(hw_ref² + hw_rec²)); a missing CI contributes nothing."""
    hws = [h for h in (_half_width(ref), _half_width(new)) if h is not None]
    ci_term = k * math.sqrt(sum(h * h for h in hws)) if hws else 0.0
    return max(floor_abs, floor_rel * abs(ref.value) if is_num(ref.value) else 0.0, ci_term)


def _suite_definition(name: str) -> Suite:
    from harness import registry
    suite = registry.load("suites", name)
    if not isinstance(suite, Suite):
        raise HarnessError(f"suite {name!r} is registered but is not a Suite object ({type(suite).__name__})")
    return suite


def checks(record: RunRecord, reference: RunRecord, *, k: float = GATE_K, floor_abs: float = FLOOR_ABS,
           floor_rel: float = FLOOR_REL, floors: dict[str, float] | None = None) -> tuple[list[Check], list[str]]:
    """Every gated metric of every reference suite, checked; plus notes. Bad or mismatched input -> HarnessError."""
    from harness.compare import same_inputs
    if record.world != reference.world:
        raise HarnessError(f"record is from the {record.world!r} world, reference from {reference.world!r}: "
                           "worlds are never compared")
    rec_ck, ref_ck = only_checkpoint(record), only_checkpoint(reference)
    rec_suites, ref_suites = record.checkpoints[rec_ck], reference.checkpoints[ref_ck]
    if not ref_suites:
        raise HarnessError("reference record has no suite results")
    missing = sorted(set(ref_suites) - set(rec_suites))
    if missing:
        raise HarnessError(f"record lacks suite(s) of the reference: {', '.join(missing)} "
                           f"(record has: {', '.join(sorted(rec_suites)) or 'none'})")
    notes = [f"suite {s} is in the record but not in the reference: not gated"
             for s in sorted(set(rec_suites) - set(ref_suites))]
    out: list[Check] = []
    for name in sorted(ref_suites):
        ref_res, rec_res = ref_suites[name], rec_suites[name]
        if ref_res.version != rec_res.version:
            raise HarnessError(f"suite {name}: record is version {rec_res.version}, reference version "
                               f"{ref_res.version}; results of different suite versions are not comparable "
                               "(re-run the reference and `harness gate --update` it)")
        suite = _suite_definition(name)
        if suite.version != ref_res.version:
            raise HarnessError(f"suite {name}: the definition is at version {suite.version} but the records were "
                               f"made with version {ref_res.version}; re-run and update the reference")
        # different data, judge or item count: refused. A record made before these fields existed (the
        # committed CI reference, older leaderboard records) has them empty = unknown, which is not a mismatch.
        same_inputs(name, rec_res, ref_res, "record and reference")
        gated = [m for m in suite.metrics if m.gated]
        for m in gated:
            ref_mv, rec_mv = _metric(ref_res, m.name, "reference"), _metric(rec_res, m.name, "record")
            for who, mv in (("reference", ref_mv), ("record", rec_mv)):
                if mv.direction != m.direction:
                    raise HarnessError(f"{name}/{m.name}: {who} says direction {mv.direction!r}, the suite "
                                       f"definition says {m.direction!r}")
            note = ""
            if ref_mv.n != rec_mv.n:
                if not suite.judged:
                    # unjudged: n is fixed by the items answered, so a different n is different data
                    raise HarnessError(f"{name}/{m.name}: the reference is computed on {ref_mv.n} items, the "
                                       f"record on {rec_mv.n}: different data or limits are not compared")
                note = f"n differs ({ref_mv.n} vs {rec_mv.n}: judge failures)"
            fl = (floors or {}).get(f"{name}/{m.name}", (floors or {}).get(m.name, floor_abs))
            if not is_num(ref_mv.value):
                raise HarnessError(f"reference has no value for gated metric {name}/{m.name} ({ref_mv.value}): "
                                   "it cannot serve as a reference")
            if not is_num(rec_mv.value):
                # e.g. F1 undefined because the model never answered "yes": the record lost the metric itself
                out.append(Check(name, m.name, m.direction, ref_mv, rec_mv, float("nan"), fl, True,
                                 "no value in the record (metric undefined)"))
                continue
            tol = tolerance(ref_mv, rec_mv, k=k, floor_abs=fl, floor_rel=floor_rel)
            move = signed_gain(m.direction, ref_mv.value, rec_mv.value)
            out.append(Check(name, m.name, m.direction, ref_mv, rec_mv, move, tol, move < -tol, note))
        notes += _failure_notes(name, ref_res, rec_res)
    if not out:
        raise HarnessError(f"no gated metric in suites {', '.join(sorted(ref_suites))}: nothing to gate "
                           "(declare gated=True on the metrics in benchmarks.suites)")
    return out, notes


def _metric(res: SuiteResult, name: str, who: str) -> MetricValue:
    if name not in res.metrics:
        raise HarnessError(f"{who} has no value for gated metric {res.suite}/{name}")
    return res.metrics[name]


def _failure_notes(name: str, ref: SuiteResult, rec: SuiteResult) -> list[str]:
    return [f"{name}: {kind} failures {ref.failures.get(kind, 0)} -> {rec.failures.get(kind, 0)}"
            for kind in sorted(set(ref.failures) | set(rec.failures))
            if rec.failures.get(kind, 0) > ref.failures.get(kind, 0)]


def print_checks(found: list[Check], notes: list[str], console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    console = console or Console()
    t = Table(title="harness gate: gated metrics, record vs reference", header_style="bold")
    for col, just in (("suite", "left"), ("metric", "left"), ("reference", "right"), ("record", "right"),
                      ("move (+ better)", "right"), ("tolerance", "right"), ("status", "left")):
        t.add_column(col, justify=just, no_wrap=col in ("suite", "status"))
    for c in found:
        d = decimals_for(c.reference.value, c.record.value)
        status = "[red]REGRESSED[/]" if c.regressed else (
            "[green]pass (better)[/]" if is_num(c.move) and c.move > c.tol else "pass")
        t.add_row(c.suite, f"{c.metric} {arrow(c.direction)}",
                  f"{fmt(c.reference.value, d)}\n{fmt_ci(c.reference.ci, d)}",
                  f"{fmt(c.record.value, d)}\n{fmt_ci(c.record.ci, d)}",
                  fmt(c.move, d, signed=True), f"±{fmt(c.tol, d)}", status + (f"\n{c.note}" if c.note else ""))
    console.print(t)
    for n in notes:
        console.print(f"note: {n}", style="yellow", soft_wrap=True)
    bad = [c for c in found if c.regressed]
    if bad:
        console.print(f"[red bold]REGRESSION[/]: {len(bad)} of {len(found)} gated metric(s) moved the wrong way "
                      "beyond tolerance: " + ", ".join(f"{c.suite}/{c.metric}" for c in bad), soft_wrap=True)
    else:
        console.print(f"[green bold]OK[/]: {len(found)} gated metric(s) within tolerance", soft_wrap=True)


def update_reference(record_path: Path, reference_path: Path, console=None) -> None:
    """Deliberately make the record the new reference (atomic), after printing what changes."""
    from rich.console import Console
    console = console or Console()
    record = RunRecord.load(record_path)
    only_checkpoint(record)
    old = None
    if reference_path.exists():
        try:
            old = RunRecord.load(reference_path)
        except HarnessError as e:
            console.print(f"old reference {reference_path} is unreadable ({e}); replacing it", style="yellow",
                          soft_wrap=True)
    if old is None:
        console.print(f"new reference: {reference_path} (no previous reference)", soft_wrap=True)
    else:
        _print_changes(old, record, console)
    reference_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(reference_path) as tmp:
        shutil.copyfile(record_path, tmp)
    console.print(f"reference updated: {record_path} -> {reference_path}", soft_wrap=True)


def _print_changes(old: RunRecord, new: RunRecord, console) -> None:
    from rich.table import Table
    if old.world != new.world:
        console.print(f"world changes: {old.world} -> {new.world}", style="yellow", soft_wrap=True)
    o, n = old.checkpoints[only_checkpoint(old)], new.checkpoints[only_checkpoint(new)]
    for s in sorted(set(o) - set(n)):
        console.print(f"suite removed from the reference: {s}", style="yellow", soft_wrap=True)
    for s in sorted(set(n) - set(o)):
        console.print(f"suite added to the reference: {s} v{n[s].version}", style="yellow", soft_wrap=True)
    t = Table(title="reference update: old -> new", header_style="bold")
    for col in ("suite", "metric", "old", "new", "change"):
        t.add_column(col)
    for s in sorted(set(o) & set(n)):
        if o[s].version != n[s].version:
            console.print(f"suite {s}: version {o[s].version} -> {n[s].version}", style="yellow", soft_wrap=True)
        for m in sorted(set(o[s].metrics) & set(n[s].metrics)):
            a, b = o[s].metrics[m], n[s].metrics[m]
            d = decimals_for(a.value, b.value)
            change = fmt(b.value - a.value, d, signed=True) if is_num(a.value) and is_num(b.value) else "–"
            t.add_row(s, f"{m} {arrow(b.direction)}", fmt(a.value, d), fmt(b.value, d), change)
    console.print(t)


def gate_cli(record: str | Path, reference: str | Path, update: bool = False, *, k: float = GATE_K,
             floor_abs: float = FLOOR_ABS, floor_rel: float = FLOOR_REL,
             floors: dict[str, float] | None = None) -> int:
    """0: no gated metric regressed (or --update done); 1: regression; HarnessError (exit 2): bad input."""
    rec, rec_path = _load(record, "gate")
    if update:
        ref_path = Path(reference)
        if ref_path.is_dir():
            ref_path = ref_path / "record.json"
        update_reference(rec_path, ref_path)
        return 0
    ref, _ = _load(reference, "reference")
    found, notes = checks(rec, ref, k=k, floor_abs=floor_abs, floor_rel=floor_rel, floors=floors)
    print_checks(found, notes)
    return 1 if any(c.regressed for c in found) else 0
