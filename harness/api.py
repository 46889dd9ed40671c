"""The run API: synthesize -> train -> evaluate base and aligned -> compare, each stage cached and resumable.

`run(...)`, `synth(...)` and `train(...)` return a RunRecord; `run_cli/synth_cli/train_cli(args)` are the
CLI glue (harness/cli.py). A run directory (docs/design.md) holds record.json, table.md,
samples/<checkpoint>/<suite>.jsonl, dataset/ (the TRL preference dataset + card), adapter/ (PEFT,
safetensors), train_log.json and stages/ (the cache: one directory per finished stage, each with a DONE marker
written last). Stage keys hash the config slice, the upstream stage keys, the models' content and the code
version, so a re-run after a kill resumes at the first unfinished stage, and re-running a finished run only
re-prints its table. The base model's evaluation is cached across runs (HARNESS_CACHE_DIR, default
~/.cache/harness): same base model + suites + eval settings + evaluation code -> same samples.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.config import parse_size, resolve, size_label, to_dict
from harness import parallel
from harness.errors import HarnessError
from harness.failures import ERROR_LOG, RUN_LOG, RunConsole, record_failures
from harness.io import cache_dir, ensure_writable_dir, stable_hash, write_text
from harness.record import RunRecord, git_commit, machine_description, now_iso, package_versions
from harness.stages import Stages, code_version

DEFAULT_SUITES = {"micro": ["micro-pope", "micro-amber", "micro-chair", "micro-mmhal", "micro-mmvet"],
                  "real": ["pope", "amber", "mmhal", "mmvet", "object-halbench"]}
DEFAULT_BASE = {"micro": "micro-llava", "real": "llava-hf/llava-1.5-7b-hf"}
# the judge of MMHal / MM-Vet: the micro world's rule judge, the real world's OpenAI-compatible judge
# (harness.judges.openai_judge: HARNESS_JUDGE_URL, HARNESS_JUDGE_MODEL, key in OPENAI_API_KEY)
DEFAULT_JUDGE = {"micro": "rule", "real": "openai"}


def eval_suites(world: str | None, suites: str | None) -> str:
    """`harness eval`'s suites: --suites (each of --world's world when both are given), else --world's defaults."""
    if not suites:
        if not world:
            raise HarnessError("harness eval needs --suites or --world (micro | real: that world's suites)")
        return ",".join(DEFAULT_SUITES[world])
    if world:
        from harness import registry
        for name in (s.strip() for s in suites.split(",") if s.strip()):
            if name in registry.names("suites") and registry.load("suites", name).world != world:
                raise HarnessError(f"suite {name!r} is not a {world}-world suite (--world {world})")
    return suites
EVAL_CODE = ("harness.evaluate", "harness.lmms_adapter", "harness.models.vlm", "harness.judges", "benchmarks",
             "harness.world")


@dataclass
class EvalSettings:
    batch_size: int = 64
    limit: int | None = None            # first N items per task (quick looks; records say so)
    engine: str = "hf"                  # hf | vllm | vllm:<url> | vllm-batch (harness.engines; docs/engines.md)

    def __post_init__(self):            # refused at resolve time (exit 2), not by lmms-eval mid-run
        from harness.engines import check_engine
        self.engine = check_engine(self.engine, "eval.engine")
        if self.engine.startswith("vllm:"):      # base and aligned are two checkpoints; a server serves one
            raise HarnessError(f"eval.engine={self.engine!r}: harness run evaluates two checkpoints, a running "
                               "server serves one; use eval.engine=vllm (each served here) or harness eval "
                               "--engine vllm:URL for one checkpoint")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"eval.limit must be a positive number of items (or null for all), got {self.limit}")
        if self.batch_size < 1:
            raise ValueError(f"eval.batch_size must be at least 1, got {self.batch_size}")


@dataclass
class RunSettings:
    method: str = "rm-dpo"
    size: int = 5000
    world: str = "micro"
    seed: int = 0
    base_model: str = ""                # default: micro-llava (micro) / llava-hf/llava-1.5-7b-hf (real)
    suites: list[str] = field(default_factory=list)   # default: the world's hallucination suites
    judge: str = ""                     # default: the world's judge (DEFAULT_JUDGE)
    eval: EvalSettings = field(default_factory=EvalSettings)
    threads: int = 1                    # torch threads per process (docs/micro-world.md)

    def __post_init__(self):
        self.base_model = self.base_model or DEFAULT_BASE.get(self.world, "")
        self.judge = self.judge or DEFAULT_JUDGE.get(self.world, "rule")
        self.suites = list(self.suites) or list(DEFAULT_SUITES.get(self.world, []))
        if self.seed < 0:                   # refused at resolve time (exit 2)
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


