"""`harness compare A B`: any two records on the same suites and data (method vs method, seed vs seed, a run vs its
re-judged copy), metric by metric, B − A.

Each side is one checkpoint of a record (a run directory or a record.json; `aligned` by default, or the only one
of an eval record). Per suite:
- the items match (the same ids on both sides): the paired test the metric declares (harness.compare: exact
  McNemar on per-item correctness, else the paired bootstrap), with the MDE at those items;
- the items do not match (another limit, another suite size): an unpaired comparison — an independent bootstrap
  for the CI and a permutation test for p (harness.stats.unpaired_bootstrap_permutation) — with the reason.
Different suite versions, data or judges are refused (exit 2) unless `--allow-mismatch`; then each is printed.
Reads samples and records only: no torch, no model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from harness.io import read_jsonl
from harness.record import Comparison, RunRecord, SuiteResult


@dataclass
class Side:
    label: str
    record: RunRecord
    run_dir: Path
    checkpoint: str

    def result(self, suite: str) -> SuiteResult | None:
        return self.record.checkpoints.get(self.checkpoint, {}).get(suite)

    def rows(self, suite: str) -> list[dict]:
        res = self.result(suite)
        path = self.run_dir / res.samples if res and res.samples else None
        if path is None or not path.is_file():
            raise HarnessError(f"{self.label}: no samples file for {self.checkpoint}/{suite} "
                               f"(expected {path}); compare needs the run directory, not a published record")
        return read_jsonl(path)


@dataclass
class SuiteComparison:
    suite: str
    paired: bool
    reason: str
    n: tuple[int, int]
    comparisons: dict[str, Comparison] = field(default_factory=dict)
    mismatches: list[str] = field(default_factory=list)


def load_side(path: str | Path, checkpoint: str | None, label: str) -> Side:
    """A run directory or a record file (record.json, record.rejudge-<judge>.json, ...) and one checkpoint."""
    p = Path(path)
    rec_path = p / "record.json" if p.is_dir() else p
    rec = RunRecord.load_finished(rec_path, "compare")
    if checkpoint is None:
        checkpoint = "aligned" if "aligned" in rec.checkpoints else next(iter(rec.checkpoints), "")
    if checkpoint not in rec.checkpoints:
        raise HarnessError(f"{label} ({rec_path}) has no checkpoint {checkpoint!r} "
                           f"(it has: {', '.join(sorted(rec.checkpoints)) or 'none'})")
    return Side(label, rec, rec_path.parent, checkpoint)


def input_mismatches(suite: str, a: SuiteResult, b: SuiteResult) -> list[str]:
    """What makes two results of one suite incomparable: the suite version, and harness.compare.same_inputs's
    data manifest and judge identity (unknown in older records = not a mismatch). Its item-count check is left to
    this module, which compares differing items unpaired instead of refusing them."""
    import dataclasses

    from harness.compare import same_inputs

    out = [f"{suite}: suite version {a.version} vs {b.version}"] if a.version != b.version else []
    try:
        same_inputs(suite, dataclasses.replace(a, items=None), dataclasses.replace(b, items=None), "A and B")
    except HarnessError as e:
        out.append(str(e))
    return out


def compare_records(a: Side, b: Side, suites: list[str] | None = None, allow_mismatch: bool = False,
                    seed: int = 0) -> list[SuiteComparison]:
    """B − A per suite and metric; HarnessError (before any test) on mismatched inputs unless allowed."""
    from harness.registry import load

    if a.record.world != b.record.world:
        raise HarnessError(f"A is a {a.record.world}-world record and B a {b.record.world}-world one: never compared")
    common = [s for s in a.record.checkpoints[a.checkpoint] if s in b.record.checkpoints[b.checkpoint]]
    if suites:
        missing = [s for s in suites if s not in common]
        if missing:
            raise HarnessError(f"suite(s) {', '.join(missing)} not in both records (shared: {', '.join(common)})")
        common = suites
    if not common:
        raise HarnessError("the two records share no suite")
    mism = {s: input_mismatches(s, a.result(s), b.result(s)) for s in common}
    found = [m for ms in mism.values() for m in ms]
    if found and not allow_mismatch:
        raise HarnessError("refusing to compare results made on different inputs:\n  " + "\n  ".join(found) +
                           "\n(pass --allow-mismatch to compare anyway; the table then lists each mismatch)")
    return [_compare_suite(load("suites", s), a, b, mism[s], seed) for s in common]


def _compare_suite(suite, a: Side, b: Side, mismatches: list[str], seed: int) -> SuiteComparison:
    from harness.compare import compare_metric
    from harness.stats import unpaired_bootstrap_permutation

    # judged suites: rows whose judgement failed stay in (the same items pair); the metrics skip them
    rows_a, rows_b = a.rows(suite.name), b.rows(suite.name)
    ids_a, ids_b = {r["id"] for r in rows_a}, {r["id"] for r in rows_b}
    out = SuiteComparison(suite.name, ids_a == ids_b, "", (len(rows_a), len(rows_b)), mismatches=mismatches)
    if out.paired:
        out.reason = f"the same {len(ids_a)} items on both sides: paired by id"
        out.comparisons = {m.name: compare_metric(m, rows_a, rows_b, seed=seed) for m in suite.metrics}
        return out
    shared = len(ids_a & ids_b)
    out.reason = (f"items differ (A {len(ids_a)}, B {len(ids_b)}, {shared} shared): unpaired, independent "
                  "bootstrap CI and permutation-test p")
    for m in suite.metrics:
        delta, ci, p = unpaired_bootstrap_permutation(m.select(rows_a), m.select(rows_b), m.fn, seed=seed)
        out.comparisons[m.name] = Comparison(delta=delta, ci=ci, p_value=p, test="permutation",
                                             direction=m.direction)
    return out


# ---------------------------------------------------------------- output

def comparison_rows(results: list[SuiteComparison]) -> list[list[str]]:
    from harness.suite import arrow
    from harness.tables import (
        TEST_SHORT,
        decimals_for,
        fmt,
        fmt_ci,
        fmt_p,
        mde_text,
        significance,
    )

    rows = []
    for sc in results:
        for name, c in sc.comparisons.items():
            d = decimals_for(c.delta, *(c.ci or []))
            rows.append([sc.suite, f"{name} {arrow(c.direction)}", f"{fmt(c.delta, d, True)} {fmt_ci(c.ci, d, True)}",
                         fmt_p(c.p_value), TEST_SHORT.get(c.test, c.test), significance(c), mde_text(c, d) if sc.paired else "–",
                         f"{sc.n[0]}/{sc.n[1]}"])
    return rows


HEADERS = ["suite", "metric", "Δ = B − A [95% CI]", "p", "test", "sig.", "MDE", "n A/B"]


def render_markdown(a: Side, b: Side, results: list[SuiteComparison]) -> str:
    from tabulate import tabulate

    lines = ["# compare: B − A", "", f"- A: {a.run_dir} ({a.checkpoint})", f"- B: {b.run_dir} ({b.checkpoint})", ""]
    for sc in results:
        lines.append(f"- {sc.suite}: {sc.reason}" + "".join(f"; MISMATCH {m}" for m in sc.mismatches))
    lines += ["", tabulate(comparison_rows(results), headers=HEADERS, tablefmt="github", disable_numparse=True), "",
              "sig.: better/worse read from the metric's direction for B against A. MDE: paired suites only.", ""]
    return "\n".join(lines)


def compare_cli(args) -> list[SuiteComparison]:
    from rich.console import Console
    from rich.table import Table

    a = load_side(args.a, args.checkpoint_a, "A")
    b = load_side(args.b, args.checkpoint_b, "B")
    suites = [s.strip() for s in args.suites.split(",") if s.strip()] if args.suites else None
    results = compare_records(a, b, suites, allow_mismatch=args.allow_mismatch)
    if args.out:
        from harness.io import write_text
        write_text(args.out, render_markdown(a, b, results))
    console = Console()
    console.print(f"A = {a.run_dir} [{a.checkpoint}]   B = {b.run_dir} [{b.checkpoint}]")
    for sc in results:
        console.print(f"[bold cyan]{sc.suite}[/]: {sc.reason}" +
                      "".join(f"\n  [red]mismatch allowed:[/] {m}" for m in sc.mismatches))
    t = Table(title="B − A per metric", header_style="bold")
    for h in HEADERS:
        t.add_column(h, justify="left" if h in ("suite", "metric", "test", "sig.") else "right")
    for r in comparison_rows(results):
        t.add_row(*r)
    console.print(t)
    return results
