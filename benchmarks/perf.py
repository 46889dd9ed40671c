"""Performance, side by side: what the harness's engines buy against what a user would run instead.

    python -m benchmarks.perf                       # every section, small sizes
    python -m benchmarks.perf --only vllm --prompts 256
    python -m benchmarks.perf --only lmms,dp --items 200 --pairs 100
    python -m benchmarks.perf --only run --size 2k  # the whole run with each engine (~15 min here)

Sections (each prints its own rows; the summary prints every ratio in one table at the end):
- `lmms`: `harness eval` vs lmms-eval's stock `llava_hf` model on micro-POPE (same task, same checkpoint, the
  first --items documents), wall time of the whole command each, and how many answers agree. `llava_hf` refuses
  batch sizes above 1 and imports `decord` (video decoding; not in the lock, never used for images): the
  benchmark gives it a stand-in module.
- `vllm`: vLLM's server (engine `vllm`), then its offline batch engine (engine `vllm-batch`), each alive alone,
  vs HF `generate` at batch 1 and batched, on --prompts micro-CHAIR descriptions (40 new tokens, greedy, fp32)
  for the evaluated checkpoint (micro-llava) and, offline engine only, the two micro responders,
  one compute thread each (vLLM's CPU engine binds one OpenMP thread on 2 cores), --repeats alternating rounds
  (medians): prompts/s after start-up, with start-up, start-up apart, and greedy agreement with HF.
- `dp`: 2 processes (torchrun-style ranks, gloo) vs 1 for synthesis (`harness synth --size --pairs`), evaluation
  (`harness eval --limit --items`) and DPO (`harness train`, the same dataset): each stage's wall time from its
  record, and whether the outputs are the same (dataset bytes, samples bytes).
- `run`: the whole `harness run --method rm-dpo --size SIZE` once per --engines setting (HF everywhere; vLLM
  for evaluation; vLLM for the responders), each on an empty cache, and how many metric values equal HF's.
Not a test: numbers depend on the machine and its load; README quotes what was measured, with the command.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS: list[tuple[str, str, float, float]] = []      # (what, against, ours, theirs) -> ratio theirs/ours
NO_CACHE = {"enable_prefix_caching": False, "mm_processor_cache_gb": 0}     # vllm.LLM keyword arguments


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _env(cache: Path, **extra) -> dict:
    env = {**os.environ, "HARNESS_CACHE_DIR": str(cache), "HARNESS_QUIET": "1", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", **extra}
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    return env


def _run(cmd: list[str], env: dict, world: int = 1) -> float:
    """Wall seconds of `python -m harness.cli ...` in `world` torchrun-style ranks; failure stops the benchmark."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "harness.cli", *cmd], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**env, **({"RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(world),
                                              "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
                                             if world > 1 else {})}) for r in range(world)]
    outs = [p.communicate() for p in procs]
    wall = time.perf_counter() - t0
    for p, (_, err) in zip(procs, outs):
        if p.returncode:
            raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{err[-3000:]}")
    return wall


def _record(run_dir: Path) -> dict:
    return json.loads((run_dir / "record.json").read_text())


def _stage_seconds(run_dir: Path, stage: str) -> float:
    """Wall seconds of a finished stage, from its DONE marker (harness.stages)."""
    done = sorted((run_dir / "stages").glob(f"{stage}-*/DONE"))
    return json.loads(done[-1].read_text())["seconds"] if done else float("nan")


# ------------------------------------------------------------------ harness eval vs lmms-eval llava_hf

def _stock_llava_hf(model_dir: Path, include: str, limit: int, out: Path) -> list[str]:
    """lmms-eval's own `llava_hf` model on harness_micro_pope, in this process, batch 1 (all it allows)."""
    sys.modules.setdefault("decord", types.SimpleNamespace(VideoReader=None, cpu=None, __name__="decord"))
    import torch
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    res = simple_evaluate(model="llava_hf", model_args=f"pretrained={model_dir},device_map=cpu,dtype=float32",
                          tasks=["harness_micro_pope"], task_manager=TaskManager(include_path=include,
                                                                                 include_defaults=False),
                          limit=limit, batch_size=1, log_samples=True, bootstrap_iters=0, device="cpu")
    seconds = time.perf_counter() - t0
    rows = sorted(res["samples"]["harness_micro_pope"], key=lambda s: s["doc_id"])
    return seconds, [(r["resps"][0][0] if isinstance(r["resps"][0], list) else r["resps"][0]) for r in rows]


