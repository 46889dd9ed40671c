"""Data-parallel processes: ranks from `torchrun` / `accelerate launch`, work shared out in whole units (one
generation batch each), results merged back in order.

Why whole batches: a batched, left-padded `generate` computes each answer in the company of the other prompts of
its batch, and a different batch composition (other padding) changes fp32 logits in the last bits, which can flip
a greedy token. So a rank never re-batches: unit `u` is batch `u` of the one-process run (same prompts, same
sampling seed), rank `r` computes the units with `u % world == r`, and the merged result is the one-process result
exactly (docs/scaling.md). Outputs that are identical do not depend on the world size, so it is not part of any
synthesis or evaluation stage key; DPO under DDP is not bit-identical and its key says the world size.

Every rank runs the same pipeline code (so every rank reaches the same collectives); only rank 0 writes stage
directories, run files and tables. Finished units are kept in a store directory, so a run whose rank died resumes
without recomputing them, whatever the world size of the re-run.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from harness.errors import HarnessError


class RankFailed(HarnessError):
    """Another rank died (or a collective timed out): this rank stops with exit code 3 (a failed run, not bad
    input; a HarnessError subclass so every `except HarnessError: raise` passes it through); re-run to resume."""

    exit_code = 3


# rank and world size as the launcher set them, fixed at init(): lmms-eval is shown a one-process environment
# while it runs (harness.lmms_adapter), and our own sharding must not be fooled by that
_FIXED: dict[str, int] = {}


def rank() -> int:
    return _FIXED.get("rank", int(os.environ.get("RANK", "0")))


def world_size() -> int:
    return _FIXED.get("world", int(os.environ.get("WORLD_SIZE", "1")))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def check_env() -> None:
    """Bad launcher environment = one clear message before any work."""
    try:
        w, r = world_size(), rank()
    except ValueError:
        raise HarnessError(f"malformed RANK/WORLD_SIZE environment: {os.environ.get('RANK')!r}/"
                           f"{os.environ.get('WORLD_SIZE')!r}") from None
    if w < 1 or not 0 <= r < w:
        raise HarnessError(f"RANK={r} is not a rank of WORLD_SIZE={w}")
    if w > 1 and not (os.environ.get("MASTER_ADDR") and os.environ.get("MASTER_PORT")):
        raise HarnessError(f"WORLD_SIZE={w} but MASTER_ADDR/MASTER_PORT are unset: launch with torchrun or "
                           "accelerate launch (docs/scaling.md)")


def init() -> None:
    """Join the default process group once (no-op in a one-process run).

    gloo carries the Python objects we gather (CPU); on a GPU machine NCCL carries CUDA tensors (DDP gradients)."""
    check_env()
    if world_size() == 1:        # nothing to fix: no rank's view of the environment is ever changed
        return
    _FIXED.update(rank=rank(), world=world_size())
    import datetime

    import torch
    import torch.distributed as dist
    if dist.is_initialized():
        return
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    timeout = datetime.timedelta(seconds=float(os.environ.get("HARNESS_DIST_TIMEOUT", "3600")))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend=backend, timeout=timeout)


def all_gather(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...]; a dead peer raises RankFailed instead of hanging or a traceback."""
    if world_size() == 1:
        return [obj]
    import torch.distributed as dist
    init()
    out: list = [None] * world_size()
    try:
        dist.all_gather_object(out, obj)
    except (RuntimeError, ValueError, OSError) as e:   # gloo: "Connection closed by peer", timeouts
        # gloo's text names its source as "[/path/pair.cc:553]": brackets would be read as console markup
        first = (str(e).splitlines() or [""])[0].replace("[", "(").replace("]", ")")
        raise RankFailed(f"rank {rank()}: another rank failed during a collective ({type(e).__name__}: "
                         f"{first}); finished units are kept, re-run to resume") from None
    return out


def barrier() -> None:
    all_gather(None)


def my_units(n: int) -> list[int]:
    """The units of this rank: round-robin over ranks, so uneven batch costs spread evenly."""
    return list(range(rank(), n, world_size()))


