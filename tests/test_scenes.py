"""The scenes world (issue 12): seeded generator, exact ground truth with hard negatives, caption coverage read
from the words, and the scenes CLIP-training smoke."""
import hashlib

import numpy as np
import pytest

from lincir.world import data as shapes_data
from lincir.world.scenes import data as D
from lincir.world.scenes.coverage import caption_coverage, named_factors
from lincir.world.scenes.factors import (CONTEXT_NAMES, DETAIL_NAMES, FACTOR_NAMES, OBJECT_NAMES, Scene,
                                         random_scenes)
from lincir.world.scenes.language import (MENTION_PROB, MENTIONABLE, caption, full_caption, modification_text,
                                          sample_caption)
from lincir.world.scenes.render import render


def _digest(arr: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


SCENE = Scene("heart", "red", "large", "white", "stripes", "dim", "left", "blue star", "some", "occluded")


def test_same_seed_same_bytes_and_texts():
    a, b = D.clip_pairs(12, seed=3), D.clip_pairs(12, seed=3)
    assert _digest(a.images) == _digest(b.images) and a.captions == b.captions and a.attrs == b.attrs
    x, y = D.benchmark(15, seed=2), D.benchmark(15, seed=2)
    assert _digest(x.gallery.images) == _digest(y.gallery.images)
    assert [(q.text, q.reference_caption, q.target_caption, _digest(q.reference_image)) for q in x.queries] == \
           [(q.text, q.reference_caption, q.target_caption, _digest(q.reference_image)) for q in y.queries]
    assert D.train_captions(50, seed=4) == D.train_captions(50, seed=4)
    assert _digest(render(SCENE, 7)) == _digest(render(SCENE, 7)) != _digest(render(SCENE, 8))


def test_splits_seeds_and_worlds_are_disjoint_streams():
    train, held_out = D.clip_pairs(12, seed=0), D.clip_pairs(12, seed=0, split="clip_eval")
    assert train.attrs != held_out.attrs and _digest(train.images) != _digest(held_out.images)
    assert D.train_captions(40, seed=0) != D.train_captions(40, seed=1)
    assert not set(D.SPLIT_CODES.values()) & set(shapes_data.SPLIT_CODES.values())
    assert D.SCENES_VERSION != shapes_data.WORLD_VERSION


def test_render_shows_the_factors():
    img = render(SCENE, 0)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    bright = render(SCENE.replace(lighting="bright"), 0).astype(float).mean()
    assert bright > img.astype(float).mean() + 30  # dim is darker than bright at the same jitter
    assert not np.array_equal(render(SCENE.replace(pattern="plain"), 0), img)
    assert not np.array_equal(render(SCENE.replace(occlusion="none"), 0), img)


def test_ground_truth_is_exactly_target_object_in_reference_context():
    bench = D.benchmark(60, seed=1)
    g = bench.gallery
    for q in bench.queries:
        assert q.target.context == q.reference.context and q.target.obj != q.reference.obj
        assert q.changed == q.reference.differs_in(q.target) and set(q.changed) <= set(OBJECT_NAMES)
        gt = set(q.ground_truth.tolist())
        assert gt
        for i, s in enumerate(g.scenes):
            assert (i in gt) == (s.obj == q.target.obj and s.context == q.reference.context)
        # hard negatives of both kinds are in the gallery by construction
        assert any(s.obj == q.target.obj and s.context != q.reference.context for s in g.scenes)
        assert any(s.context == q.reference.context and s.obj != q.target.obj for s in g.scenes)
        assert q.reference_image.shape == (64, 64, 3)
    # gallery images draw their details afresh: ground truth rarely repeats the reference's details
    same = [g.scenes[i].details == q.reference.details for q in bench.queries for i in q.ground_truth.tolist()]
    assert sum(same) < 0.2 * len(same)
    # references are fresh renders, never gallery images
    gallery_digests = {_digest(im) for im in g.images}
    assert not gallery_digests & {_digest(q.reference_image) for q in bench.queries}


def test_modification_text_changes_the_object_only():
    rng = np.random.default_rng(0)
    assert "star" in modification_text(SCENE, SCENE.replace(shape="star"), rng)
    with pytest.raises(ValueError):
        modification_text(SCENE, SCENE.replace(lighting="warm"), rng)


def test_coverage_reads_the_words_the_generator_chose():
    rng = np.random.default_rng(5)
    for s in random_scenes(rng, 600):
        text, mentioned = sample_caption(s, rng)
        assert set(named_factors(text, s)) == set(mentioned), text
        assert named_factors(full_caption(s, rng), s) == OBJECT_NAMES + CONTEXT_NAMES


def test_coverage_values():
    rng = np.random.default_rng(0)
    obj_only = caption(SCENE, rng, ())
    with_light = caption(SCENE, rng, ("lighting",))
    cov = caption_coverage([obj_only, with_light], [SCENE, SCENE])
    assert cov["all"] == pytest.approx((3 + 4) / 20) and cov["context"] == pytest.approx(1 / 6)
    assert cov["details"] == 0.0
    assert cov["per_factor"]["shape"] == 1.0 and cov["per_factor"]["lighting"] == 0.5
    # words of a different value do not count; "dot" is not in "polka-dot"; "an orange" is "a orange"
    assert named_factors("a large red heart in bright light", SCENE) == OBJECT_NAMES
    circle = SCENE.replace(shape="circle", pattern="dots", distractor="orange circle")
    assert "shape" not in named_factors("a polka-dot background", circle)
    assert "distractor" in named_factors("a big red disc next to an orange circle", circle)
    full = caption_coverage([full_caption(SCENE, rng)], [SCENE])
    assert full["context"] == 1.0 and full["details"] == 0.0 and full["all"] == pytest.approx(0.6)
    with pytest.raises(ValueError):
        caption_coverage(["a"], [])
    # the train corpus names the object always and each context factor and detail at its rate
    caps, scenes = D.train_caption_scenes(3000, seed=0)
    train = caption_coverage(caps, scenes)
    assert set(MENTION_PROB) == set(MENTIONABLE) == set(CONTEXT_NAMES) | set(DETAIL_NAMES)
    assert train["all"] == pytest.approx((3 + sum(MENTION_PROB.values())) / len(FACTOR_NAMES), abs=0.02)
    for name in MENTIONABLE:
        assert train["per_factor"][name] == pytest.approx(MENTION_PROB[name], abs=0.04)


def test_scenes_clip_smoke_trains_in_seconds(tmp_path):
    from lincir.world.clip_training import PRESETS, preset, train_clip

    meta = train_clip(preset("scenes-smoke"), tmp_path, log=lambda m: None)
    assert meta["config"]["world"] == "scenes" and meta["model_config"] == "scenes-clip-s"
    assert set(meta["eval"]["attribute"]) == set(FACTOR_NAMES)
    assert 0.0 <= meta["eval"]["combination"] <= 1.0 and meta["train_seconds"] < 30
    assert (tmp_path / "scenes-smoke.safetensors").is_file()
    for name in ("scenes-clip-s", "scenes-clip-m", "scenes-clip-l"):
        assert PRESETS[name].world == "scenes" and PRESETS[name].model_config == name
    assert PRESETS["shapes-clip"].world == "shapes" and PRESETS["smoke"].world == "shapes"


def test_scenes_model_configs_grow_a_few_times_each_step():
    import open_clip

    from lincir.models.backbones import register_model_configs

    register_model_configs()
    sizes = []
    for s in "sml":  # without the token embedding, which pruning removes from the shipped files
        m = open_clip.create_model(f"scenes-clip-{s}")
        sizes.append(sum(p.numel() for p in m.parameters()) - m.token_embedding.weight.numel())
    assert all(2 < b / a < 5 for a, b in zip(sizes, sizes[1:])), sizes


def test_scenes_groups_share_random_factors_and_shapes_groups_are_unchanged():
    from lincir.world.attributes import attribute_codes
    from lincir.world.clip_training import preset, sample_batch
    from lincir.world.scenes.factors import scene_codes

    cfg = preset("scenes-clip-s")
    codes = scene_codes(D.clip_pairs(800, seed=0).attrs)
    idx = sample_batch(codes, cfg, np.random.default_rng(0))
    assert len(idx) == cfg.batch_size
    for g in range(cfg.n_groups):
        group = codes[idx[g * cfg.group_size:(g + 1) * cfg.group_size]]
        assert (group == group[0]).all(axis=0).sum() >= cfg.shared  # each group shares its factors
    # the shapes sampler: the same draws as before always_shared existed (two shared attributes per group)
    shapes_cfg = preset("shapes-clip")
    shapes_codes = attribute_codes(shapes_data.clip_pairs(300, seed=0).attrs)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    got = sample_batch(shapes_codes, shapes_cfg, rng_a)
    want = []
    for _ in range(shapes_cfg.n_groups):
        attrs = rng_b.choice(shapes_codes.shape[1], size=shapes_cfg.shared, replace=False)
        anchor = shapes_codes[int(rng_b.integers(0, len(shapes_codes)))]
        cand = np.flatnonzero((shapes_codes[:, attrs] == anchor[attrs]).all(axis=1))
        want.append(rng_b.choice(cand, size=shapes_cfg.group_size, replace=len(cand) < shapes_cfg.group_size))
    want.append(rng_b.integers(0, len(shapes_codes), size=shapes_cfg.batch_size - shapes_cfg.n_groups * shapes_cfg.group_size))
    assert np.array_equal(got, np.concatenate(want))


def test_top1_roles_say_where_the_first_result_comes_from():
    from lincir.eval.scenes_benchmark import top1_roles

    bench = D.benchmark(20, seed=0)
    roles = bench.gallery.roles
    first_gt = [[int(q.ground_truth[0])] for q in bench.queries]
    assert top1_roles(first_gt, bench) == {"ground truth": 1.0}
    # the reference's own object in its context is a hard negative, never ground truth
    ref_obj = [[next(i for i, s in enumerate(bench.gallery.scenes) if (s.obj, s.context) == (q.reference.obj, q.reference.context)
                 and roles[i] == "reference-object")]
               for q in bench.queries]
    got = top1_roles(ref_obj, bench)
    assert got == {"reference-object": 1.0}
    assert set(roles) == {"target", "object-only", "context-only", "reference-object", "random"}