def bench_lmms(items: int, work: Path) -> None:
    from benchmarks.micro_data import build_micro_tasks
    from harness.evaluate import load_samples
    from harness.models.vlm import resolve_checkpoint
    _say(f"[lmms] harness eval vs lmms-eval llava_hf, micro-POPE, {items} items")
    env = _env(work / "cache-lmms")
    ours = _run(["eval", "--model", "micro-llava", "--suites", "micro-pope", "--limit", str(items),
                 "--out", str(work / "eval-ours"), "--batch-size", "64"], env)
    code = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r}); from benchmarks.perf import _stock_llava_hf; "
            f"from pathlib import Path; print(json.dumps(_stock_llava_hf(Path({str(resolve_checkpoint('micro-llava'))!r}), "
            f"{str(build_micro_tasks())!r}, {items}, Path('.'))))")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    theirs = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"lmms-eval llava_hf failed:\n{p.stderr[-3000:]}")
    stock_eval, stock = json.loads(p.stdout.strip().splitlines()[-1])
    our_eval = _record(work / "eval-ours")["timings"]["evaluate"]
    mine = [r.get("prediction", r.get("response", "")) for r in load_samples(work / "eval-ours", "base", "micro-pope")]
    same = sum(a.strip() == b.strip() for a, b in zip(mine, stock))
    _say(f"  harness eval {ours:.1f} s (evaluation {our_eval:.1f} s), lmms-eval llava_hf {theirs:.1f} s "
         f"(simple_evaluate {stock_eval:.1f} s); {same}/{len(stock)} answers identical")
    RESULTS.append((f"harness eval, micro-POPE {items} items, whole command", "lmms-eval llava_hf (batch 1)",
                    ours, theirs))
    RESULTS.append((f"  evaluation alone ({same}/{len(stock)} same answers)", "simple_evaluate alone",
                    our_eval, stock_eval))


# ------------------------------------------------------------------ vLLM vs HF generate

def _chair_prompts(n: int):
    from PIL import Image

    from benchmarks.micro_data import build_micro_tasks
    root = build_micro_tasks()
    docs = [json.loads(line) for line in (root / "data" / "chair.jsonl").read_text().splitlines()][:n]
    images = []
    for d in docs:
        with Image.open(root / d["image"]) as im:
            images.append(im.convert("RGB"))
    return images, [d["question"] for d in docs]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _alternate(runs: dict, repeats: int, engine=None) -> tuple[dict, dict]:
    """`repeats` rounds of every run in turn -> ({name: [seconds]}, {name: round 1's texts}); with the offline
    engine, its time inside LLM.generate is kept too (under "inside LLM.generate")."""
    seconds, texts = {k: [] for k in runs}, {}
    for r in range(repeats):
        for name, fn in runs.items():
            t, out = _timed(fn)
            seconds[name].append(t)
            texts.setdefault(name, out)
            if out != texts[name]:
                _say(f"  note: {name} round {r + 1} differs from its round 1")
        if getattr(engine, "last_generate_seconds", None) is not None:
            seconds.setdefault("inside LLM.generate", []).append(engine.last_generate_seconds)
        _say(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in seconds.items()))
    return seconds, texts