def _console(run_dir: Path | None = None):
    """The console on stderr; with a run directory, its messages are also appended to RUN_DIR/run.log."""
    from rich.console import Console
    screen = Console(stderr=True, quiet=bool(os.environ.get("HARNESS_QUIET")))
    return RunConsole(screen, run_dir / RUN_LOG) if run_dir is not None else screen


def _fingerprint(model: str) -> str:
    from pipelines.synth.models import fingerprint
    return fingerprint(model)


def prepare(method: str, size: str | int, world: str = "micro", out: str | Path | None = None,
            preset: str | Path | None = None, overrides: list[str] | dict | None = None,
            suites: list[str] | str | None = None):
    """Resolve a run spec -> (Method, RunSettings, method config, run dir, config dict, config hash)."""
    from harness import registry
    n = parse_size(size)
    m = registry.load("methods", method)
    m.check_world(world)
    over = overrides if isinstance(overrides, dict) else list(overrides or [])
    # the method's preset for this size, else its world's base preset (e.g. size 500); none is an error
    settings, cfg = resolve(m.config_cls, RunSettings, method, n, world, over,
                            preset or m.preset_for(size_label(n), world))
    if suites is not None:
        settings.suites = [s.strip() for s in (suites.split(",") if isinstance(suites, str) else suites) if s.strip()]
        if not settings.suites:
            raise HarnessError(f"--suites {suites!r} names no suite")
    _check_suites(settings.suites, world)
    if settings.judge not in registry.names("judges"):
        raise HarnessError(f"unknown judge {settings.judge!r} (known: {', '.join(sorted(registry.names('judges')))})")
    if any(registry.load("suites", s).judged for s in settings.suites):
        from harness.judges import load_judge
        load_judge(settings.judge)     # its settings (e.g. HARNESS_JUDGE_TIMEOUT) refused now, not after training
    check_model(settings.base_model)
    if m.check is not None:
        m.check(cfg, settings)
    parallel.check_batch(cfg)          # torchrun/accelerate: the DPO batch must split over the ranks
    config = {"run": to_dict(settings), "method": to_dict(cfg)}
    run_dir = Path(out) if out else Path("runs") / f"{method}-{size_label(n)}-{world}-s{settings.seed}"
    ensure_writable_dir(run_dir, "--out" if out else "run directory")
    return m, settings, cfg, run_dir, config, stable_hash(config)


def check_model(name: str) -> None:
    """A zoo name or a local checkpoint must exist before any work; a hub id (owner/name, no such local path) is
    fetched, or found in the cache when offline, by the stage that loads it."""
    if Path(name).exists() or name.count("/") != 1:
        from harness.models.vlm import resolve_checkpoint
        resolve_checkpoint(name)


def _check_suites(names: list[str], world: str) -> None:
    """Every suite known and of the run's world: caught here, not after synthesis and training."""
    from harness import registry
    known = registry.names("suites")
    for s in names:
        if s not in known:
            raise HarnessError(f"unknown suite {s!r} (known: {', '.join(sorted(known))})")
        suite_world = registry.load("suites", s).world
        if suite_world != world:
            raise HarnessError(f"suite {s!r} is a {suite_world}-world suite and this is a {world}-world run "
                               f"(micro and real numbers never share a run)")


def command_line(cmd: str, settings: RunSettings, preset=None, overrides=None, suites=None) -> str:
    """The `harness ...` command that reproduces a record (its --out left out)."""
    import shlex
    parts = ["harness", cmd, "--method", settings.method, "--size", size_label(settings.size)]
    if settings.world != "micro":
        parts += ["--world", settings.world]
    if suites:
        parts += ["--suites", suites if isinstance(suites, str) else ",".join(suites)]
    if preset:
        parts += ["--preset", str(preset)]
    if isinstance(overrides, dict):
        from harness.io import stable_hash as _h  # dict overrides come from Python, not a shell
        parts += [f"<overrides {_h(overrides)}>"]
    else:
        parts += list(overrides or [])
    return " ".join(shlex.quote(p) for p in parts)


def _base_record(settings: RunSettings, config: dict, config_hash: str) -> RunRecord:
    return RunRecord(kind="run", method=settings.method, size=settings.size, world=settings.world,
                     seed=settings.seed, config=config, config_hash=config_hash, packages=package_versions(),
                     git_commit=git_commit(), machine=machine_description(), created=now_iso())


