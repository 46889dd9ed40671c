"""Evaluate one checkpoint on suites through lmms-eval: samples, metrics with 95 % CIs, failures.

`evaluate_checkpoint(...)` is the reusable API (`harness run` calls it for base and aligned);
`evaluate_cli(args)` is `harness eval`. Per suite it writes `out_dir/samples/<checkpoint>/<suite>.jsonl`
atomically (one row per item) plus a small `.meta.json` naming what produced it, so a re-run with the same
model, adapter, limit and suite version reuses the finished suites and evaluates only the rest.
`record.json` is written only when every suite finished: a partial evaluation is never a finished record.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError
from harness.io import file_sha256, read_jsonl, stable_hash, weights_identity, write_json, write_jsonl
from harness.record import (
    MetricValue,
    RunRecord,
    SuiteResult,
    git_commit,
    machine_description,
    now_iso,
    package_versions,
)
from harness.suite import Suite


def resolve_suites(suites: Iterable[str | Suite] | str) -> list[Suite]:
    from harness.registry import load

    if isinstance(suites, str):
        suites = [s.strip() for s in suites.split(",") if s.strip()]
    out = [s if isinstance(s, Suite) else load("suites", s) for s in suites]
    if not out:
        raise HarnessError("no suites given")
    worlds = {s.world for s in out}
    if len(worlds) > 1:
        raise HarnessError(f"suites mix worlds {sorted(worlds)}: micro and real numbers never share a run")
    return out


def samples_path(out_dir: str | Path, checkpoint: str, suite: str) -> Path:
    return Path(out_dir) / "samples" / checkpoint / f"{suite}.jsonl"


def load_samples(out_dir: str | Path, checkpoint: str, suite: str) -> list[dict]:
    p = samples_path(out_dir, checkpoint, suite)
    if not p.is_file():
        raise HarnessError(f"no samples for {checkpoint}/{suite} under {out_dir}")
    try:
        return read_jsonl(p)
    except (ValueError, UnicodeDecodeError) as e:     # JSONDecodeError is a ValueError
        raise HarnessError(f"damaged samples file {p} (truncated or overwritten?): {e}; delete it and re-run "
                           "(finished stages are verified and redone when damaged)") from None


def metric_values(suite: Suite, rows: list[dict], seed: int = 0) -> dict[str, MetricValue]:
    """Each metric with its 95 % bootstrap interval over items (harness.stats.bootstrap_ci) and n."""
    from harness.stats import bootstrap_ci

    out = {}
    for m in suite.metrics:
        sel = m.select(rows)
        # failed judgements are skipped by the metric; n counts what it was computed on. A metric that reproduces
        # a benchmark's own script (which scores an unreadable reply 0) says so: `counts_unscored`.
        if suite.judged and not getattr(m.fn, "counts_unscored", False):
            sel = [r for r in sel if r.get("score") is not None and not r.get("judge_failed")]
        value = m.compute(sel) if sel else float("nan")
        ci = bootstrap_ci(sel, m.fn, seed=seed) if sel else [float("nan"), float("nan")]
        out[m.name] = MetricValue(value=float(value), ci=[float(c) for c in ci], n=len(sel), direction=m.direction)
    return out


def suite_result(suite: Suite, rows: list[dict], samples_rel: str, judge_failures: int = 0, data: str = "",
                 judge: dict | None = None) -> SuiteResult:
    failures = {"parse": sum(1 for r in rows if r.get("parse_failed"))}
    if suite.judged:
        failures["judge"] = judge_failures
    return SuiteResult(suite=suite.name, version=suite.version, metrics=metric_values(suite, rows),
                       failures=failures, samples=samples_rel, primary=suite.primary, data=data,
                       judge=judge if suite.judged else None, items=len(rows))


def eval_identity(suites, judge: str | object | None = None, judge_kwargs: dict | None = None) -> dict:
    """What besides the model makes a suite's numbers: {"data": {suite: data manifest hash}, "judge": the
    judge's identity (Judge.describe(): kind, model, endpoint, template; never a key) or None when no suite is
    judged}. `judge`: a registry name or a Judge. Part of every evaluation cache key (here and in harness.api's
    stages) and of each suite's result in the record."""
    from harness.manifest import suite_manifest

    suites = resolve_suites(suites)
    judged = any(s.judged for s in suites)
    return {"data": {s.name: suite_manifest(s, _include_paths([s]))["hash"] for s in suites},
            "judge": _make_judge(judge, judge_kwargs).describe() if judged else None}


