"""The `Method` value object: what an alignment plugin exposes to `harness run`.

A method is one readable file (e.g. pipelines/rm_dpo.py) ending in `METHOD = Method(...)` and registered by
one line in harness/registry.py METHODS (or an entry point in the `harness.methods` group). Importing this
module never imports torch: `harness ls` reads names and descriptions only.

The two callables have fixed signatures so `harness.api` can chain and cache them without knowing the method:

    build_pairs(cfg, run, out_dir: Path, stages: Stages) -> dict
        writes a TRL preference dataset (`datasets.save_to_disk`) under out_dir / "dataset" with its card,
        returns the card's summary (counts, reward and length statistics, components).
    train(cfg, run, dataset_dir: Path, out_dir: Path, stages: Stages) -> dict
        writes a PEFT adapter under out_dir / "adapter" and the training log out_dir / "train_log.json",
        returns a summary (steps, final loss, reward margin, accuracy).

`check(cfg, run)` (optional) refuses impossible runs (e.g. a size the world cannot give) before anything
is written.

`cfg` is an instance of `config_cls` (a dataclass resolved by harness.config from defaults < preset <
overrides), `run` is the harness.api.RunSettings, `stages` a harness.stages.Stages rooted in the stage's
directory so a method can cache its own sub-steps (e.g. each synthesis component).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Method:
    name: str
    config_cls: type
    build_pairs: Callable[..., dict[str, Any]]
    train: Callable[..., dict[str, Any]]
    description: str = ""
    worlds: tuple[str, ...] = ("micro", "real")
    # optional up-front validation check(cfg, run) -> None: raise HarnessError before any work is done
    check: Callable[..., None] | None = None
    # modules whose source is part of the method's cache key (editing them invalidates its stages)
    code_modules: tuple[str, ...] = ()

    def check_world(self, world: str) -> None:
        from harness.errors import HarnessError
        if world not in self.worlds:
            raise HarnessError(f"method {self.name!r} does not support world {world!r} "
                               f"(supported: {', '.join(self.worlds)})")