def _stage_synth(m, settings, cfg, run_dir: Path, stages: Stages, console):
    inputs = {"method": m.name, "cfg": to_dict(cfg), "size": settings.size, "seed": settings.seed,
              "world": settings.world, "base": _fingerprint(settings.base_model), "code": m.code_version()}
    console.rule(f"[bold]synthesize[/] {m.name} {settings.world} {settings.size} pairs")
    st = stages.run("synth", inputs,
                    lambda d: m.build_pairs(cfg, settings, d, stages.sub("synth-parts")))
    _publish_dir(st.path / "dataset", run_dir / "dataset")
    return st


def _stage_train(m, settings, cfg, run_dir: Path, stages: Stages, synth, console):
    inputs = {"up": synth.key, "cfg": to_dict(cfg), "seed": settings.seed, **parallel.train_key(), "code": m.code_version()}
    key = stages.key("train", inputs)
    console.rule(f"[bold]train[/] {m.name}")
    st = stages.run("train", inputs,
                    lambda d: m.train(cfg, settings, synth.path / "dataset", d, stages.sub(f"train-parts/{key}")))
    _publish_dir(st.path / "adapter", run_dir / "adapter")
    if parallel.is_main():
        shutil.copyfile(st.path / "train_log.json", run_dir / "train_log.json")
    return st


def _publish_dir(src: Path, dst: Path) -> None:
    """Expose a stage's output at a stable run-directory path: a copy (a reflink where the filesystem can,
    sharing no writes), replaced atomically. Never hard links: damage to one name would be damage to both, the
    run directory's files and the verified cache's."""
    from harness.io import reflink_or_copy
    if not parallel.is_main():     # data-parallel: rank 0 writes the run directory
        return
    tmp = dst.parent / f".{dst.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, copy_function=reflink_or_copy)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)


def _evaluate(settings: RunSettings, stages: Stages, name: str, checkpoint: str, adapter: Path | None,
              extra_key: dict, console):
    """Evaluate one checkpoint as a stage; returns (StageResult, {suite: SuiteResult as dict})."""
    def do(d: Path):
        from harness.evaluate import evaluate_checkpoint
        # evaluate_checkpoint resumes per suite inside its own out_dir, so it works in a persistent sibling
        # directory (a kill mid-evaluation keeps the finished suites); the stage then takes a copy.
        work = stages.root / f".{name}-{stages.key(name, inputs)}.work"
        results = evaluate_checkpoint(settings.base_model, adapter=str(adapter) if adapter else None,
                                      suites=list(settings.suites), out_dir=str(work), checkpoint=checkpoint,
                                      judge=settings.judge, batch_size=settings.eval.batch_size,
                                      limit=settings.eval.limit, engine=settings.eval.engine, identity=identity)
        if parallel.is_main():         # rank 0 wrote the samples; a follower's copy would be discarded anyway
            shutil.copytree(work / "samples", d / "samples")
            shutil.rmtree(work, ignore_errors=True)
        return {s: dataclasses.asdict(r) for s, r in results.items()}
    from harness.evaluate import eval_identity
    # the data's content (a manifest per suite) and the judge's identity (model, endpoint, template), not just
    # their names: a changed ground truth or judge model is a new evaluation, never the cached one
    identity = eval_identity(settings.suites, settings.judge)
    inputs = {"model": _fingerprint(settings.base_model), "suites": sorted(settings.suites),
              "judge": settings.judge, "eval": to_dict(settings.eval), "checkpoint": checkpoint,
              "code": code_version(*EVAL_CODE), "data": identity["data"], "judge_identity": identity["judge"],
              **extra_key}
    console.rule(f"[bold]evaluate[/] {checkpoint} on {', '.join(settings.suites)}")
    return stages.run(name, inputs, do)


def _suite_results(output: dict) -> dict:
    from harness.record import MetricValue, SuiteResult
    return {s: SuiteResult(**{**r, "metrics": {k: MetricValue(**v) for k, v in r["metrics"].items()}})
            for s, r in output.items()}


def _copy_samples(src_dir: Path, run_dir: Path, checkpoint: str) -> None:
    src = src_dir / "samples" / checkpoint
    if src.is_dir():
        _publish_dir(src, run_dir / "samples" / checkpoint)


def _timings(*stage_results) -> dict[str, float]:
    out: dict[str, float] = {}
    for st in stage_results:
        parts = (st.output or {}).get("timings") if isinstance(st.output, dict) else None
        if parts:
            out.update({f"{st.name}.{k}": round(float(v), 2) for k, v in parts.items()})
        out[st.name] = round(st.seconds, 2)
    return out