def _model_fingerprint(model: str, adapter: str | None) -> dict:
    """Identity of what is evaluated: the resolved paths and the identities of their weight files."""
    from harness.models.vlm import resolve_checkpoint

    fp = {"model": str(model), "weights": weights_identity(resolve_checkpoint(str(model)))}
    if adapter:
        fp["adapter"] = weights_identity(adapter)
    return fp


def _include_paths(suites: list[Suite]) -> list[str]:
    """The suites' own lmms-eval task folders (Suite.include), each once."""
    paths = [str(s.include_path()) for s in suites if s.include is not None]
    return list(dict.fromkeys(paths))


def evaluate_checkpoint(model: str, *, adapter: str | None = None, suites, out_dir: str | Path,
                        checkpoint: str = "base", judge: str | object | None = "rule", batch_size: int = 64,
                        limit: int | None = None, judge_kwargs: dict | None = None, progress: bool = True,
                        loaded=None, device: str | None = None, engine: str = "hf",
                        identity: dict | None = None) -> dict[str, SuiteResult]:
    """Evaluate `model` (+ PEFT `adapter`) on `suites` -> {suite: SuiteResult}; writes the samples files.

    `judge` is a registry name ("rule", "openai") or a Judge instance, used by judged suites (MMHal, MM-Vet).
    `loaded` = (model, processor) skips loading (the checkpoint must still be the one named, for the cache key).
    `device`: default "cuda" when a GPU is visible, else the CPU. `identity`: eval_identity(suites, judge) when
    the caller has computed it already (harness.api keys its stage on it), so the data is not hashed twice.
    """
    import torch

    suites = resolve_suites(suites)
    out_dir = Path(out_dir)
    if adapter and not Path(adapter).is_dir():
        raise HarnessError(f"adapter directory not found: {adapter}")
    fingerprint = _model_fingerprint(model, adapter)
    judge_obj = _make_judge(judge, judge_kwargs) if any(s.judged for s in suites) else None

    ident = identity or eval_identity(suites, judge_obj)
    keys = {s.name: _suite_key(s, fingerprint, limit, engine, ident) for s in suites}
    results, todo = _reuse_finished(suites, out_dir, checkpoint, keys, judge_obj, ident)
    if not todo:
        return {s.name: results[s.name] for s in suites}

    from benchmarks.rows import rows_from_samples
    from harness import lmms_adapter

    device = device or ("cuda" if torch.cuda.is_available() else None)
    if device in (None, "cpu"):
        torch.set_num_threads(1)      # docs/micro-world.md: 1 thread per process is steadier on a shared 2-core VM
    todo.sort(key=lambda s: s.judged)  # unjudged suites are saved before a judge can fail
    with _served(engine, str(model), adapter) as served, _Progress(progress) as bar:
        if served is not None:         # a vLLM server answers (harness.engines); no HF model in this process
            loaded = (None, None)
        if loaded is None:
            from harness.models.vlm import load_vlm
            loaded = load_vlm(str(model), adapter=adapter, device=device)
        lm = lmms_adapter.HarnessVLM(model=loaded[0], processor=loaded[1], batch_size=batch_size,
                                     progress=bar.update_task, engine=served)
        lm.shard_batches = True        # data-parallel ranks split whole batches (harness.parallel)
        tasks = [t for s in todo for t in s.tasks]
        samples = lmms_adapter.run_tasks(lm, tasks, include_path=_include_paths(todo), limit=limit)
        for s in todo:
            rows = [r for t in s.tasks for r in (s.rows or rows_from_samples)(t, samples[t])]
            judge_failures = 0
            if s.judged and _is_main():    # one rank calls the judge (and publishes); the others skip it
                judge_failures = judge_obj.judge_rows(_judge_task(s), rows,
                                                      progress=bar.judge_callback(s.name, len(rows)))
            _save(s, rows, out_dir, checkpoint, keys[s.name], judge_failures, judge_obj)
            results[s.name] = suite_result(s, rows, _rel(out_dir, checkpoint, s.name), judge_failures,
                                           ident["data"][s.name], ident["judge"] if s.judged else None)
    return {s.name: results[s.name] for s in suites}