@contextlib.contextmanager
def _no_vllm_cache():
    """Every round asks the same prompts: vLLM's prefix and image-processor caches would answer rounds 2 and 3
    from round 1 (micro-llava offline, one process: 477 prompts/s with them, 344 without:
    benchmarks.vllm_profile), which a run over new items never gets; so the engines started here go without
    them, unless HARNESS_VLLM_LLM_KWARGS / HARNESS_VLLM_ARGS say otherwise."""
    from harness.io import environ_set
    with environ_set({"HARNESS_VLLM_LLM_KWARGS": os.environ.get("HARNESS_VLLM_LLM_KWARGS", json.dumps(NO_CACHE)),
                      "HARNESS_VLLM_ARGS": os.environ.get("HARNESS_VLLM_ARGS",
                                                          "--no-enable-prefix-caching --mm-processor-cache-gb 0")}):
        yield


def bench_vllm(prompts: int, batch: int, work: Path, repeats: int = 3,
               models: tuple[str, ...] = ("micro-llava", "micro-responder-a", "micro-responder-b")) -> None:
    """HF batch 1 and batched against vLLM's server, then against its offline batch engine, on the same prompts:
    one vLLM engine alive at a time (two engines pinned to the same core slow each other down), `repeats`
    alternating rounds with HF each (the machine is shared: medians), start-up apart, greedy agreement with HF.
    The first model (by default the evaluated checkpoint, micro-llava) gets both engines; the others (by default
    the responders, whose head sizes vLLM serves padded: harness.engines.vllm.pad_heads) the offline engine.
    vLLM's CPU engine computes on one OpenMP thread (VLLM_CPU_OMP_THREADS_BIND=auto on 2 cores binds it to core
    0; the server's front-end process has core 1, the offline worker runs the engine in its own process:
    docs/engines.md), HF on one torch thread."""
    import torch

    from harness.engines import batch as B
    from harness.engines import vllm as V
    from harness.engines.serve import _cache, _identity
    from harness.models.vlm import generate, load_vlm
    os.environ.setdefault("HARNESS_CACHE_DIR", str(work / "cache-vllm"))
    images, questions = _chair_prompts(prompts)
    n = len(questions)
    torch.set_num_threads(1)
    for model_name in models:
        load_hf, (model, processor) = _timed(lambda m=model_name: load_vlm(m))
        ckpt = V.prepare_checkpoint(model_name, None, _cache() / _identity(model_name, None))
        hf_runs = {"HF batch 1": lambda: generate(model, processor, images, questions, max_new_tokens=40,
                                                  batch_size=1),
                   f"HF batch {batch}": lambda: generate(model, processor, images, questions, max_new_tokens=40,
                                                         batch_size=batch)}
        _say(f"[vllm] {model_name}: {n} prompts x 40 new tokens, greedy, fp32, 1 thread each, {repeats} "
             f"alternating rounds; HF load {load_hf:.1f} s")
        engines = [("vLLM offline batch", lambda: B.Offline(ckpt, log=work / f"{model_name}-batch.log"))]
        if model_name == models[0]:
            engines.insert(0, ("vLLM server", lambda: V.Server(ckpt, log=work / "vllm-server.log")))
        for name, make in engines:
            with _no_vllm_cache():
                engine = make()
            start, _ = _timed(engine.__enter__)
            try:
                target = engine.url if name == "vLLM server" else engine
                _say(f"  {name}: start-up {start:.0f} s")
                V.generate(target, "harness", images[:4], questions[:4], max_new_tokens=40)      # warm-up
                seconds, texts = _alternate({**hf_runs, name: lambda t=target: V.generate(
                    t, "harness", images, questions, max_new_tokens=40, concurrency=n)}, repeats, engine)
            finally:
                engine.stop()
            _report_vllm(model_name, name, n, batch, {k: statistics.median(v) for k, v in seconds.items()}, texts,
                         start, load_hf)