def run(method: str = "rm-dpo", size: str | int = "5k", world: str = "micro", out: str | Path | None = None,
        preset: str | Path | None = None, overrides: list[str] | dict | None = None,
        suites: list[str] | str | None = None, publish: bool = False, quiet: bool = False) -> RunRecord:
    """synthesize -> train -> evaluate base (cached across runs) and aligned -> compare -> record + table.

    Bad input raises HarnessError before anything is written; a failure after that raises RunFailed, leaving
    error.log and an error record.json in the run directory (harness/failures.py)."""
    m, settings, cfg, run_dir, config, chash = prepare(method, size, world, out, preset, overrides, suites)
    if world == "real":                # data prepared, judge answering: checked before a night of synthesis
        from harness.dryrun import preflight
        preflight(settings, cfg)
    ensure_writable_dir(cache_dir(), "HARNESS_CACHE_DIR")
    console = _console(run_dir)
    record_path = run_dir / "record.json"
    if record_path.is_file():
        rec = RunRecord.load(record_path)
        if rec.config_hash == chash and rec.kind == "run" and rec.status == "ok":
            console.print(f"[dim]{run_dir}: finished run, re-printing its table[/]")
            _print_table(rec, quiet)
            return rec
    command = command_line("run", settings, preset, overrides, suites)
    with _failures(run_dir, settings, config, chash, "run", command, console) as at:
        rec = _run_stages(m, settings, cfg, run_dir, config, chash, console, at)
        if rec is None:                # a data-parallel rank other than 0: rank 0 records and prints
            return None
        rec.command = command
        at.stage = "record"
        _finish(rec, run_dir, quiet=True)
    _print_table(rec, quiet)           # outside: a display problem must not turn a saved record into an error one
    if publish:
        from harness.leaderboard import publish as publish_run
        publish_run(str(run_dir), None)
    return rec


def _failures(run_dir: Path, settings: RunSettings, config: dict, chash: str, kind: str, command: str,
              console) -> record_failures:
    """The failure recorder of one invocation (see harness/failures.py); it also starts run.log's entry."""
    console.log_line(f"--- {now_iso()} {command} (git {git_commit()})")

    def error_record() -> RunRecord:
        rec = _base_record(settings, config, chash)
        rec.kind, rec.command = kind, command
        return rec
    return record_failures(run_dir, error_record, console)


def _run_stages(m, settings: RunSettings, cfg, run_dir: Path, config: dict, chash: str, console,
                at: record_failures) -> RunRecord:
    """The stages of `harness run`; `at.stage` names the one running (for the error record)."""
    from harness import registry
    _threads(settings.threads)
    stages = Stages(run_dir / "stages", log=console.print)
    t0 = time.perf_counter()
    at.stage = "synth"
    st_s = _stage_synth(m, settings, cfg, run_dir, stages, console)
    at.stage = "train"
    st_t = _stage_train(m, settings, cfg, run_dir, stages, st_s, console)
    at.stage = "eval-base"
    base_stages = Stages(cache_dir() / "base-eval", log=console.print)
    st_b = _evaluate(settings, base_stages, "eval-base", "base", None, {}, console)
    _copy_samples(st_b.path, run_dir, "base")
    at.stage = "eval-aligned"
    st_a = _evaluate(settings, stages, "eval-aligned", "aligned", st_t.path / "adapter", {"up": st_t.key}, console)
    _copy_samples(st_a.path, run_dir, "aligned")
    if not parallel.is_main():         # the ranks' work is done; rank 0 compares, records and prints
        return None

    at.stage = "compare"
    t_cmp = time.perf_counter()
    from harness.compare import compare_suite, same_inputs
    from harness.evaluate import load_samples
    rec = _base_record(settings, config, chash)
    rec.checkpoints = {"base": _suite_results(st_b.output), "aligned": _suite_results(st_a.output)}
    rec.checkpoint_paths = {"base": settings.base_model, "aligned": "adapter"}
    for s in settings.suites:
        suite = registry.load("suites", s)
        same_inputs(s, rec.checkpoints["base"][s], rec.checkpoints["aligned"][s])
        rec.comparisons[s] = compare_suite(suite, load_samples(run_dir, "base", s), load_samples(run_dir, "aligned", s),
                                           seed=settings.seed)
    rec.timings = _timings(st_s, st_t, st_b, st_a)
    rec.timings["compare"] = round(time.perf_counter() - t_cmp, 2)
    rec.timings["total_this_invocation"] = round(time.perf_counter() - t0, 2)
    return rec


