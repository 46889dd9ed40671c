"""`harness rejudge RUN_DIR --judge J`: re-score a finished run's saved answers with another judge, no generation.

The judged suites' samples (MMHal, MM-Vet) of every checkpoint are copied, their judge fields dropped, and
scored again by J. Written beside the original, which is never touched:
  RUN_DIR/record.rejudge-<tag>.json               the record with the judged suites re-scored (and their
                                                  comparisons, base vs aligned, recomputed under J);
  RUN_DIR/samples-rejudge-<tag>/<ck>/<suite>.jsonl the re-scored rows;
  RUN_DIR/rejudge-<tag>.md                        the judge's effect: per checkpoint and metric, old vs new.
The judge's effect is paired (same answers, two judges): new − old with the paired bootstrap CI and p, on the
items both judges scored (a failed judgement is left out and counted, never scored 0).
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

from harness.errors import HarnessError
from harness.io import read_jsonl, write_jsonl, write_text
from harness.record import Comparison, RunRecord

JUDGE_FIELDS = ("score", "judge_failed", "judge_raw", "judge_error")


def judge_tag(judge) -> str:
    """A file-name-safe tag: the judge's name, plus its model when the name alone does not say which."""
    from harness.boards import safe_name

    desc = judge.describe()
    model = str(desc.get("model") or "")
    tag = desc["name"] if not model or desc["name"] == "rule" else f"{desc['name']}-{model}"
    return safe_name(tag)


def _fresh(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in JUDGE_FIELDS} for r in rows]


def _scored(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r.get("score") is not None and not r.get("judge_failed")]


def rejudge(run_dir: str | Path, judge, progress: bool = True) -> tuple[RunRecord, dict]:
    """-> (the re-judged record, {checkpoint: {suite: {metric: Comparison new − old}}}); files written as above."""
    from harness.evaluate import _Progress

    run_dir = Path(run_dir)
    old = RunRecord.load_finished(run_dir / "record.json" if run_dir.is_dir() else run_dir, "re-judge")
    run_dir = run_dir if run_dir.is_dir() else run_dir.parent
    tag = judge_tag(judge)
    new = copy.deepcopy(old)
    effects: dict = {}
    with _Progress(progress) as bar:        # the evaluation's rich bars, one per checkpoint and suite
        judged_any = _rejudge_all(old, new, run_dir, judge, tag, effects, bar)
    if not judged_any:
        raise HarnessError(f"{run_dir} has no judged suite (MMHal, MM-Vet): nothing to re-judge")
    _recompare(new, run_dir)
    new.config = {**old.config, "rejudge": {"from": "record.json", "judge": judge.describe()}}
    new.command = f"harness rejudge {run_dir} --judge {judge.describe()['name']}"
    new.save(run_dir / f"record.rejudge-{tag}.json")
    write_text(run_dir / f"rejudge-{tag}.md", effect_markdown(old, judge, effects))
    return new, effects


def _samples(run_dir: Path, rel: str, ck: str, suite: str) -> Path:
    path = run_dir / rel if rel else None
    if path is None or not path.is_file():
        raise HarnessError(f"no saved samples for {ck}/{suite} under {run_dir} (rejudge needs the run directory "
                           "with its samples/, not a published record)")
    return path


def _rejudge_all(old: RunRecord, new: RunRecord, run_dir: Path, judge, tag: str, effects: dict, bar) -> bool:
    """Every judged suite of every checkpoint re-scored into `new` and `effects`; False when there was none."""
    from harness.evaluate import _judge_task, suite_result
    from harness.registry import load

    judged_any = False
    for ck, suites in old.checkpoints.items():
        for name, res in suites.items():
            suite = load("suites", name)
            if not suite.judged:
                continue
            judged_any = True
            old_rows = read_jsonl(_samples(run_dir, res.samples, ck, name))
            rows = _fresh(old_rows)
            failures = judge.judge_rows(_judge_task(suite), rows, progress=bar.judge_callback(f"{ck}/{name}", len(rows)))
            rel = f"samples-rejudge-{tag}/{ck}/{name}.jsonl"
            write_jsonl(run_dir / rel, rows)
            result = dataclasses.replace(suite_result(suite, rows, rel, failures, res.data, judge.describe()),
                                         items=res.items)
            new.checkpoints[ck][name] = result
            effects.setdefault(ck, {})[name] = judge_effect(suite, old_rows, rows)
    return judged_any


