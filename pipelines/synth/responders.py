"""Stage 5 — K responses per (image, question) from responder models.

Paper: 3–4 open MLLMs (llava-v1.6 family), off-policy for the model being trained. Here every responder is an
HF LLaVA-architecture checkpoint loaded through harness.models.vlm (the same loader and batched generation the
evaluation uses): the zoo's `micro-responder-a` / `micro-responder-b` in the micro world, llava-hf models in the
real one. The name `policy` means the model being aligned (the run's base model, or in an on-policy round the
current merged checkpoint), which makes some pairs on-policy.

Speed (2 CPU cores): one job per (model, sample), run by `workers` processes with 1 torch thread each (docs/micro-world.md:
steadier than 2 threads in one process); items are generated in order of their question so a batch holds
answers of similar length (yes/no answers do not wait for descriptions), then put back in input order. With a
vLLM engine (`engine`), one engine per model serves all of that model's samples (harness.engines.serve.engine_jobs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

POLICY = "policy"


@dataclass
class RespondersConfig:
    models: list[str] = field(default_factory=lambda: ["micro-responder-a", "micro-responder-b", POLICY])
    samples_per_model: int = 2        # sampled responses per model and image
    temperature: float = 1.0
    max_new_tokens: int = 40          # micro descriptions are <= ~35 tokens; the paper allowed 1000
    batch_size: int = 128
    workers: int = 1                  # parallel generation processes (micro on 2 cores: 2; GPU: 1)
    device: str = ""                  # "" = the loader's default (CPU); "cuda" on a GPU machine
    engine: str = "hf"                # hf | vllm | vllm:<url> | vllm-batch (harness.engines; docs/engines.md)

    def __post_init__(self):
        from harness.engines import check_engine
        from harness.errors import HarnessError
        self.engine = check_engine(self.engine, "synth.responders.engine")
        if self.engine.startswith("vllm:") and len(set(self.models)) > 1:
            raise HarnessError(f"synth.responders.engine={self.engine!r}: a running server serves one model, and "
                               f"the responders are {len(set(self.models))} ({', '.join(self.models)}); use "
                               "engine=vllm (a server per model, started here) or one responder model")


def _job(args) -> dict[int, list[str]]:
    """One (model, sample) pass over some of the batches; runs in a worker process or inline.

    `units` = [(unit id, batch index)]: batch b is items order[b*bs:(b+1)*bs] sampled with seed stream + b, so
    any subset of batches gives exactly the texts a pass over all batches gives (harness.parallel). Each finished
    batch goes to the unit store at once, so a killed run keeps it."""
    name, adapter, image_paths, questions, order, cfg_dict, stream, units, store_root = args
    import torch
    from PIL import Image

    from harness.models.vlm import generate, load_vlm
    from harness.parallel import UnitStore
    torch.set_num_threads(1)
    model, processor = load_vlm(name, adapter=adapter, device=cfg_dict.get("device") or None)
    bs, store, out = max(1, cfg_dict["batch_size"]), UnitStore(store_root), {}
    for unit, b in units:
        imgs = []
        for i in order[b * bs:(b + 1) * bs]:
            with Image.open(image_paths[i]) as im:
                imgs.append(im.convert("RGB"))
        out[unit] = generate(model, processor, imgs, [questions[i] for i in order[b * bs:(b + 1) * bs]],
                             max_new_tokens=cfg_dict["max_new_tokens"], batch_size=bs,
                             temperature=cfg_dict["temperature"], seed=stream + b)
        store.put(unit, out[unit])
    return out


def _my_jobs(jobs: list[tuple], n_batches: int, store) -> list[tuple]:
    """This rank's share of the (job, batch) units not already in the store, grouped by job."""
    from harness import parallel
    mine = parallel.my_units(len(jobs) * n_batches)
    todo = [u for u in mine if store.get(u) is None]
    store.report_reused(len(mine) - len(todo), len(mine))
    by_job: dict[int, list] = {}
    for u in todo:
        by_job.setdefault(u // n_batches, []).append((u, u % n_batches))
    root = str(store.root) if store.root else None
    return [jobs[k] + (units, root) for k, units in by_job.items()]


def _merge_jobs(results: list, n_jobs: int, n_batches: int, order: list[int], store) -> list[list[str]]:
    """Every rank's units (fresh and stored) -> per job, the texts in input order."""
    from harness import parallel
    mine = {u: store.get(u) for u in parallel.my_units(n_jobs * n_batches)}
    for part in results:
        mine.update(part)
    units = parallel.merge(parallel.all_gather(mine))
    out = []
    for k in range(n_jobs):
        texts = [t for b in range(n_batches) for t in units[k * n_batches + b]]
        per_item = [""] * len(order)
        for i, t in zip(order, texts):
            per_item[i] = t
        out.append(per_item)
    return out


def respond(cfg: RespondersConfig, image_paths: list[str], questions: list[str], policy: str, seed: int,
            policy_adapter: str | None = None, progress: Callable[[int], None] | None = None) -> list[list[dict]]:
    """Per item, the list of {"model", "sample", "text"} responses (len = models x samples_per_model)."""
    import dataclasses
    order = sorted(range(len(questions)), key=lambda i: (questions[i], i))
    jobs, labels = [], []
    for mi, name in enumerate(cfg.models):
        for s in range(cfg.samples_per_model):
            # distinct, reproducible sampling streams per (run seed, model, sample)
            stream = seed * 1_000_003 + mi * 10_007 + s * 101
            target, adapter = (policy, policy_adapter) if name == POLICY else (name, None)
            jobs.append((target, adapter, image_paths, questions, order, dataclasses.asdict(cfg), stream))
            labels.append((name, s))
    from harness import parallel
    n_batches, store = -(-len(questions) // max(1, cfg.batch_size)), parallel.unit_store("responses")
    all_jobs, jobs = jobs, _my_jobs(jobs, n_batches, store)   # data-parallel: this rank's batches only
    results: list[dict | None] = [None] * len(jobs)
    done = 0
    if cfg.engine != "hf":            # one vLLM engine per model does the batching, not worker processes
        from harness.engines.serve import engine_jobs
        results = engine_jobs(cfg.engine, jobs, progress and (lambda k: progress(k * len(questions))))
    elif cfg.workers > 1 and len(jobs) > 1:
        from concurrent.futures import as_completed

        from harness.procs import worker_pool
        with worker_pool(min(cfg.workers, len(jobs))) as ex:      # workers die with this process
            futs = {ex.submit(_job, j): k for k, j in enumerate(jobs)}
            for f in as_completed(futs):
                results[futs[f]] = f.result()
                done += 1
                if progress:
                    progress(done * len(questions))
    else:
        for k, j in enumerate(jobs):
            results[k] = _job(j)
            done += 1
            if progress:
                progress(done * len(questions))
    merged = _merge_jobs(results, len(all_jobs), n_batches, order, store)
    out: list[list[dict]] = [[] for _ in questions]
    for (name, s), texts in zip(labels, merged):
        for i, t in enumerate(texts):
            out[i].append({"model": name, "sample": s, "text": t})
    return out
