"""The lmms-eval side of the harness: our checkpoints as an lmms-eval model, and running tasks through
`lmms_eval.evaluator.simple_evaluate`. This is the only module that imports lmms_eval.

Registered for the lmms-eval CLI through the entry point group `lmms_eval.models`
(`harness_vlm = "harness.lmms_adapter:manifest"`), so
`lmms-eval --model harness_vlm --model_args pretrained=micro-llava,adapter=DIR --tasks ... --include_path ...`
works too. The harness itself passes a model instance to simple_evaluate and reads the per-item samples back.
"""

from __future__ import annotations

import contextlib
import io
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path


def manifest():
    """The lmms_eval.models entry point's payload. Defined before any lmms_eval import: lmms-eval loads entry
    points while `lmms_eval.models` initialises, which can happen in the middle of importing this module."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id="harness_vlm", simple_class_path="harness.lmms_adapter.HarnessVLM")


from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms

from harness.errors import HarnessError, RunFailed
from harness.models import vlm


class HarnessVLM(lmms):
    """An HF LLaVA-architecture checkpoint (+ optional PEFT adapter), batched greedy generation."""

    def __init__(self, pretrained: str | None = None, adapter: str | None = None, batch_size: int | str = 64,
                 trust_remote_code: bool | str = False, model=None, processor=None,
                 progress: Callable[[str, int, int], None] | None = None, engine=None, **_ignored) -> None:
        super().__init__()
        self.engine = engine           # (url, served name) of a vLLM server (harness.engines), or None: HF here
        if model is None and engine is None:
            if not pretrained:
                raise HarnessError("harness_vlm needs pretrained=<zoo name or checkpoint path>")
            trc = str(trust_remote_code).lower() in ("1", "true", "yes")
            model, processor = vlm.load_vlm(pretrained, adapter=adapter or None, trust_remote_code=trc)
        self.model, self.processor = model, processor
        self.batch_size_per_gpu = int(batch_size or 64)
        # True when the harness runs lmms-eval once per rank (one-process view) and shards whole batches itself;
        # False under the lmms-eval CLI's own torchrun/accelerate path, which shards documents before us
        self.shard_batches = False
        self.progress = progress

    # lmms-eval reads these on some code paths
    @property
    def batch_size(self) -> int:
        return self.batch_size_per_gpu

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def world_size(self) -> int:
        return self._world_size

    def generate_until(self, requests: list[Instance]) -> list[str]:
        """Answers for every request, in request order; requests are grouped by task (same generation kwargs)."""
        out: list[str | None] = [None] * len(requests)
        groups: dict[str, list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            groups[req.args[4]].append(i)
        for task, idx in groups.items():
            _, gen_kwargs, doc_to_visual, _, _, split = requests[idx[0]].args
            images, prompts = [], []
            for i in idx:
                context, _, _, doc_id, _, split = requests[i].args
                visuals = doc_to_visual(self.task_dict[task][split][doc_id])
                if len(visuals) != 1:
                    raise HarnessError(f"task {task} document {doc_id}: expected one image, got {len(visuals)}")
                images.append(visuals[0])
                prompts.append(context)
            gk = dict(gen_kwargs or {})
            until = [u for u in (gk.get("until") or []) if u]
            answers = self._generate(
                images, prompts, max_new_tokens=int(gk.get("max_new_tokens", 32)),
                batch_size=self.batch_size_per_gpu, temperature=float(gk.get("temperature") or 0.0),
                progress=self._progress_for(task, len(idx)))
            for i, ans in zip(idx, answers):
                for stop in until:             # lmms-eval's stop sequences, applied to the decoded text
                    ans = ans.split(stop)[0]
                out[i] = ans
        return out  # type: ignore[return-value]

    # ---- data-parallel ranks (harness.parallel) ----
    @property
    def device(self):
        """Where the model's weights are; lmms-eval's torchrun/accelerate path puts its count tensors here."""
        import torch
        return next(self.model.parameters()).device if self.model is not None else torch.device("cpu")

    def _generate(self, images, prompts, **kw) -> list[str]:
        """vlm.generate, or with `shard_batches` under several ranks: this rank's whole batches, all merged."""
        from harness import parallel
        if not (self.shard_batches and parallel.world_size() > 1):
            return self._generate_batches(images, prompts, **kw)
        bs, progress = max(1, kw.pop("batch_size")), kw.pop("progress", None)

        def compute(units):
            for b in units:   # batch b with seed b: what one vlm.generate call over everything computes
                texts = self._generate_batches(images[b * bs:(b + 1) * bs], prompts[b * bs:(b + 1) * bs],
                                               batch_size=bs, seed=b, **kw)
                if progress is not None:
                    progress(min(len(prompts), (b + 1) * bs))
                yield b, texts
        n = -(-len(prompts) // bs)
        parts = parallel.map_units(n, compute, parallel.unit_store(f"eval-{_content_key(images, prompts, bs, kw)}"))
        return [t for part in parts for t in part]

    def _generate_batches(self, images, prompts, **kw) -> list[str]:
        """HF generate here, or the vLLM server's answers (same prompts, same decoding: harness.engines)."""
        if self.engine is None:
            return vlm.generate(self.model, self.processor, images, prompts, **kw)
        from harness.engines import vllm as vllm_engine
        url, name = self.engine
        return vllm_engine.generate(url, name, images, prompts, max_new_tokens=kw["max_new_tokens"],
                                    temperature=kw.get("temperature") or 0.0, seed=kw.get("seed", 0),
                                    concurrency=kw.get("batch_size", 64), progress=kw.get("progress"))

    def _progress_for(self, task: str, total: int):
        if self.progress is None:
            return None
        return lambda done: self.progress(task, done, total)

    def loglikelihood(self, requests):
        raise HarnessError("harness_vlm supports generate_until tasks only (no loglikelihood)")

    def generate_until_multi_round(self, requests):
        raise HarnessError("harness_vlm does not support multi-round generation")


_TASK_MANAGERS: dict[tuple, object] = {}


def _content_key(images, prompts, batch_size: int, settings: dict) -> str:
    """What a generation call's stored batches depend on: its images, prompts, batching and decoding settings
    (so a resumed evaluation never takes batches stored for another task)."""
    import hashlib
    h = hashlib.sha256(repr((list(prompts), batch_size, sorted(settings.items()))).encode())
    for im in images:
        h.update(im.tobytes())
    return h.hexdigest()[:16]


@contextlib.contextmanager
def _one_process_view(active: bool):
    """lmms-eval reads RANK/WORLD_SIZE from the environment and would shard documents by rank, regrouping our
    batches (docs/scaling.md: other padding, other greedy tokens). With batch sharding every rank runs lmms-eval
    as one process over all documents and only the generation is split; this hides the ranks from it meanwhile."""
    from harness import parallel
    from harness.io import environ_set
    one = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0"} if active and parallel.world_size() > 1 else {}
    with environ_set(one):
        yield


def _quiet() -> None:
    """lmms-eval logs every step at INFO through loguru and draws tqdm bars; we show our own rich bars."""
    import sys

    import datasets
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    datasets.disable_progress_bars()


def run_tasks(lm: HarnessVLM, tasks: list[str], include_path: str | Path | list | None = None,
              limit: int | None = None) -> dict[str, list[dict]]:
    """Run lmms-eval tasks with our model instance -> {task: [logged sample, ...]} in document order.

    lmms-eval does not fail loudly (its CLI exits 0 when an evaluation fails), so we check that every task
    came back with one sample per document and raise RunFailed otherwise.
    """
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    _quiet()
    paths = include_path if isinstance(include_path, list) else ([include_path] if include_path else None)
    # Indexing lmms-eval's own task YAMLs takes seconds: only when a built-in task is asked for, once per process.
    defaults = any(not t.startswith("harness_") for t in tasks)
    key = (defaults,) + tuple(str(p) for p in paths or ())
    if key not in _TASK_MANAGERS:
        _TASK_MANAGERS[key] = TaskManager(verbosity="ERROR", include_path=list(key[1:]) or None,
                                          include_defaults=defaults)
    tm = _TASK_MANAGERS[key]
    unknown = [t for t in tasks if t not in tm.all_tasks]
    if unknown:
        raise HarnessError(f"unknown lmms-eval task(s): {', '.join(unknown)}")
    try:
        # lmms-eval's tqdm bars go to sys.stderr; loguru warnings keep the real stderr (bound in _quiet)
        with contextlib.redirect_stderr(io.StringIO()), _one_process_view(lm.shard_batches):
            results = simple_evaluate(model=lm, tasks=list(tasks), task_manager=tm, log_samples=True, limit=limit,
                                      batch_size=lm.batch_size, verbosity="ERROR", bootstrap_iters=0)
    except (HarnessError, RunFailed):
        raise
    except Exception as e:   # noqa: BLE001 - lmms-eval raises anything
        # a run failure (exit 3), not bad input: the message names the innermost cause, and the whole chain stays
        # attached (`from e`) for the run's error.log
        cause = e
        while cause.__cause__ is not None and not isinstance(cause, (HarnessError, RunFailed)):
            cause = cause.__cause__
        failed = HarnessError if isinstance(cause, HarnessError) else RunFailed   # ours: e.g. a corrupt image
        raise failed(f"lmms-eval failed on {', '.join(tasks)}: {type(cause).__name__}: {cause}") from e
    if not results or "samples" not in results:
        raise RunFailed(f"lmms-eval returned no samples for {', '.join(tasks)}")
    out = {}
    for t in tasks:
        samples = results["samples"].get(t)
        if not samples:
            raise RunFailed(f"lmms-eval returned no samples for task {t}")
        out[t] = sorted(samples, key=lambda s: s["doc_id"])
    return out
