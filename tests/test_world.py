"""The shapes world generator: determinism, split independence, rendering, language and exact ground truth."""
from __future__ import annotations

import numpy as np
import pytest

from lincir.world import attributes as A
from lincir.world.attributes import ATTRIBUTE_NAMES, ATTRIBUTES, Attributes, all_combinations
from lincir.world.data import clip_pairs, gallery, queries, split_rng, train_captions
from lincir.world.language import canonical_caption, caption, modification_text, words_for
from lincir.world.render import OUTLINES, Jitter, polygon_sdf, render, render_many


def _mentions(text: str, name: str, value: str) -> bool:
    return any(word in text for word in words_for(name, value))


def test_combinations_are_indexed_in_order():
    combos = all_combinations()
    assert len(combos) == A.n_combinations() == 6 * 8 * 2 * 3 * 4
    assert [c.index() for c in combos[:5]] == list(range(5))
    assert combos[777].index() == 777
    with pytest.raises(ValueError):
        Attributes("hexagon", "red", "small", "left", "white")


def test_generator_is_deterministic_and_splits_differ():
    g1, g2 = gallery(12, seed=3), gallery(12, seed=3)
    assert g1.attrs == g2.attrs and np.array_equal(g1.images, g2.images)
    assert not np.array_equal(gallery(12, seed=4).images, g1.images)
    # Same seed, different split: independent streams.
    assert not np.array_equal(clip_pairs(12, seed=3).images, g1.images)
    assert train_captions(20, 5) == train_captions(20, 5) != train_captions(20, 6)
    assert split_rng("gallery", 0).integers(1 << 30) != split_rng("queries", 0).integers(1 << 30)


def _jitter(size: str = "large", **kw) -> Jitter:
    radius = np.mean(A.SIZE_RADIUS[size]) * 64
    base = dict(dx=0.0, dy=0.0, radius=radius, angle=0.0, colour_shift=(0, 0, 0), background_shift=0, noise_seed=0)
    return Jitter(**{**base, **kw})


def _foreground(img: np.ndarray, background: str) -> np.ndarray:
    """(H, W) bool: pixels clearly different from the background colour."""
    return np.abs(img.astype(int) - np.array(A.BACKGROUND_RGB[background])).sum(-1) > 60


def test_render_shows_every_attribute():
    a = Attributes("star", "blue", "large", "left", "white")
    img = render(a, _jitter())
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    fg = _foreground(img, "white")
    assert np.abs(img[fg].mean(0) - A.COLOUR_RGB["blue"]).max() < 25  # the object has its colour
    assert np.abs(img[~fg].mean(0) - A.BACKGROUND_RGB["white"]).max() < 6
    centroid_x = [np.nonzero(_foreground(render(a.replace(position=p), _jitter()), "white"))[1].mean()
                  for p in ("left", "center", "right")]
    assert centroid_x[0] < 24 < centroid_x[1] < 40 < centroid_x[2]
    small = _foreground(render(a.replace(size="small"), _jitter("small")), "white").sum()
    assert fg.sum() > 1.7 * small
    # Anti-aliased: edge pixels take intermediate values.
    assert len(np.unique(img[..., 0])) > 20


def test_shapes_have_distinct_silhouettes_and_similar_areas():
    masks = {s: _foreground(render(Attributes(s, "red", "large", "center", "black"), _jitter()), "black")
             for s in ATTRIBUTES["shape"]}
    areas = np.array([m.sum() for m in masks.values()])
    assert areas.max() < 2.5 * areas.min()
    names = list(masks)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            iou = (masks[names[i]] & masks[names[j]]).sum() / (masks[names[i]] | masks[names[j]]).sum()
            assert iou < 0.9, (names[i], names[j], iou)  # circle vs square is the closest pair (0.84)


def test_polygon_sdf_against_hand_values():
    square = np.array([(1.0, 1.0), (-1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)])
    pts = np.array([(0.0, 0.0), (2.0, 0.0), (0.5, 0.0), (2.0, 2.0)])
    np.testing.assert_allclose(polygon_sdf(pts, square), [-1.0, 1.0, -0.5, np.sqrt(2)], atol=1e-12)


