"""Where vLLM's time goes on the micro world: one `LLM.generate` of the micro-CHAIR prompts, profiled.

    python -m benchmarks.vllm_profile                       # micro-llava, 256 prompts (micro-CHAIR has 250)
    python -m benchmarks.vllm_profile --model micro-responder-a --llm-kwargs '{}'   # vLLM's defaults, caches on

The harness side (this environment) renders the prompts exactly as the `vllm-batch` engine does (vlm.chat_prompt,
image files by path) and prepares the served copy; a script in the vLLM environment then builds the engine in its
own process (VLLM_ENABLE_V1_MULTIPROCESSING=0, so cProfile sees the scheduler, the model runner and the output
handling, which normally run in a second process), times three calls without the profiler, profiles a fourth
and prints the seconds of each part. In one process the input processing no longer overlaps the engine's steps,
and cProfile slows Python code more than kernels: read the shares, not the absolute times. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.perf import NO_CACHE

# (label, file suffix, function) of vLLM 0.32.0's offline path, in the order a step runs them
PARTS = [("whole LLM.generate", "entrypoints/llm.py", "generate"),
         ("  input processing (images, prompts)", "entrypoints/common/offline.py", "_add_completion_requests"),
         ("  engine steps", "v1/engine/llm_engine.py", "step"),
         ("    scheduler: schedule", "v1/core/sched/scheduler.py", "schedule"),
         ("    model runner: execute_model", "v1/worker/gpu_model_runner.py", "execute_model"),
         ("      the model's forward", "v1/worker/gpu_model_runner.py", "_model_forward"),
         ("    scheduler: update_from_output", "v1/core/sched/scheduler.py", "update_from_output")]

PROFILER = r'''
import cProfile, json, pstats, sys, time


def main():
    from PIL import Image
    from vllm import LLM, SamplingParams
    model, requests, kwargs, parts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    items = [json.loads(line) for line in open(requests)]
    inputs = [{"prompt": it["prompt"], "multi_modal_data": {"image": Image.open(it["image_path"]).convert("RGB")}}
              for it in items]
    llm = LLM(model=model, dtype="float32", seed=0, **kwargs)
    params = SamplingParams(max_tokens=40, temperature=0.0, skip_special_tokens=True)
    llm.generate(inputs[:4], params, use_tqdm=False)
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = llm.generate(inputs, params, use_tqdm=False)
        times.append(time.perf_counter() - t0)
    prof = cProfile.Profile()
    prof.enable()
    llm.generate(inputs, params, use_tqdm=False)
    prof.disable()
    stats = pstats.Stats(prof).stats
    rows = []
    for label, suffix, func in parts:
        # pstats: (primitive calls, calls, own seconds, cumulative seconds, callers)
        hits = [(v[1], v[3]) for (f, _, name), v in stats.items() if f.endswith(suffix) and name == func]
        rows.append([label, sum(h[1] for h in hits), sum(h[0] for h in hits)])
    print(json.dumps({"times": times, "tokens": sum(len(o.outputs[0].token_ids) for o in out), "n": len(out),
                      "rows": rows}), flush=True)


if __name__ == "__main__":
    main()
'''


def _requests(model: str, prompts: int, path: Path) -> Path:
    """The vllm-batch engine's requests for the first `prompts` micro-CHAIR documents (greedy, 40 tokens)."""
    from transformers import AutoProcessor

    from benchmarks.micro_data import build_micro_tasks
    from harness.engines import vllm as V
    from harness.engines.serve import _cache, _identity
    from harness.models.vlm import chat_prompt
    served = V.prepare_checkpoint(model, None, _cache() / _identity(model, None))
    processor = AutoProcessor.from_pretrained(str(served))
    root = build_micro_tasks()
    docs = [json.loads(line) for line in (root / "data" / "chair.jsonl").read_text().splitlines()][:prompts]
    with open(path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps({"prompt": chat_prompt(processor, d["question"]),
                                "image_path": str((root / d["image"]).resolve())}) + "\n")
    return served


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.vllm_profile", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="micro-llava")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--llm-kwargs", default=json.dumps(NO_CACHE),
                    help="JSON: keyword arguments for vllm.LLM (default: no prefix or image-processor cache, which "
                         "the repeated calls would hit; '{}' for vLLM's defaults)")
    args = ap.parse_args(argv)
    from harness.engines.vllm import vllm_python
    work = Path(tempfile.mkdtemp(prefix="harness-vllm-profile-"))
    served = _requests(args.model, args.prompts, work / "requests.jsonl")
    (work / "profile_worker.py").write_text(PROFILER)
    env = {**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
           "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    p = subprocess.run([vllm_python(), str(work / "profile_worker.py"), str(served), str(work / "requests.jsonl"),
                        args.llm_kwargs, json.dumps([list(x) for x in PARTS])], env=env, cwd=work,
                       capture_output=True, text=True)
    if p.returncode:
        print(p.stderr[-3000:], file=sys.stderr)
        return 1
    res = json.loads(p.stdout.strip().splitlines()[-1])
    times = sorted(res["times"])
    print(f"{args.model}: {res['n']} prompts, {res['tokens']} new tokens; LLM.generate without the profiler "
          f"{times[1]:.3f} s (median of 3: {res['n'] / times[1]:.0f} prompts/s, engine in this process)")
    whole = res["rows"][0][1]
    for label, seconds, calls in res["rows"]:
        print(f"{label:<40} {seconds:7.3f} s  {100 * seconds / whole:5.1f} %  ({calls} calls)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
