"""Render a scene as an anti-aliased uint8 (64, 64, 3) image: backdrop pattern, clutter, distractor, the main
object, an occluder, then the lighting over everything. Shape outlines and the signed-distance rasteriser are the
shapes world's; every continuous variation (jitter) comes from one per-image seed."""
from __future__ import annotations

import numpy as np

from lincir.world.render import IMAGE_SIZE, OUTLINES, polygon_sdf
from lincir.world.scenes.factors import (BACKGROUND_RGB, CLUTTER_COUNT, COLOUR_RGB, COLOURS, DISTRACTOR_RADIUS,
                                         LIGHTING_GAIN, OCCLUDER_RGB, POSITION_X, SIZE_RADIUS, Scene)


def _paint_shape(img: np.ndarray, shape: str, cx: float, cy: float, r: float, angle: float, rgb: np.ndarray) -> None:
    """Composite one anti-aliased shape of radius r (pixels) centred at (cx, cy) onto img (H, W, 3) float, in place."""
    size = img.shape[0]
    x0, x1 = max(int(cx - 1.3 * r) - 1, 0), min(int(cx + 1.3 * r) + 2, size)
    y0, y1 = max(int(cy - 1.3 * r) - 1, 0), min(int(cy + 1.3 * r) + 2, size)
    if x0 >= x1 or y0 >= y1:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1]
    px, py = (xs + 0.5 - cx) / r, (cy - (ys + 0.5)) / r  # object coordinates: unit radius, y up
    c, s = np.cos(angle), np.sin(angle)
    pts = np.stack([c * px + s * py, -s * px + c * py], axis=-1).reshape(-1, 2)
    sdf = np.sqrt((pts * pts).sum(-1)) - 0.95 if shape == "circle" else polygon_sdf(pts, OUTLINES[shape])
    cov = np.clip(0.5 - sdf * r, 0.0, 1.0).reshape(ys.shape)[..., None]  # (h, w, 1) pixel coverage
    img[y0:y1, x0:x1] = cov * rgb + (1 - cov) * img[y0:y1, x0:x1]


def _backdrop(scene: Scene, rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) float: the base colour with the pattern in a contrasting tone (random phase)."""
    base = np.clip(np.array(BACKGROUND_RGB[scene.background], np.float64) + rng.integers(-10, 11), 0, 255)
    # Darker lines on light backdrops, lighter on black: the pattern is visible on every base colour.
    tone = base + 75.0 if scene.background == "black" else base * 0.62
    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    phase = rng.uniform(0, 10, size=2)
    if scene.pattern == "stripes":
        mask = ((xs + ys + phase[0]) % 10.0) < 4.0
    elif scene.pattern == "checker":
        mask = (((xs + phase[0]) // 8).astype(int) + ((ys + phase[1]) // 8).astype(int)) % 2 == 1
    elif scene.pattern == "dots":
        dx, dy = (xs + phase[0]) % 10.0 - 5.0, (ys + phase[1]) % 10.0 - 5.0
        mask = dx * dx + dy * dy < 4.0
    else:
        mask = np.zeros((size, size), bool)
    img = np.broadcast_to(base, (size, size, 3)).copy()
    img[mask] = tone
    return img


def render(scene: Scene, seed: int, size: int = IMAGE_SIZE) -> np.ndarray:
    """The scene as uint8 (size, size, 3); the same (scene, seed) gives the same bytes."""
    rng = np.random.default_rng(seed)
    img = _backdrop(scene, rng, size)
    lo, hi = CLUTTER_COUNT[scene.clutter]
    for _ in range(int(rng.integers(lo, hi + 1)) if hi else 0):  # specks: 2-3 px squares of the world's colours
        w = int(rng.integers(2, 4))
        x, y = (int(v) for v in rng.integers(0, size - w, size=2))
        img[y:y + w, x:x + w] = COLOUR_RGB[COLOURS[int(rng.integers(0, len(COLOURS)))]]
    cx = POSITION_X[scene.position] * size + rng.uniform(-0.03, 0.03) * size
    cy = (0.6 + rng.uniform(-0.05, 0.05)) * size
    r = rng.uniform(*SIZE_RADIUS[scene.size]) * size
    if scene.distractor != "none":  # in a top corner away from the object
        colour, kind = scene.distractor.split(" ")
        side = {"left": 1, "right": 0}.get(scene.position, int(rng.integers(0, 2)))
        dx = (0.8 if side else 0.2) * size + rng.uniform(-0.04, 0.04) * size
        dy = (0.17 + rng.uniform(-0.03, 0.03)) * size
        _paint_shape(img, kind, dx, dy, rng.uniform(*DISTRACTOR_RADIUS) * size, rng.uniform(-0.3, 0.3),
                     np.clip(np.array(COLOUR_RGB[colour], np.float64) + rng.integers(-15, 16, size=3), 0, 255))
    fg = np.clip(np.array(COLOUR_RGB[scene.colour], np.float64) + rng.integers(-18, 19, size=3), 0, 255)
    _paint_shape(img, scene.shape, cx, cy, r, rng.uniform(-0.3, 0.3), fg)
    if scene.occlusion == "occluded":  # a box over the lower half of one side of the object (about a third of it)
        left = bool(rng.integers(0, 2))
        x0, x1 = (cx - 1.4 * r, cx + 0.15 * r) if left else (cx - 0.15 * r, cx + 1.4 * r)
        y0, y1 = cy + rng.uniform(-0.1, 0.15) * r, cy + 1.5 * r
        xi0, xi1, yi0, yi1 = (int(np.clip(round(v), 0, size)) for v in (x0, x1, y0, y1))
        img[yi0:yi1, xi0:xi1] = np.array(OCCLUDER_RGB, np.float64) + rng.integers(-10, 11)
    gain, offset = LIGHTING_GAIN[scene.lighting]
    img = img * np.array(gain) + offset
    img += rng.normal(0.0, 3.0, size=img.shape)  # sensor-like pixel noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_many(scenes: list[Scene], rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render scenes with one seed each, drawn in order from rng: uint8 (N, size, size, 3)."""
    seeds = rng.integers(0, 2**31 - 1, size=len(scenes))
    out = np.empty((len(scenes), size, size, 3), dtype=np.uint8)
    for i, s in enumerate(scenes):
        out[i] = render(s, int(seeds[i]), size)
    return out