def _reference_polygon_sdf(points: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The rasteriser's first form, on (N, M, 2) arrays: every rendered world image was made by it."""
    e = np.roll(v, -1, axis=0) - v
    w = points[:, None, :] - v[None, :, :]
    t = np.clip((w * e).sum(-1) / (e * e).sum(-1), 0.0, 1.0)
    b = w - e[None] * t[..., None]
    dist = np.sqrt((b * b).sum(-1).min(axis=1))
    vy, vy_next = v[:, 1][None], np.roll(v, -1, axis=0)[:, 1][None]
    py, px = points[:, 1:2], points[:, 0:1]
    crosses = (vy > py) != (vy_next > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = v[:, 0][None] + (py - vy) * e[:, 0][None] / (vy_next - vy)
    inside = (crosses & (px < x_at)).sum(axis=1) % 2 == 1
    return np.where(inside, -dist, dist)


@pytest.mark.parametrize("shape", sorted(OUTLINES))
def test_polygon_sdf_gives_the_reference_forms_bits(shape):
    # Same bytes, not just close: the renders behind every cached feature and shipped CLIP stay the same.
    rng = np.random.default_rng(len(shape))
    pts = np.concatenate([rng.uniform(-1.6, 1.6, size=(3000, 2)), OUTLINES[shape], OUTLINES[shape] * 0.5])
    assert polygon_sdf(pts, OUTLINES[shape]).tobytes() == _reference_polygon_sdf(pts, OUTLINES[shape]).tobytes()


def test_renders_vary_within_a_combination():
    a = Attributes("heart", "green", "small", "center", "gray")
    imgs = render_many([a] * 4, np.random.default_rng(0))
    assert len({im.tobytes() for im in imgs}) == 4


def test_captions_mention_their_attributes_and_vary():
    rng = np.random.default_rng(0)
    a = Attributes("cross", "orange", "small", "right", "beige")
    texts = {caption(a, rng) for _ in range(60)}
    assert len(texts) > 40
    for t in texts:
        assert all(_mentions(t, n, getattr(a, n)) for n in ATTRIBUTE_NAMES), t
        assert " a orange" not in t and "  " not in t and not t.endswith(",")
    omitted = caption(a, rng, omit=("position", "background"))
    assert not _mentions(omitted, "position", "right") and "background" not in omitted and "backdrop" not in omitted


def test_canonical_captions_are_unique_and_fit_the_context():
    import open_clip

    prompts = [canonical_caption(c) for c in all_combinations()]
    assert len(set(prompts)) == len(prompts)
    tok = open_clip.get_tokenizer("ViT-B-32")  # the same BPE as the world CLIPs
    rng = np.random.default_rng(0)
    texts = prompts[::50] + [caption(a, rng) for a in A.random_attributes(rng, 300)]
    lengths = (tok(texts) != 0).sum(1)
    assert int(lengths.max()) <= 32  # the world CLIPs' context length, start and end tokens included


def test_modification_text_names_each_change():
    rng = np.random.default_rng(0)
    ref = Attributes("circle", "red", "small", "left", "white")
    tgt = ref.replace(colour="cyan", background="black")
    for _ in range(20):
        text = modification_text(ref, tgt, rng)
        assert _mentions(text, "colour", "cyan") and _mentions(text, "background", "black") and " and " in text
    with pytest.raises(ValueError):
        modification_text(ref, ref, rng)


def test_query_ground_truth_is_exactly_the_target_combination():
    gal = gallery(400, seed=1)
    qs = queries(40, seed=1, gallery=gal)
    assert len(qs) == 40 and len({q.name for q in qs}) == 40
    gallery_bytes = {im.tobytes() for im in gal.images}
    n_changed = set()
    for q in qs:
        expected = [i for i, a in enumerate(gal.attrs) if a == q.target]
        assert q.ground_truth.tolist() == expected and len(expected) >= 1
        assert q.reference.differs_in(q.target) == q.changed
        n_changed.add(len(q.changed))
        assert q.reference_image.tobytes() not in gallery_bytes  # references are never gallery images
        for name in q.changed:
            assert _mentions(q.text, name, getattr(q.target, name)), (q.text, name)
    assert n_changed == {1, 2}
    assert [q.text for q in queries(40, seed=1, gallery=gal)] == [q.text for q in qs]


def test_sample_command_writes_a_contact_sheet(tmp_path):
    import json

    from PIL import Image

    from lincir.cli import main

    assert main(["world", "sample", "--out", str(tmp_path), "-n", "8"]) == 0
    sheet = Image.open(tmp_path / "samples.png")
    assert sheet.size[0] > 64 * 8
    meta = json.loads((tmp_path / "samples.json").read_text())
    assert len(meta["images"]) == 8 and len(meta["queries"]) == 5
