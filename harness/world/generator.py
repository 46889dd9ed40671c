"""A text-to-image "generator" with realistic failure modes, steered by a guidance-like knob.

`generate_candidates(scene, n, seed)` draws n images for the prompt of `scene`. Each candidate's drawn scene can
differ from the prompt: objects go missing or get the wrong colour (more often at LOW guidance: the prompt is
followed loosely), or an extra object / over-saturation artefacts appear (more often at VERY HIGH guidance: the
sampler over-shoots). So the best candidate is not simply the highest-guidance one, and an image reward model has
something real to choose between.

Per-object / per-image defect probabilities (g = guidance):
  missing  = max(0.02, 0.30 - 0.04 (g - 5))       g=5: 0.30  7: 0.22  9: 0.14  11: 0.06
  recolour = max(0.02, 0.25 - 0.035 (g - 5))      g=5: 0.25  7: 0.18  9: 0.11  11: 0.04
  extra    = 0.04 + 0.10 max(0, g - 7)            g=5: 0.04  7: 0.04  9: 0.24  11: 0.44
  artefact = 0.06 max(0, g - 7)                   g=5: 0     7: 0     9: 0.12  11: 0.24
With three objects the expected defect count is ~1.7 at g=5, ~1.2 at 7, ~0.9 at 9 and ~1.0 at 11.

A drawn scene that falls into the evaluation split is redrawn, so synthesized data never shows an eval scene.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from PIL import Image

from harness.errors import HarnessError
from harness.world.render import render
from harness.world.scene import CLASSES, COLORS, SLOTS, THEMES, Obj, Scene, make_scene
from harness.world.texts import object_phrase

DEFAULT_GUIDANCES = (5, 7, 9, 11)
MAX_REDRAWS = 50


def prompt_text(scene: Scene) -> str:
    """The text-to-image prompt for a scene ("a photo of a small red cup on the top left , ...")."""
    return "a photo of " + " , ".join(object_phrase(o) for o in scene.objects)


def defect_rates(guidance: float) -> dict[str, float]:
    g = float(guidance)
    return {
        "missing": max(0.02, 0.30 - 0.04 * (g - 5)),
        "recolor": max(0.02, 0.25 - 0.035 * (g - 5)),
        "extra": min(0.9, 0.04 + 0.10 * max(0.0, g - 7)),
        "artefact": min(0.9, 0.06 * max(0.0, g - 7)),
    }


@dataclass
class Candidate:
    image: Image.Image
    scene: Scene                 # what was actually drawn (the ground truth of this image)
    prompt_scene: Scene          # what was asked for
    guidance: float
    seed: int
    defects: list[str] = field(default_factory=list)   # e.g. "missing:cup", "recolor:fork:red->blue", "extra:plate"

    @property
    def prompt(self) -> str:
        return prompt_text(self.prompt_scene)

    @property
    def n_defects(self) -> int:
        return len(self.defects)


def _draw(scene: Scene, guidance: float, rng: random.Random) -> tuple[Scene, list[str], bool]:
    rates = defect_rates(guidance)
    objects: list[Obj] = []
    defects: list[str] = []
    for o in scene.objects:
        if rng.random() < rates["missing"]:
            defects.append(f"missing:{o.cls}")
            continue
        if rng.random() < rates["recolor"]:
            new = rng.choice([c for c in COLORS if c != o.color])
            defects.append(f"recolor:{o.cls}:{o.color}->{new}")
            o = Obj(o.cls, new, o.size, o.slot, o.text)
        objects.append(o)
    if not objects:   # a generator never returns a blank canvas: the first object survives
        first = scene.objects[0]
        defects.remove(f"missing:{first.cls}")
        objects.append(first)
    free = [s for s in SLOTS if s not in {o.slot for o in objects}]
    if free and rng.random() < rates["extra"]:
        # Extras come from the prompt's theme most of the time: the generator's own co-occurrence prior.
        pool = [c for c in THEMES[scene.theme] if c not in {o.cls for o in objects}]
        pool = pool or [c for c in CLASSES if c not in {o.cls for o in objects}]
        cls = rng.choice(pool)
        extra = Obj(cls, rng.choice(COLORS), rng.choice(("small", "big")), rng.choice(free),
                    str(rng.randrange(10)) if cls == "sign" else None)
        defects.append(f"extra:{cls}")
        objects.append(extra)
    artefact = rng.random() < rates["artefact"]
    if artefact:
        defects.append("artefact")
    return make_scene(scene.theme, objects), defects, artefact


def generate_candidates(scene: Scene, n: int, seed: int, guidances=DEFAULT_GUIDANCES) -> list[Candidate]:
    """n candidate images for the prompt of `scene`; guidance cycles through `guidances`. Deterministic."""
    if scene.split != "train":
        raise HarnessError(f"generator prompt scene {scene.uid} belongs to the eval split; "
                           "synthesize only from train scenes")
    if n < 1 or not guidances:
        raise HarnessError("generate_candidates needs n >= 1 and at least one guidance value")
    out = []
    for i in range(n):
        g = guidances[i % len(guidances)]
        rng = random.Random(f"gen:{seed}:{i}:{g}:{scene.key()}")
        for _ in range(MAX_REDRAWS):
            drawn, defects, artefact = _draw(scene, g, rng)
            if drawn.split == "train":
                break
        else:   # practically unreachable (each redraw is eval with p ~0.2); fall back to the train prompt scene
            drawn, defects, artefact = scene, [], False
        img_seed = rng.randrange(2**31)
        out.append(Candidate(render(drawn, img_seed, artefact=artefact), drawn, scene, g, img_seed, defects))
    return out
