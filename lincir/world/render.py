"""Render one shapes-world object as an anti-aliased uint8 (H, W, 3) image, with seeded jitter."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lincir.world.attributes import BACKGROUND_RGB, COLOUR_RGB, POSITION_X, SIZE_RADIUS, Attributes

IMAGE_SIZE = 64


def _regular_star(points: int, outer: float, inner: float, start: float = np.pi / 2) -> np.ndarray:
    """(2*points, 2) vertices alternating outer and inner radius, y up."""
    angles = start + np.arange(2 * points) * np.pi / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def _heart(n: int = 48) -> np.ndarray:
    """(n, 2) vertices of the classic parametric heart, scaled to about unit radius, y up, centred."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    pts = np.stack([x, y], axis=1) / 16.0
    pts[:, 1] -= (pts[:, 1].max() + pts[:, 1].min()) / 2  # centre the bounding box vertically
    return pts * 1.05


def _cross(arm: float = 0.34, reach: float = 1.0) -> np.ndarray:
    """(12, 2) vertices of a plus sign."""
    a, r = arm, reach
    return np.array([(a, r), (a, a), (r, a), (r, -a), (a, -a), (a, -r), (-a, -r), (-a, -a), (-r, -a), (-r, a),
                     (-a, a), (-a, r)], dtype=np.float64)


# Unit outlines (radius about 1, y up); "circle" is exact and has none. Sizes were chosen so the shapes cover
# similar areas, so that size is not confounded with shape.
OUTLINES: dict[str, np.ndarray] = {
    "square": np.array([(0.84, 0.84), (-0.84, 0.84), (-0.84, -0.84), (0.84, -0.84)]),
    # Equilateral, point up, shifted down so its bounding box is centred.
    "triangle": np.array([(np.cos(a) * 1.2, np.sin(a) * 1.2 - 0.3) for a in np.pi / 2 + np.arange(3) * 2 * np.pi / 3]),
    "star": _regular_star(5, 1.15, 0.5),
    "cross": _cross(),
    "heart": _heart(),
}


def polygon_sdf(points: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) from points (N, 2) to a closed polygon (M, 2): (N,)."""
    # x and y kept as separate (N, M) arrays: the same products and sums as (N, M, 2) arrays summed over their
    # last axis, so the same bits, about four times faster (numpy reduces a length-2 axis slowly).
    v, v_next = vertices, np.roll(vertices, -1, axis=0)
    ex, ey = v_next[:, 0] - v[:, 0], v_next[:, 1] - v[:, 1]  # (M,) edge vectors
    px, py = points[:, 0:1], points[:, 1:2]  # (N, 1)
    wx, wy = px - v[:, 0][None], py - v[:, 1][None]  # (N, M)
    t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)  # (N, M)
    bx, by = wx - ex * t, wy - ey * t
    dist = np.sqrt((bx * bx + by * by).min(axis=1))
    # Even-odd crossing test for inside/outside.
    vy, vy_next = v[:, 1][None], v_next[:, 1][None]
    crosses = (vy > py) != (vy_next > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = v[:, 0][None] + (py - vy) * ex[None] / (vy_next - vy)
    inside = np.count_nonzero(crosses & (px < x_at), axis=1) % 2 == 1
    return np.where(inside, -dist, dist)


@dataclass(frozen=True)
class Jitter:
    """The continuous, per-render variation: nothing here changes an attribute's value."""

    dx: float  # pixels
    dy: float  # pixels
    radius: float  # pixels
    angle: float  # radians
    colour_shift: tuple[int, int, int]
    background_shift: int
    noise_seed: int


def sample_jitter(attrs: Attributes, rng: np.random.Generator, size: int = IMAGE_SIZE) -> Jitter:
    """Draw a render's jitter from a numpy Generator."""
    lo, hi = SIZE_RADIUS[attrs.size]
    return Jitter(
        dx=float(rng.uniform(-0.035, 0.035) * size),
        dy=float(rng.uniform(-0.12, 0.12) * size),
        radius=float(rng.uniform(lo, hi) * size),
        angle=float(rng.uniform(-0.3, 0.3)),
        colour_shift=tuple(int(c) for c in rng.integers(-18, 19, size=3)),
        background_shift=int(rng.integers(-12, 13)),
        noise_seed=int(rng.integers(0, 2**31 - 1)),
    )


def render(attrs: Attributes, jitter: Jitter, size: int = IMAGE_SIZE) -> np.ndarray:
    """The object on its background: uint8 (size, size, 3). Edges are anti-aliased by pixel coverage."""
    cx = POSITION_X[attrs.position] * size + jitter.dx
    cy = size / 2 + jitter.dy
    r = jitter.radius
    bg = np.clip(np.array(BACKGROUND_RGB[attrs.background], dtype=np.float64) + jitter.background_shift, 0, 255)
    fg = np.clip(np.array(COLOUR_RGB[attrs.colour], dtype=np.float64) + np.array(jitter.colour_shift), 0, 255)
    # Only pixels in the object's bounding box need a distance (the rest is background).
    x0, x1 = max(int(cx - 1.3 * r) - 1, 0), min(int(cx + 1.3 * r) + 2, size)
    y0, y1 = max(int(cy - 1.3 * r) - 1, 0), min(int(cy + 1.3 * r) + 2, size)
    ys, xs = np.mgrid[y0:y1, x0:x1]
    # Pixel centres in object coordinates: unit radius, y up, rotated by -angle (so the shape turns by +angle).
    px, py = (xs + 0.5 - cx) / r, (cy - (ys + 0.5)) / r
    c, s = np.cos(jitter.angle), np.sin(jitter.angle)
    pts = np.stack([c * px + s * py, -s * px + c * py], axis=-1).reshape(-1, 2)
    if attrs.shape == "circle":
        sdf = np.sqrt((pts * pts).sum(-1)) - 0.95
    else:
        sdf = polygon_sdf(pts, OUTLINES[attrs.shape])
    coverage = np.clip(0.5 - sdf * r, 0.0, 1.0).reshape(ys.shape)[..., None]  # distance in pixels -> coverage
    img = np.broadcast_to(bg, (size, size, 3)).copy()
    img[y0:y1, x0:x1] = coverage * fg + (1 - coverage) * img[y0:y1, x0:x1]
    img += np.random.default_rng(jitter.noise_seed).normal(0.0, 3.0, size=img.shape)  # sensor-like pixel noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def render_many(attrs: list[Attributes], rng: np.random.Generator, size: int = IMAGE_SIZE) -> np.ndarray:
    """Render a list of combinations with jitter drawn in order from rng: uint8 (N, size, size, 3)."""
    out = np.empty((len(attrs), size, size, 3), dtype=np.uint8)
    for i, a in enumerate(attrs):
        out[i] = render(a, sample_jitter(a, rng, size), size)
    return out