def _report_vllm(model: str, name: str, n: int, batch: int, med: dict, texts: dict, start: float,
                 load_hf: float) -> None:
    """One engine's rounds (medians `med`, round 1's `texts`) against HF's, printed and added to RESULTS."""
    hf1, hfb = texts["HF batch 1"], texts[f"HF batch {batch}"]
    _say("  prompts/s (median): " + ", ".join(f"{k} {n / v:.1f}" for k, v in med.items()))
    same1, sameb = sum(a == b for a, b in zip(texts[name], hf1)), sum(a == b for a, b in zip(texts[name], hfb))
    rate, rate_hf = n / med[name], n / med[f"HF batch {batch}"]
    whole = (load_hf + med[f"HF batch {batch}"]) / (start + med[name])
    even = (start - load_hf) / (1 / rate_hf - 1 / rate) if rate > rate_hf else float("inf")
    _say(f"  {name}: {rate / rate_hf:.2f}x HF batch {batch} after start-up, {whole:.2f}x with start-up "
         f"({start:.0f} s vs HF load {load_hf:.1f} s; break-even at {even:.0f} prompts); greedy identical to HF: "
         f"{same1}/{n} (batch 1), {sameb}/{n} (batch {batch})")
    RESULTS.append((f"{model} {name} ({sameb}/{n} = HF greedy)", f"HF generate batch {batch}", med[name],
                    med[f"HF batch {batch}"]))
    RESULTS.append((f"{model} {name} ({same1}/{n} = HF greedy)", "HF generate batch 1", med[name],
                    med["HF batch 1"]))
    RESULTS.append((f"{model} {name}: start-up + {n} prompts", f"HF load + batch {batch}", start + med[name],
                    load_hf + med[f"HF batch {batch}"]))


# ------------------------------------------------------------------ 2 processes vs 1

def bench_dp(pairs: int, items: int, work: Path) -> None:
    tiny = ["synth.responders.workers=1", "synth.response_reward.workers=1", "rounds=1"]
    _say(f"[dp] 2 ranks vs 1: synth {pairs} pairs, eval {items} items per suite, DPO on the same dataset")
    walls = {}
    for world in (1, 2):
        env = _env(work / f"cache-dp{world}")
        out = work / f"dp{world}"
        walls[("synth", world)] = _run(["synth", "--method", "rm-dpo", "--size", str(pairs), "--out", str(out), *tiny],
                                       env, world)
        walls[("train", world)] = _run(["train", "--method", "rm-dpo", "--size", str(pairs), "--out", str(out), *tiny],
                                       env, world)
        walls[("eval", world)] = _run(["eval", "--model", "micro-llava", "--suites", "micro-pope,micro-chair",
                                       "--limit", str(items), "--out", str(work / f"dp{world}-eval")], env, world)
    same_data = all(f.read_bytes() == (work / "dp2" / "dataset" / f.name).read_bytes()
                    for f in (work / "dp1" / "dataset").glob("*.arrow"))
    same_samples = all(f.read_bytes() == (work / "dp2-eval" / f.relative_to(work / "dp1-eval")).read_bytes()
                       for f in (work / "dp1-eval" / "samples").rglob("*.jsonl"))
    t1, t2 = (_stage_seconds(work / "dp1", "train"), _stage_seconds(work / "dp2", "train"))
    _say(f"  whole commands: synth {walls[('synth', 1)]:.0f} s -> {walls[('synth', 2)]:.0f} s (same dataset: {same_data}); "
         f"DPO stage {t1:.0f} s -> {t2:.0f} s; eval "
         f"{walls[('eval', 1)]:.0f} s -> {walls[('eval', 2)]:.0f} s (same samples: {same_samples})")
    s1, s2 = _stage_seconds(work / "dp1", "synth"), _stage_seconds(work / "dp2", "synth")
    e1, e2 = (_record(work / f"dp{w}-eval")["timings"]["evaluate"] for w in (1, 2))
    RESULTS.append((f"synth stage {pairs} pairs, 2 ranks (same dataset: {same_data})", "1 process", s2, s1))
    RESULTS.append(("DPO stage, 2 ranks DDP (same batch per step)", "1 process", t2, t1))
    RESULTS.append((f"evaluation 2 suites x {items}, 2 ranks (same samples: {same_samples})", "1 process", e2, e1))


# ------------------------------------------------------------------ the whole run, per engine

RUN_ENGINES = {"hf": [], "eval vllm-batch": ["eval.engine=vllm-batch"],
               "responders vllm-batch": ["synth.responders.engine=vllm-batch"]}