def _finish(rec: RunRecord, run_dir: Path, quiet: bool) -> None:
    from harness.tables import before_after_markdown
    write_text(run_dir / "table.md", before_after_markdown(rec))
    rec.save(run_dir / "record.json")      # last: its presence marks the run finished
    (run_dir / ERROR_LOG).unlink(missing_ok=True)   # an earlier attempt's traceback (run.log keeps its message)
    _print_table(rec, quiet)


def _print_table(rec: RunRecord, quiet: bool) -> None:
    if quiet or os.environ.get("HARNESS_QUIET"):
        return
    from harness.tables import print_before_after
    print_before_after(rec)
    print_timings(rec)


def print_timings(rec: RunRecord) -> None:
    """Wall seconds per stage (as computed; a cached stage shows the time it took when it ran)."""
    if os.environ.get("HARNESS_QUIET") or not rec.timings:
        return
    from rich.table import Table
    t = Table(title="stage wall times (s)", show_header=True)
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    for k, v in rec.timings.items():
        t.add_row(k, f"{v:.1f}")
    _console().print(t)


def _threads(n: int) -> None:
    import torch
    torch.set_num_threads(max(1, int(n)))


def synth(method: str = "rm-dpo", size: str | int = "5k", world: str = "micro", out: str | Path | None = None,
          preset: str | Path | None = None, overrides: list[str] | dict | None = None) -> RunRecord:
    """Build (or reuse) the preference dataset only; the record holds its timings, the card is dataset/README.md."""
    rec, (st,), run_dir, console = _first_stages("synth", method, size, world, out, preset, overrides)
    if not parallel.is_main():
        return None
    print_timings(rec)
    console.print(f"dataset: {run_dir / 'dataset'} ({st.output.get('pairs')} pairs; card: dataset/README.md)")
    return rec


def train(method: str = "rm-dpo", size: str | int = "5k", world: str = "micro", out: str | Path | None = None,
          preset: str | Path | None = None, overrides: list[str] | dict | None = None) -> RunRecord:
    """Synthesize (cached) and train the adapter only."""
    rec, _, run_dir, console = _first_stages("train", method, size, world, out, preset, overrides)
    if not parallel.is_main():
        return None
    rec.checkpoint_paths = {"base": rec.config["run"]["base_model"], "aligned": "adapter"}
    print_timings(rec)
    console.print(f"adapter: {run_dir / 'adapter'}; training log: {run_dir / 'train_log.json'}")
    return rec


def _first_stages(cmd: str, method, size, world, out, preset, overrides):
    """`harness synth` (synthesis) / `harness train` (synthesis, training) -> (record, stages, run dir, console);
    a failure is recorded like a run's (harness/failures.py)."""
    m, settings, cfg, run_dir, config, chash = prepare(method, size, world, out, preset, overrides)
    console = _console(run_dir)
    done = []
    with _failures(run_dir, settings, config, chash, cmd, command_line(cmd, settings, preset, overrides),
                   console) as at:
        _threads(settings.threads)
        stages = Stages(run_dir / "stages", log=console.print)
        at.stage = "synth"
        done.append(_stage_synth(m, settings, cfg, run_dir, stages, console))
        if cmd == "train":
            at.stage = "train"
            done.append(_stage_train(m, settings, cfg, run_dir, stages, done[0], console))
    rec = _base_record(settings, config, chash)
    rec.kind = cmd
    rec.timings = _timings(*done)
    return rec, done, run_dir, console


# ---------------------------------------------------------------- CLI glue

def _sizes(text: str) -> list[str]:
    sizes = [s.strip() for s in str(text).split(",") if s.strip()]
    if not sizes:
        raise HarnessError(f"malformed size {text!r}")
    for s in sizes:
        parse_size(s)                   # validate every size before any work
    return sizes


def _sweep_out(args, size: str, many: bool):
    if not args.out:
        return None
    return Path(args.out) / size_label(parse_size(size)) if many else Path(args.out)


def run_cli(args) -> list[RunRecord]:
    sizes = _sizes(args.size)
    return [run(args.method, s, args.world, _sweep_out(args, s, len(sizes) > 1), args.preset, args.overrides,
                getattr(args, "suites", None), getattr(args, "publish", False)) for s in sizes]


def synth_cli(args) -> list[RunRecord]:
    sizes = _sizes(args.size)
    return [synth(args.method, s, args.world, _sweep_out(args, s, len(sizes) > 1), args.preset, args.overrides)
            for s in sizes]


def train_cli(args) -> list[RunRecord]:
    sizes = _sizes(args.size)
    return [train(args.method, s, args.world, _sweep_out(args, s, len(sizes) > 1), args.preset, args.overrides)
            for s in sizes]