class UnitStore:
    """Finished units of one computation as small JSON files (`unit-000012.json`), written atomically."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root) if root else None

    def _path(self, unit) -> Path:
        return self.root / f"unit-{unit}.json"

    def get(self, unit):
        if self.root is None or not self._path(unit).is_file():
            return None
        return json.loads(self._path(unit).read_text(encoding="utf-8"))["value"]

    def report_reused(self, reused: int, total: int) -> None:
        """Say on stderr that a re-run took finished units from an interrupted one (what it did not redo)."""
        if reused and self.root is not None:
            import sys
            print(f"harness: rank {rank()}: reused {reused} of {total} finished units from {self.root}",
                  file=sys.stderr, flush=True)

    def put(self, unit, value) -> None:
        if self.root is None:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self._path(unit).with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"value": value}), encoding="utf-8")
        os.replace(tmp, self._path(unit))


def merge(parts: Iterable[dict]) -> dict:
    out: dict = {}
    for p in parts:
        out.update(p)
    return out


def map_units(n: int, compute: Callable[[list[int]], Iterable[tuple[int, object]]],
              store: UnitStore | None = None) -> list:
    """Results of units 0..n-1 in order: this rank computes its own share (`compute(units)` yields
    `(unit, result)` pairs; each is stored as it comes, units already in `store` are skipped), then every rank
    receives every result."""
    store = store or UnitStore(None)
    mine = my_units(n)
    done = {u: v for u in mine if (v := store.get(u)) is not None}
    store.report_reused(len(done), len(mine))
    todo = [u for u in mine if u not in done]
    if todo:
        for u, value in compute(todo):
            store.put(u, value)
            done[u] = value
    merged = merge(all_gather(done))
    missing = [u for u in range(n) if u not in merged]
    if missing:
        raise RankFailed(f"units {missing[:5]} came back from no rank")
    return [merged[u] for u in range(n)]


_SCRATCH: list[Path] = []


@contextlib.contextmanager
def scratch(path: Path):
    """While a stage computes: its persistent work directory (harness.stages), where unit stores live."""
    _SCRATCH.append(Path(path))
    try:
        yield
    finally:
        _SCRATCH.pop()


def unit_store(name: str) -> UnitStore:
    """The store for computation `name` of the stage being computed (none outside a stage)."""
    return UnitStore(_SCRATCH[-1] / name if _SCRATCH else None)


def agree(flag: bool) -> bool:
    """True on every rank when `flag` is true on every rank (so all ranks take the same branch)."""
    return all(all_gather(bool(flag)))


def split_batch(batch_size: int, grad_accum: int) -> tuple[int, int]:
    """The one-process recipe's batch per optimizer step (batch_size x grad_accum) over this world:
    -> (per-device batch, accumulation steps) with per-device x accumulation x world = the recipe's batch."""
    effective, world = batch_size * grad_accum, world_size()
    if world == 1:
        return batch_size, grad_accum
    if effective % world:
        raise HarnessError(f"{world} processes do not divide the DPO batch of {effective} pairs per step "
                           f"(train.batch_size {batch_size} x train.grad_accum {grad_accum}): launch a world size "
                           "that divides it, or change the batch (docs/scaling.md)")
    share = effective // world
    per_device = max(d for d in range(1, min(batch_size, share) + 1) if share % d == 0)
    return per_device, share // per_device


def check_batch(method_cfg) -> None:
    """Bad input before any work: a DPO method's batch that this world size cannot keep."""
    train = getattr(method_cfg, "train", None)
    if train is not None and hasattr(train, "batch_size") and hasattr(train, "grad_accum"):
        split_batch(train.batch_size, train.grad_accum)


def train_key() -> dict:
    """DDP training is not bit-identical to one process (gradient all-reduce order, per-rank dropout), so the
    training stage's key names the world size; a one-process key is unchanged."""
    key: dict = {"world_size": world_size()} if world_size() > 1 else {}
    if os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true":     # accelerate launch + a ZeRO config
        key["deepspeed"] = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE") or os.environ.get(
            "ACCELERATE_DEEPSPEED_ZERO_STAGE", "plugin")
    return key