def _metric_values(record: dict) -> dict:
    return {(ck, suite, m): v["value"] for ck, suites in record["checkpoints"].items()
            for suite, res in suites.items() for m, v in res["metrics"].items()}


def bench_run(size: str, work: Path, engines: list[str]) -> None:
    """`harness run --method rm-dpo --size SIZE` once per engine setting, each on an empty cache: wall time of the
    whole command, its stages (record timings), and how many metric values equal the `hf` run's (sampled
    responders through vLLM draw another random stream, so their dataset and numbers differ by design)."""
    base = None
    for name in engines:
        _say(f"[run] harness run --method rm-dpo --size {size} {' '.join(RUN_ENGINES[name])} (empty cache)")
        out = work / f"run-{name.replace(' ', '-')}"
        wall = _run(["run", "--method", "rm-dpo", "--size", size, "--out", str(out), *RUN_ENGINES[name]],
                    _env(work / f"cache-run-{name.replace(' ', '-')}"))
        rec = _record(out)
        values, t = _metric_values(rec), rec["timings"]
        stages = ", ".join(f"{k} {t[k]:.0f} s" for k in ("synth", "train", "eval-base", "eval-aligned") if k in t)
        if base is None:
            base = (wall, values)
            _say(f"  {wall:.0f} s ({stages})")
            continue
        same = sum(values.get(k) == v for k, v in base[1].items())
        _say(f"  {wall:.0f} s ({stages}); {same}/{len(base[1])} metric values equal the hf run's")
        RESULTS.append((f"harness run {size}, {name} ({same}/{len(base[1])} values = hf)", "the same run, hf",
                        wall, base[0]))


def summary() -> None:
    from rich.console import Console
    from rich.table import Table
    t = Table(title="benchmarks.perf: seconds and speed-up (theirs / ours)")
    for col in ("ours", "seconds", "against", "seconds", "speed-up"):
        t.add_column(col)
    for what, against, ours, theirs in RESULTS:
        ratio = theirs / ours if ours and theirs == theirs else float("nan")
        t.add_row(what, f"{ours:.1f}", against, f"{theirs:.1f}", f"{ratio:.2f}x")
    Console(width=200).print(t)      # not wrapped when piped to a file
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="lmms,vllm,dp", help="comma-separated sections: lmms, vllm, dp, run")
    ap.add_argument("--items", type=int, default=100, help="items per suite for the evaluation comparisons")
    ap.add_argument("--prompts", type=int, default=64, help="prompts for vLLM vs HF generate")
    ap.add_argument("--batch", type=int, default=64, help="HF generate batch size for the batched comparison")
    ap.add_argument("--models", default="micro-llava,micro-responder-a,micro-responder-b",
                    help="checkpoints of the vllm section (the first also gets the server engine)")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds of the vLLM/HF comparison (medians)")
    ap.add_argument("--pairs", type=int, default=100, help="preference pairs for the 2-vs-1-process synthesis")
    ap.add_argument("--size", default="2k", help="pairs for the whole-run section")
    ap.add_argument("--engines", default=",".join(RUN_ENGINES),
                    help=f"engine settings for the whole-run section (first = the reference): {', '.join(RUN_ENGINES)}")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - {"lmms", "vllm", "dp", "run"}
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="harness-perf-"))
    work.mkdir(parents=True, exist_ok=True)
    if "lmms" in sections:
        bench_lmms(args.items, work)
    if "vllm" in sections:
        bench_vllm(args.prompts, args.batch, work, args.repeats, tuple(m.strip() for m in args.models.split(",")))
    if "dp" in sections:
        bench_dp(args.pairs, args.items, work)
    if "run" in sections:
        engines = [e.strip() for e in args.engines.split(",") if e.strip()]
        if not engines or set(engines) - set(RUN_ENGINES):
            ap.error(f"--engines: choose from {', '.join(RUN_ENGINES)}")
        bench_run(args.size, work, engines)
    summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