def _suite_key(s: Suite, fingerprint: dict, limit: int | None, engine: str, ident: dict) -> str:
    """Every input that changes a suite's numbers: model, suite, limit, the data's content, the judge's identity."""
    return stable_hash({"fp": fingerprint, "suite": s.name, "version": s.version, "limit": limit,
                        "judge": ident["judge"] if s.judged else None, "data": ident["data"][s.name],
                        **({"engine": engine} if engine != "hf" else {})})   # vLLM: other samples


def _reuse_finished(suites: list[Suite], out_dir: Path, checkpoint: str, keys: dict, judge_obj,
                    ident: dict) -> tuple[dict[str, SuiteResult], list[Suite]]:
    """Suites finished earlier with the same inputs and intact (re-asking only failed judgements) -> results;
    the rest -> to do."""
    results: dict[str, SuiteResult] = {}
    todo: list[Suite] = []
    for s in suites:
        found = _finished_suite(out_dir, checkpoint, s.name, keys[s.name])
        if found is None:
            todo.append(s)
            continue
        rows, failures = found
        if failures and judge_obj is not None:
            failures = _rejudge_failed(s, rows, judge_obj, out_dir, checkpoint, keys[s.name])
        results[s.name] = suite_result(s, rows, _rel(out_dir, checkpoint, s.name), failures,
                                       ident["data"][s.name], ident["judge"] if s.judged else None)
    return results, todo


def _served(engine: str, model: str, adapter: str | None):
    """A vLLM session yielding (url, served name) for engine vllm[:url]; for hf, a block yielding None."""
    import contextlib
    if (engine or "hf") == "hf":
        return contextlib.nullcontext(None)
    from harness.engines.serve import session
    return session(engine, model, adapter)


def _engine_arg(args) -> str:
    from harness.engines import check_engine
    return check_engine(getattr(args, "engine", None) or "hf", "--engine")


def _is_main() -> bool:
    from harness import parallel
    return parallel.is_main()


def _judge_task(suite: Suite) -> str:
    """Which rubric a judged suite uses (its declared `rubric`): MMHal's 0-6 rating or MM-Vet's 0-1 correctness."""
    return suite.rubric


