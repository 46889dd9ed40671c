"""Deterministic 64x64 renderer: a scene (+ seed) -> a PIL image.

Each class has its own silhouette AND its own surface texture, tinted by the object's colour: a small vision
tower learns identity from texture+shape far faster than from shape alone (docs/micro-world.md). Objects sit in their
quadrant with a small seed-dependent jitter; the background is light noise. Objects of TEXT_CLASSES (the sign)
carry their digit in a 3x5 pixel font so OCR questions have something to read.
"""

from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from harness.world.scene import CLASSES, TEXT_CLASSES, Scene

IMAGE_SIZE = 64
QUADRANT = IMAGE_SIZE // 2
# Half-extent of the object box in pixels: a small object spans 16 px, a big one 26 px of the 32 px quadrant.
HALF_EXTENT = {"small": 8, "big": 13}
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 170, 50), "blue": (40, 60, 220),
    "yellow": (235, 215, 20), "purple": (150, 40, 190), "orange": (245, 130, 10),
}

# Unit-square coordinates u, v in [-1, 1] (v grows downwards) -> boolean mask of the silhouette.
_SHAPES = {
    "disc": lambda u, v: u * u + v * v <= 1.0,
    "square": lambda u, v: (abs(u) <= 0.85) & (abs(v) <= 0.85),
    "tri_up": lambda u, v: (v <= 0.9) & (abs(u) <= (v + 1.0) / 2.0),
    "tri_down": lambda u, v: (v >= -0.9) & (abs(u) <= (1.0 - v) / 2.0),
    "diamond": lambda u, v: abs(u) + abs(v) <= 1.0,
    "plus": lambda u, v: ((abs(u) <= 0.33) | (abs(v) <= 0.33)) & (abs(u) <= 1) & (abs(v) <= 1),
    "ring": lambda u, v: (u * u + v * v <= 1.0) & (u * u + v * v >= 0.3),
    "wide": lambda u, v: (abs(u) <= 1.0) & (abs(v) <= 0.45),
    "tall": lambda u, v: (abs(u) <= 0.45) & (abs(v) <= 1.0),
    "hexagon": lambda u, v: (abs(v) <= 0.87) & (abs(u) * 0.87 + abs(v) * 0.5 <= 0.87),
    "ell": lambda u, v: ((u <= -0.2) | (v >= 0.3)) & (abs(u) <= 0.95) & (abs(v) <= 0.95),
    "tee": lambda u, v: ((v <= -0.35) | (abs(u) <= 0.3)) & (abs(u) <= 0.95) & (abs(v) <= 0.95),
    "ex": lambda u, v: ((abs(u - v) <= 0.45) | (abs(u + v) <= 0.45)) & (abs(u) <= 0.95) & (abs(v) <= 0.95),
    "half_disc": lambda u, v: (u * u + v * v <= 1.0) & (v >= -0.1),
    "hourglass": lambda u, v: (abs(u) <= abs(v) + 0.1) & (abs(v) <= 0.95),
    "trapezoid": lambda u, v: (abs(v) <= 0.7) & (abs(u) <= 0.55 + 0.4 * (v + 0.7) / 1.4),
}

