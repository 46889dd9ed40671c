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
    """Content identity of what is served: the checkpoint's and adapter's weight files (hash up to 256 MiB,
    size + mtime above, as the evaluation's cache does) and the layout prepare_checkpoint writes."""
    from harness.engines.vllm import LAYOUT
    from harness.io import file_sha256, stable_hash
    from harness.models.vlm import resolve_checkpoint

    def files(folder: Path) -> dict:
        out = {}
        for f in sorted(folder.glob("*.safetensors")):
            st = f.stat()
            out[f.name] = file_sha256(f) if st.st_size <= 256 << 20 else f"{st.st_size},{st.st_mtime_ns}"
        return out
    return stable_hash({"model": files(resolve_checkpoint(model)), "adapter": files(Path(adapter)) if adapter else None,
                        "layout": LAYOUT})


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


def job_units(spec: str, model: str, adapter: str | None, image_paths, questions, order, cfg: dict, stream: int,
              units, store) -> dict[int, list[str]]:
    """A responders job's batches through vLLM: batch b = items order[b*bs:(b+1)*bs], item j of the sorted order
    sampled with seed stream + j (independent of batching and of the world size)."""
    from harness.engines import vllm
    bs, out = max(1, cfg["batch_size"]), {}
    with session(spec, model, adapter) as (url, name):
        for unit, b in units:
            items = order[b * bs:(b + 1) * bs]
            # the files themselves: the offline worker opens them, the server client encodes them
            out[unit] = vllm.generate(url, name, [image_paths[i] for i in items], [questions[i] for i in items],
                                      max_new_tokens=cfg["max_new_tokens"], temperature=cfg["temperature"],
                                      seed=stream + b * bs, concurrency=bs)
            store.put(unit, out[unit])
    return out