def _finished_suite(out_dir: Path, checkpoint: str, suite: str, key: str) -> tuple[list[dict], int] | None:
    """(rows, judge failures) of a suite finished earlier with the same key and intact; None otherwise. A
    damaged samples file (truncated, overwritten, unreadable meta) is reported and evaluated again."""
    path = samples_path(out_dir, checkpoint, suite)
    meta_path = path.with_suffix(".meta.json")
    if not (meta_path.is_file() and path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("key") != key:
            return None
        if meta.get("sha256") not in (None, file_sha256(path)):
            raise ValueError("its sha256 differs from the one recorded when it was written")
        rows = read_jsonl(path)
        if meta.get("n") not in (None, len(rows)):
            raise ValueError(f"{len(rows)} rows, {meta['n']} written")
    except (OSError, ValueError, UnicodeDecodeError, AttributeError) as e:
        _warn(f"{path}: damaged ({e}); evaluating {checkpoint}/{suite} again")
        return None
    return rows, int(meta.get("judge_failures", 0) or 0)


def _warn(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr, flush=True)


def _save(suite: Suite, rows: list[dict], out_dir: Path, checkpoint: str, key: str, judge_failures: int,
          judge_obj) -> None:
    if not _is_main():     # data-parallel: every rank holds the same rows, rank 0 writes them
        return
    path = samples_path(out_dir, checkpoint, suite.name)
    write_jsonl(path, rows)
    write_json(path.with_suffix(".meta.json"),
               {"key": key, "judge_failures": judge_failures, "n": len(rows), "sha256": file_sha256(path),
                "judge": judge_obj.describe() if (suite.judged and judge_obj) else None})


def _rejudge_failed(suite: Suite, rows: list[dict], judge_obj, out_dir: Path, checkpoint: str, key: str) -> int:
    """A re-run retries only the judgements that failed last time (answers are not regenerated)."""
    failed = [r for r in rows if r.get("judge_failed") or r.get("score") is None]
    try:
        still = judge_obj.judge_rows(_judge_task(suite), failed) if failed else 0
    except HarnessError:          # still failing everywhere: keep them counted as failures, never as 0
        still = len(failed)
    _save(suite, rows, out_dir, checkpoint, key, still, judge_obj)
    return still


def _rel(out_dir: Path, checkpoint: str, suite: str) -> str:
    return str(samples_path(out_dir, checkpoint, suite).relative_to(out_dir))


def _make_judge(judge, judge_kwargs):
    from harness.judges import Judge, load_judge

    if isinstance(judge, Judge):
        return judge
    return load_judge(judge or "rule", **(judge_kwargs or {}))


class _Progress:
    """rich progress bars for generation per lmms-eval task and for judging; silent when disabled."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.bars: dict[str, int] = {}

    def __enter__(self):
        if self.enabled:
            from harness.stages import bar_display
            self.progress = bar_display()
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)

    def update_task(self, name: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if name not in self.bars:
            self.bars[name] = self.progress.add_task(name.replace("harness_", ""), total=total)
        self.progress.update(self.bars[name], completed=done)

    def judge_callback(self, suite: str, total: int):
        if not self.enabled:
            return None
        return lambda done: self.update_task(f"judge {suite}", done, total)


def evaluate_cli(args) -> RunRecord:
    """`harness eval --model M [--adapter DIR] --suites LIST --out DIR [--judge J] [--limit N] [--batch-size B]`."""
    suites = resolve_suites(args.suites)
    world = suites[0].world
    from harness.api import DEFAULT_JUDGE
    judge = args.judge or DEFAULT_JUDGE[world]
    checkpoint = Path(args.adapter).name if args.adapter else "base"
    out = Path(args.out)
    record_path = out / "record.json"
    if record_path.exists() and _is_main():
        record_path.unlink()      # record.json present <=> the last evaluation in this directory finished
    engine = _engine_arg(args)
    t0 = time.time()
    results = evaluate_checkpoint(args.model, adapter=args.adapter, suites=suites, out_dir=out,
                                  checkpoint=checkpoint, judge=judge, batch_size=args.batch_size or 64,
                                  limit=args.limit, engine=engine)
    from harness.judges import load_judge
    judge_info = load_judge(judge).describe() if any(s.judged for s in suites) else None
    config = {"model": args.model, "adapter": args.adapter, "suites": [s.name for s in suites], "judge": judge_info,
              "limit": args.limit, "batch_size": args.batch_size or 64, "engine": engine}
    record = RunRecord(kind="eval", world=world, config=config, config_hash=stable_hash(config),
                       packages=package_versions(), git_commit=git_commit(), machine=machine_description(),
                       created=now_iso(), timings={"evaluate": round(time.time() - t0, 2)},
                       checkpoints={checkpoint: results},
                       checkpoint_paths={checkpoint: str(args.adapter or args.model)})
    if not _is_main():             # data-parallel: rank 0 writes the record
        return record
    record.save(record_path)
    print_record(record)
    return record


def print_record(record: RunRecord) -> None:
    try:
        from harness.tables import print_eval
    except ImportError:
        print_eval = None
    if print_eval is not None:
        print_eval(record)
        return
    from rich.console import Console
    from rich.table import Table

    for ck, suites in record.checkpoints.items():
        t = Table(title=f"{ck}: {record.config.get('model')}")
        for col in ("suite", "metric", "value", "95% CI", "n"):
            t.add_column(col)
        for name, r in suites.items():
            for m, v in r.metrics.items():
                t.add_row(name, m + (" *" if m == r.primary else ""), f"{v.value:.3f}",
                          f"[{v.ci[0]:.3f}, {v.ci[1]:.3f}]", str(v.n))
        Console().print(t)
