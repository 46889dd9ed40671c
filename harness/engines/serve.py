"""Where the generating code meets the vLLM engine: one served session per (checkpoint, adapter), used by the
responders' jobs (pipelines.synth.responders) and by the lmms-eval adapter (harness.lmms_adapter)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from harness.engines import check_engine
from harness.io import cache_dir


def _identity(model: str, adapter: str | None) -> str:
    """Content identity of what is served: the checkpoint's and adapter's weight files (io.weights_identity, as
    the evaluation's cache keys them) and the layout prepare_checkpoint writes."""
    from harness.engines.vllm import LAYOUT
    from harness.io import stable_hash, weights_identity
    from harness.models.vlm import resolve_checkpoint
    return stable_hash({"model": weights_identity(resolve_checkpoint(model)),
                        "adapter": weights_identity(adapter) if adapter else None, "layout": LAYOUT})


def _cache() -> Path:
    return cache_dir() / "vllm-checkpoints"


@contextlib.contextmanager
def session(spec: str, model: str, adapter: str | None = None) -> Iterator[tuple]:
    """-> (target, served model name) for the lifetime of the block, for `vllm.generate(target, name, ...)`:
    the base URL of a server started here on a prepared copy of `model` (+ `adapter` merged) or of the running
    server that `vllm:<url>` names; for `vllm-batch`, an offline engine (batch.Offline) on that copy."""
    from harness.engines import vllm
    spec = check_engine(spec, "engine")
    if ":" in spec:
        url = spec.split(":", 1)[1].rstrip("/")
        yield url, vllm.served_model(url)
        return
    ckpt = vllm.prepare_checkpoint(model, adapter, _cache() / _identity(model, adapter))
    if spec == "vllm-batch":
        from harness.engines import batch
        with batch.Offline(ckpt, log=_cache() / "logs" / f"{os.getpid()}-{Path(ckpt).name}-batch.log") as eng:
            batch.print_start(eng)
            yield eng, "offline"
        return
    with vllm.Server(ckpt, log=_cache() / "logs" / f"{os.getpid()}-{Path(ckpt).name}.log") as srv:
        vllm.print_start(srv)
        yield srv.url, srv.name


def engine_jobs(spec: str, jobs: list[tuple], progress=None) -> list[dict[int, list[str]]]:
    """The responders' jobs (pipelines.synth.responders._job's arguments) through vLLM, one engine per served
    (model, adapter): the jobs of its samples share it, so a model's engine starts once per synthesis round.
    Batch b of a job = items order[b*bs:(b+1)*bs], item j of the sorted order sampled with seed stream + j
    (independent of batching and of the world size); each batch goes to the job's unit store when done.
    -> per job, {unit: texts}; `progress(k)` after the k-th finished job."""
    from harness.engines import vllm
    from harness.parallel import UnitStore
    by_model: dict[tuple, list[int]] = {}
    for k, job in enumerate(jobs):
        by_model.setdefault((job[0], job[1]), []).append(k)
    results: list[dict] = [{} for _ in jobs]
    done = 0
    for (model, adapter), ks in by_model.items():
        with session(spec, model, adapter) as (url, name):
            for k in ks:
                _, _, image_paths, questions, order, cfg, stream, units, store_root = jobs[k]
                bs, store = max(1, cfg["batch_size"]), UnitStore(store_root)
                for unit, b in units:
                    items = order[b * bs:(b + 1) * bs]
                    # the files themselves: the offline worker opens them, the server client encodes them
                    results[k][unit] = vllm.generate(
                        url, name, [image_paths[i] for i in items], [questions[i] for i in items],
                        max_new_tokens=cfg["max_new_tokens"], temperature=cfg["temperature"], seed=stream + b * bs,
                        concurrency=bs)
                    store.put(unit, results[k][unit])
                done += 1
                if progress:
                    progress(done)
    return results