# Pixel grid x, y (ints, relative to the object's top-left) -> brightness factor in [0.35, 1].
_TEXTURES = {
    "solid": lambda x, y: np.ones_like(x, dtype=float),
    "hstripes": lambda x, y: np.where((y // 2) % 2 == 0, 1.0, 0.45),
    "vstripes": lambda x, y: np.where((x // 2) % 2 == 0, 1.0, 0.45),
    "diag": lambda x, y: np.where(((x + y) // 2) % 2 == 0, 1.0, 0.45),
    "antidiag": lambda x, y: np.where(((x - y) // 2) % 2 == 0, 1.0, 0.45),
    "checker": lambda x, y: np.where(((x // 3) + (y // 3)) % 2 == 0, 1.0, 0.4),
    "dots": lambda x, y: np.where((x % 4 == 1) & (y % 4 == 1), 0.35, 1.0),
    "grid": lambda x, y: np.where((x % 4 == 0) | (y % 4 == 0), 0.4, 1.0),
    "fine_checker": lambda x, y: np.where((x + y) % 2 == 0, 1.0, 0.55),
    "wide_hstripes": lambda x, y: np.where((y // 4) % 2 == 0, 1.0, 0.5),
    "wide_vstripes": lambda x, y: np.where((x // 4) % 2 == 0, 1.0, 0.5),
    "gradient_x": lambda x, y: 0.45 + 0.55 * (x / max(1, x.max())),
    "gradient_y": lambda x, y: 0.45 + 0.55 * (y / max(1, y.max())),
    "waves": lambda x, y: 0.7 + 0.3 * np.sin(x * 1.3 + 2.0 * np.sin(y * 0.6)),
    "crosshatch": lambda x, y: np.where(((x + y) % 5 == 0) | ((x - y) % 5 == 0), 0.4, 1.0),
    "bricks": lambda x, y: np.where((y % 4 == 0) | (((x + 3 * ((y // 4) % 2)) % 6) == 0), 0.4, 1.0),
}

# One (shape, texture) per class; both are distinct across the 16 classes.
CLASS_LOOK: dict[str, tuple[str, str]] = dict(zip(CLASSES, zip(_SHAPES, _TEXTURES)))
assert len(CLASS_LOOK) == len(CLASSES) == len(set(s for s, _ in CLASS_LOOK.values()))

# 3x5 pixel font for the digits on signs (rows top to bottom, '#' = ink).
_FONT = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
}


def _rng(scene: Scene, seed: int) -> np.random.Generator:
    digest = hashlib.sha256(f"render:{seed}:{scene.key()}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def render_array(scene: Scene, seed: int = 0, artefact: bool = False, label_map: np.ndarray | None = None):
    """uint8 array (64, 64, 3). `artefact=True` adds the blotchy over-saturation of a too-high guidance.

    If `label_map` (int array 64x64) is given, it receives the class index of the object drawn at each pixel
    (-1 = background): dense targets for pre-training the vision tower."""
    rng = _rng(scene, seed)
    if label_map is not None:
        label_map.fill(-1)
    img = rng.normal(215.0, 12.0, size=(IMAGE_SIZE, IMAGE_SIZE, 1)) + rng.normal(0, 4.0, (IMAGE_SIZE, IMAGE_SIZE, 3))
    for obj in scene.objects:
        half = HALF_EXTENT[obj.size]
        # Jitter keeps the box inside its quadrant: 16 - half leaves 8 px of play for small, 3 px for big.
        play = QUADRANT // 2 - half - 1
        cx = obj.slot[0] * QUADRANT + QUADRANT // 2 + int(rng.integers(-play, play + 1))
        cy = obj.slot[1] * QUADRANT + QUADRANT // 2 + int(rng.integers(-play, play + 1))
        y0, x0 = cy - half, cx - half
        size = 2 * half + 1
        ys, xs = np.mgrid[0:size, 0:size]
        u = (xs - half) / half
        v = (ys - half) / half
        shape, texture = CLASS_LOOK[obj.cls]
        mask = _SHAPES[shape](u, v)
        shade = _TEXTURES[texture](xs, ys)
        base = np.array(COLOR_RGB[obj.color], dtype=float) * rng.uniform(0.9, 1.05)
        patch = shade[..., None] * base[None, None, :]
        region = img[y0:y0 + size, x0:x0 + size]
        region[mask] = patch[mask]
        if label_map is not None:
            label_map[y0:y0 + size, x0:x0 + size][mask] = CLASSES.index(obj.cls)
        if obj.cls in TEXT_CLASSES and obj.text is not None:
            _draw_digit(region, obj.text, scale=1 if obj.size == "small" else 2)
    if artefact:
        for _ in range(int(rng.integers(2, 5))):
            bx, by = (int(c) for c in rng.integers(0, IMAGE_SIZE - 12, size=2))
            img[by:by + 12, bx:bx + 12] += rng.normal(0, 70.0, size=(12, 12, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_digit(region: np.ndarray, digit: str, scale: int) -> None:
    """White plate with a black digit at the centre of the object box (3x5 glyph, scaled)."""
    glyph = np.array([[c == "#" for c in row] for row in _FONT[digit]])
    glyph = np.kron(glyph, np.ones((scale, scale), dtype=bool))
    gh, gw = glyph.shape
    h, w = region.shape[:2]
    top, left = (h - gh) // 2, (w - gw) // 2
    region[top - 1:top + gh + 1, left - 1:left + gw + 1] = 245.0
    plate = region[top:top + gh, left:left + gw]
    plate[glyph] = 15.0


def render(scene: Scene, seed: int = 0, artefact: bool = False) -> Image.Image:
    """64x64 RGB image of the scene; identical for identical (scene, seed, artefact)."""
    return Image.fromarray(render_array(scene, seed, artefact), mode="RGB")