def judge_effect(suite, old_rows: list[dict], new_rows: list[dict]) -> dict[str, Comparison]:
    """Per metric: new judge − old judge on the same answers, paired by id over the items both scored."""
    from harness.compare import compare_metric

    both = {r["id"] for r in _scored(old_rows)} & {r["id"] for r in _scored(new_rows)}
    old_b = [r for r in old_rows if r["id"] in both]
    new_b = [r for r in new_rows if r["id"] in both]
    return {m.name: compare_metric(m, old_b, new_b) for m in suite.metrics}


def _recompare(rec: RunRecord, run_dir: Path) -> None:
    """Base vs aligned of each re-judged suite, recomputed from the re-scored samples as `harness run` does
    (the same answered items on both sides; the metrics skip failed judgements)."""
    from harness.compare import compare_suite
    from harness.registry import load

    if not {"base", "aligned"} <= set(rec.checkpoints):
        return
    for name in rec.checkpoints["aligned"]:
        suite = load("suites", name)
        if suite.judged and name in rec.checkpoints["base"]:
            rows = [read_jsonl(run_dir / rec.checkpoints[ck][name].samples) for ck in ("base", "aligned")]
            rec.comparisons[name] = compare_suite(suite, *rows, seed=rec.seed)


def effect_rows(effects: dict) -> list[list[str]]:
    from harness.suite import arrow
    from harness.tables import TEST_SHORT, decimals_for, fmt, fmt_ci, fmt_p

    rows = []
    for ck, suites in effects.items():
        for suite, comps in suites.items():
            for m, c in comps.items():
                if "/" in m:
                    continue            # per-type detail: in the samples, not in the summary
                d = decimals_for(c.delta, *c.ci)
                rows.append([ck, suite, f"{m} {arrow(c.direction)}", f"{fmt(c.delta, d, True)} {fmt_ci(c.ci, d, True)}",
                             fmt_p(c.p_value), TEST_SHORT.get(c.test, c.test)])
    return rows


EFFECT_HEADERS = ["checkpoint", "suite", "metric", "new − old judge [95% CI]", "p", "test"]


def effect_markdown(old: RunRecord, judge, effects: dict) -> str:
    from tabulate import tabulate

    desc = judge.describe()
    lines = [f"# Re-judged with {desc['name']} ({desc.get('model', '')})", "",
             "Same answers, two judges: Δ = new − old judge per metric, paired by item over the items both judges "
             "scored (failed judgements left out and counted in the new record).", "",
             tabulate(effect_rows(effects), headers=EFFECT_HEADERS, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines)


def rejudge_cli(args) -> RunRecord:
    from rich.console import Console
    from rich.table import Table

    from harness.judges import load_judge

    kwargs = {k: v for k, v in (("base_url", args.judge_url), ("model", args.judge_model)) if v}
    judge = load_judge(args.judge, **kwargs)
    new, effects = rejudge(args.run_dir, judge)
    t = Table(title=f"judge effect: {judge_tag(judge)} − original judge (same answers)", header_style="bold")
    for h in EFFECT_HEADERS:
        t.add_column(h, justify="right" if h in ("p",) or h.startswith("new") else "left")
    for r in effect_rows(effects):
        t.add_row(*r)
    Console().print(t)
    Console().print(f"wrote record.rejudge-{judge_tag(judge)}.json and rejudge-{judge_tag(judge)}.md "
                    f"under {args.run_dir}")
    return new
