"""vLLM's offline `LLM.generate`, run by harness.engines.batch inside the vLLM environment (.venv-vllm).

A standalone script: it imports vLLM, the standard library and PIL only — never `harness`, whose pins
(transformers 5.24) differ from vLLM's (docs/engines.md). Protocol, one JSON object per line:

- started as `python vllm_batch_worker.py --model DIR [--dtype float32] [--seed 0] [--llm-kwargs JSON]`;
  it builds the engine once and writes `{"ready": true, "seconds": S}` on its stdout;
- then, for each line `{"requests": IN.jsonl, "outputs": OUT.jsonl}` read from stdin, it generates every request
  of IN (fields `prompt`: the text with the chat template already applied; `image_path`, or `image_rgb` (base64
  of the raw RGB bytes) and `size` [w, h]; `max_tokens`, `temperature`, `seed`), writes OUT (one `{"text", "token_ids"}` per request, in order) and answers
  `{"done": OUT, "n": N, "generate_seconds": S}` (S: inside LLM.generate) or `{"error": MESSAGE}`;
- it exits at the end of stdin. vLLM logs to stdout, so the protocol gets a private copy of the original stdout
  and everything else written there goes to stderr (the harness's log file).
"""

import base64
import json
import os
import sys
import time

# Run as a file, Python puts this folder first on sys.path, and harness/engines/vllm.py would shadow the real
# `vllm` package; drop it before anything imports vllm (vLLM's spawned workers inherit this sys.path).
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]


def _image(item: dict):
    from PIL import Image
    if item.get("image_path"):
        with Image.open(item["image_path"]) as im:
            return im.convert("RGB")
    return Image.frombytes("RGB", tuple(item["size"]), base64.b64decode(item["image_rgb"]))


def _params(item: dict):
    from vllm import SamplingParams
    temperature = float(item.get("temperature") or 0.0)
    kw = {"max_tokens": int(item["max_tokens"]), "temperature": temperature, "skip_special_tokens": True}
    if temperature > 0:     # pure sampling as the HF path does it (top_k off, top_p 1), seeded per item
        kw.update(top_p=1.0, top_k=0, seed=int(item.get("seed") or 0))
    return SamplingParams(**kw)


def run(llm, requests: str, outputs: str) -> int:
    with open(requests, encoding="utf-8") as f:
        items = [json.loads(line) for line in f if line.strip()]
    inputs = [{"prompt": it["prompt"], "multi_modal_data": {"image": _image(it)}} for it in items]
    t0 = time.monotonic()
    results = llm.generate(inputs, [_params(it) for it in items], use_tqdm=False)
    seconds = time.monotonic() - t0
    tmp = outputs + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for r in results:       # LLM.generate returns the outputs in the order of the inputs
            f.write(json.dumps({"text": r.outputs[0].text, "token_ids": list(r.outputs[0].token_ids)}) + "\n")
    os.replace(tmp, outputs)
    return len(results), round(seconds, 4)


def _one_process_on_cpu() -> None:
    """On CPU, vLLM's engine runs inside this process (VLLM_ENABLE_V1_MULTIPROCESSING=0) unless the environment
    says otherwise: with no second process there is no per-step hand-over of inputs and outputs, and the whole
    engine computes on the one core its OpenMP thread is bound to. Measured on the micro world (docs/engines.md):
    0.94x HF batch 64 instead of 0.60x, and a 38 s start-up instead of 63 s. On a GPU the second process lets
    input and output handling overlap the GPU's work, so vLLM's default stays."""
    if "VLLM_ENABLE_V1_MULTIPROCESSING" in os.environ:
        return
    from vllm.platforms import current_platform
    if current_platform.is_cpu():
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"


def main() -> int:
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--llm-kwargs", default="{}", help="JSON: more keyword arguments for vllm.LLM")
    args = ap.parse_args()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def say(msg: dict) -> None:
        proto.write(json.dumps(msg) + "\n")
        proto.flush()

    t0 = time.monotonic()
    _one_process_on_cpu()
    from vllm import LLM
    llm = LLM(model=args.model, dtype=args.dtype, seed=args.seed, **json.loads(args.llm_kwargs))
    say({"ready": True, "seconds": round(time.monotonic() - t0, 2)})
    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        try:
            n, seconds = run(llm, msg["requests"], msg["outputs"])
            say({"done": msg["outputs"], "n": n, "generate_seconds": seconds})
        except Exception as e:      # noqa: BLE001 - reported to the harness, which raises it as a HarnessError
            say({"error": f"{type(e).__name__}: {e}"})
    return 0


if __name__ == "__main__":      # vLLM spawns its engine process, which re-imports this file
    sys.exit(main())
