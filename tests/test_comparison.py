"""The comparison's new parts: the noise literature's variants (CapDec's normalised space, C3's centering), Slerp,
the authors' keyword masking bug for bug, and the SEARLE-style baseline (stage 1 and stage 2)."""
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lincir.core.keyed_random import sample_generators
from lincir.core.losses import oti_loss, searle_distillation_loss, smp_loss
from lincir.core.masking import (PLACEHOLDER, RANDOM_WORD_FALLBACK, KeywordSpans, apply_masking, mask_keywords,
    mask_keywords_authors)
from lincir.core.noise import CAPDEC_SCALE, add_keyed_noise, modality_mean, renormalized, to_noise_space
from lincir.core.phi import Phi
from lincir.data.concepts import mask_concept, read_concepts
from lincir.errors import LincirError
from lincir.eval.query_encoder import QueryEncoder, slerp
from lincir.models.backbones import load_backbone
from lincir.train import run_cache
from lincir.train.config import TrainConfig

D = 64


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("shapes-clip", weights="random")


def _feats(n=4000, d=D, seed=0, offset=3.0):
    g = torch.Generator().manual_seed(seed)
    return 5.0 * torch.randn(n, d, generator=g) + offset  # unnormalised, far from the origin, with a mean


# --- noise lab ---------------------------------------------------------------------------------------------

def test_normalised_space_is_unit_norm_and_raw_is_unchanged():
    x = _feats()
    assert torch.equal(to_noise_space(x, "raw"), x)
    assert torch.allclose(to_noise_space(x, "normalised").norm(dim=-1), torch.ones(len(x)), atol=1e-5)
    with pytest.raises(KeyError):
        to_noise_space(x, "sphere")


@pytest.mark.parametrize("space", ["raw", "normalised"])
def test_centering_removes_the_modality_mean(space):
    x = _feats()
    mean = modality_mean(x, space, chunk=999)  # chunked sum == the plain mean
    assert torch.allclose(mean, to_noise_space(x, space).mean(0), atol=1e-5)
    centred = to_noise_space(x, space, mean)
    assert centred.mean(0).abs().max() < 1e-4
    assert mean.norm() > 0.3  # there was a mean to remove


def test_capdec_noise_on_normalised_features_has_its_variance():
    x = _feats(n=20000)
    gens = sample_generators(0, 0, range(len(x)), 1)
    clean = to_noise_space(x, "normalised")
    noise = add_keyed_noise(clean, "gaussian", CAPDEC_SCALE, gens) - clean
    assert CAPDEC_SCALE ** 2 == pytest.approx(0.016)
    assert noise.var().item() == pytest.approx(0.016, rel=0.03)
    assert abs(noise.mean().item()) < 0.002
    # Relative to a unit feature the noise is large (norm ~ sqrt(d * 0.016)); on raw features it would be tiny.
    assert noise.norm(dim=-1).mean().item() == pytest.approx(math.sqrt(D * 0.016), rel=0.05)


def test_c3_noise_is_centred_features_plus_noise():
    x = _feats(n=20000)
    mean = modality_mean(x, "normalised")
    gens = sample_generators(0, 0, range(len(x)), 1)
    noisy = add_keyed_noise(to_noise_space(x, "normalised", mean), "gaussian", CAPDEC_SCALE, gens)
    assert noisy.mean(0).abs().max() < 0.01  # centred, and the noise has mean 0
    resid = noisy - to_noise_space(x, "normalised", mean)
    assert resid.var().item() == pytest.approx(0.016, rel=0.03)


def test_c3_renormalised_input_is_unit_norm_and_still_centred_in_direction():
    # C3's released recipe: normalise, centre, add noise, normalise again (core.noise.renormalized).
    x = _feats(n=5000)
    mean = modality_mean(x, "normalised")
    gens = sample_generators(0, 0, range(len(x)), 1)
    noisy = add_keyed_noise(to_noise_space(x, "normalised", mean), "gaussian", CAPDEC_SCALE, gens)
    out = renormalized(noisy)
    assert torch.allclose(out.norm(dim=-1), torch.ones(len(x)), atol=1e-5)
    assert torch.allclose(out, noisy / noisy.norm(dim=-1, keepdim=True), atol=1e-6)
    # Centred features have norms well below 1, so the re-normalisation changes them (it is not a no-op here).
    assert to_noise_space(x, "normalised", mean).norm(dim=-1).mean() < 0.95


@pytest.mark.parametrize("space,center,renorm", [("normalised", False, False), ("raw", True, False),
                                                 ("normalised", True, False), ("normalised", True, True)])
def test_smp_loss_feeds_phi_the_transformed_feature_and_keeps_the_raw_target(backbone, space, center, renorm):
    z = torch.randn(3, backbone.embed_dim, generator=torch.Generator().manual_seed(2)) * 4
    tokens = backbone.tokenize(["a $ on a white background"] * 3)
    phi = Phi.seeded(backbone.embed_dim, backbone.token_width, 0, dropout=0.0).eval()
    mean = torch.full((backbone.embed_dim,), 0.05) if center else None
    got = smp_loss(backbone, phi, tokens, z, "gaussian", 0.1, sample_generators(0, 0, range(3), 1), None, space, mean,
                   renormalize=renorm)
    x = to_noise_space(z, space, mean)
    noisy = add_keyed_noise(x, "gaussian", 0.1, sample_generators(0, 0, range(3), 1))
    if renorm:
        noisy = F.normalize(noisy, dim=-1)
    want = F.mse_loss(backbone.encode_with_pseudo(tokens, phi(noisy)).float(), z)
    assert torch.allclose(got, want)
    raw = smp_loss(backbone, phi, tokens, z, "gaussian", 0.1, sample_generators(0, 0, range(3), 1), None)
    assert not torch.allclose(got, raw)


def test_options_are_validated_and_keys_of_old_runs_unchanged():
    with pytest.raises(LincirError, match="--noise-space"):
        TrainConfig(noise_space="sphere").validate()
    with pytest.raises(LincirError, match="--noise-space"):
        TrainConfig(objective="pic2word", center=True).validate()
    TrainConfig(noise="gaussian", noise_scale=CAPDEC_SCALE, noise_space="normalised", center=True).validate()
    # A config at the new options' defaults hashes exactly as it did before they existed (template masking: a
    # keyword-masked run's key also names the keyword-span version, which changed with spaCy's parser).
    cfg = TrainConfig(steps=7, masking="template")
    old = {k: v for k, v in sorted(dataclasses.asdict(cfg).items())
           if k not in run_cache._NOT_IN_KEY and k not in run_cache._KEYED_WHEN_SET}
    old["weights_id"] = run_cache.weights_id(cfg)
    from lincir.storage import sha256_text

    assert run_cache.config_key(cfg) == sha256_text(json.dumps(old, sort_keys=True))[:16]
    assert run_cache.config_key(dataclasses.replace(cfg, center=True)) != run_cache.config_key(cfg)
    assert set(run_cache._KEYED_WHEN_SET) <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert all(getattr(TrainConfig(), k) == v for k, v in run_cache._KEYED_WHEN_SET.items())


def test_query_encoder_centres_phi_input_by_the_gallery_mean(backbone):
    phi = Phi.seeded(backbone.embed_dim, backbone.token_width, 0, dropout=0.0).eval()
    refs, gallery = _feats(4, backbone.embed_dim, 1), _feats(50, backbone.embed_dim, 2)
    texts = [["is red"]] * 4
    enc = QueryEncoder(backbone, "lincir", phi, phi_space="normalised", center=True)
    with pytest.raises(LincirError, match="use_gallery"):
        enc.encode(refs, texts)
    enc.use_gallery(gallery)
    got = enc.encode(refs, texts)
    x = F.normalize(refs, dim=-1) - F.normalize(gallery, dim=-1).mean(0)
    want = QueryEncoder(backbone, "lincir", lambda _: phi(x)).encode(refs, texts)
    assert torch.allclose(got, want, atol=1e-5)
    c3 = QueryEncoder(backbone, "lincir", phi, phi_space="normalised", center=True, renormalize=True)
    c3.use_gallery(gallery)
    want = QueryEncoder(backbone, "lincir", lambda _: phi(F.normalize(x, dim=-1))).encode(refs, texts)
    assert torch.allclose(c3.encode(refs, texts), want, atol=1e-5)
    assert not torch.allclose(c3.encode(refs, texts), got, atol=1e-4)


# --- Slerp -------------------------------------------------------------------------------------------------

def test_slerp_equals_its_closed_form():
    g = torch.Generator().manual_seed(0)
    a, b = F.normalize(torch.randn(8, D, generator=g), dim=-1), F.normalize(torch.randn(8, D, generator=g), dim=-1)
    theta = torch.acos((a * b).sum(-1, keepdim=True))
    for w in (0.0, 0.3, 0.5, 0.8, 1.0):
        out = slerp(a, b, w)
        want = (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)
        assert torch.allclose(out, want, atol=1e-6)
        assert torch.allclose(out.norm(dim=-1), torch.ones(8), atol=1e-5)  # stays on the sphere
        assert torch.allclose(torch.acos((out * a).sum(-1).clamp(-1, 1)), w * theta[:, 0], atol=1e-3)
    assert torch.allclose(slerp(a, b, 0.5), F.normalize(a + b, dim=-1), atol=1e-6)  # the midpoint
    assert torch.allclose(slerp(a, a, 0.4), a, atol=1e-6)  # parallel rows: no division by zero


def test_slerp_weight_is_checked(backbone):
    with pytest.raises(LincirError, match="--slerp-weight"):
        QueryEncoder(backbone, "slerp", slerp_weight=1.5)


# --- the authors' keyword masking --------------------------------------------------------------------------

def _spans(caption, *words):
    out, pos = [], 0
    for w in words:
        s = caption.index(w, pos)
        out.append((s, s + len(w)))
        pos = s + len(w)
    return out


@pytest.mark.parametrize("caption,words,ours,authors", [
    # "a" also hits the "a" inside "large" and "cat"
    ("a large cat", ["a"], "$ large cat", "$ l$rge c$t"),
    # "the rain" also hits the start of "the rainbow"
    ("the rain and the rainbow", ["the rain"], "$ and the rainbow", "$ and $bow"),
    # a repeated span: exact spans replace one occurrence, str.replace every one
    ("a dog next to a dog", ["dog"], "a $ next to a dog", "a $ next to a $"),
    # identical where the spans are whole words that occur once
    ("red shoes on the floor", ["red shoes", "the floor"], "$ on $", "$ on $"),
])
def test_keywords_authors_differs_from_exact_spans_where_it_should(caption, words, ours, authors):
    spans = _spans(caption, *words)
    rng = np.random.default_rng(0)
    assert mask_keywords(caption, spans, rng) == ours
    assert mask_keywords_authors(caption, spans, rng) == authors


def test_keywords_authors_fallbacks(backbone):
    caps = ["walking fast", "a large cat"]
    spans = KeywordSpans.from_lists([[], _spans("a large cat", "a")])
    res = apply_masking(caps, "keywords-authors", np.random.default_rng(0), backbone.tokenize,
                        backbone.placeholder_id, backbone.context_length, spans)
    assert res.how[0] == RANDOM_WORD_FALLBACK and res.texts[0].count(PLACEHOLDER) == 1
    assert res.texts[1] in ("$ l$rge c$t", "a photo of $")  # kept, or the template if $ did not tokenise as a word
    # No hit at all (the joined span is not in the caption): the random-word fallback.
    assert mask_keywords_authors("five-pointed star", [(0, 4)], np.random.default_rng(0)).count(PLACEHOLDER) == 1


# --- SEARLE ------------------------------------------------------------------------------------------------

def test_concept_file_is_read_and_checked(tmp_path):
    p = tmp_path / "concepts.tsv"
    p.write_text("# comment\nred circle\ta big red circle on the left\ndog\ta dog on a sofa\n", encoding="utf-8")
    bank = read_concepts(p)
    assert bank == {"red circle": ["a big red circle on the left"], "dog": ["a dog on a sofa"]}
    assert mask_concept("a dog on a sofa", "dog") == "a $ on a sofa"
    assert mask_concept("a big dog, on a sofa", "dog") == "a big $ , on a sofa"  # "$," would be one BPE token
    p.write_text("cat\ta dog on a sofa\n", encoding="utf-8")
    with pytest.raises(LincirError, match=r"concepts.tsv:1: .*'cat'"):
        read_concepts(p)
    p.write_text("cat a cat\n", encoding="utf-8")
    with pytest.raises(LincirError, match=r"concepts.tsv:1: expected"):
        read_concepts(p)


def _stage1_inputs(backbone, n=6):
    from lincir.train.searle import concept_bank

    g = torch.Generator().manual_seed(3)
    feats = torch.randn(n, backbone.embed_dim, generator=g)
    bank = concept_bank(TrainConfig())
    concepts = sorted(bank)[:n]
    return feats, bank, concepts


def test_searle_stage1_lowers_its_loss_and_is_deterministic(backbone):
    from lincir.train.searle import invert_batch

    feats, bank, concepts = _stage1_inputs(backbone)
    cfg = TrainConfig(oti_steps=25, oti_lr=5e-2)
    template = backbone.tokenize(["a photo of $"])
    scale = float(backbone.model.token_embedding.weight.float().std())
    phrases = [bank[c][0] for c in concepts]

    def loss_of(tokens):
        with torch.no_grad():
            return float(oti_loss(backbone, tokens, feats, template,
                                  backbone.tokenize([mask_concept(p, c) for p, c in zip(phrases, concepts)]),
                                  backbone.encode_texts(phrases).float(), cfg.oti_concept_weight))

    start = invert_batch(backbone, feats, concepts, bank, range(6), dataclasses.replace(cfg, oti_steps=0), template, scale)
    a = invert_batch(backbone, feats, concepts, bank, range(6), cfg, template, scale)
    b = invert_batch(backbone, feats, concepts, bank, range(6), cfg, template, scale)
    assert torch.equal(a, b)
    # image term alone (the phrase each image got is keyed by its position; 0 weight removes that choice)
    cfg0 = dataclasses.replace(cfg, oti_concept_weight=0.0)
    a0 = invert_batch(backbone, feats, concepts, bank, range(6), cfg0, template, scale)
    with torch.no_grad():
        before = float(oti_loss(backbone, start, feats, template, template, feats, 0.0))
        after = float(oti_loss(backbone, a0, feats, template, template, feats, 0.0))
    assert after < 0.8 * before
    # a token does not depend on which batch it was optimised in
    half = invert_batch(backbone, feats[3:], concepts[3:], bank, range(3, 6), cfg0, template, scale)
    assert torch.allclose(half, a0[3:], atol=1e-5)
    assert loss_of(a) < loss_of(start)


def test_searle_stage1_tokens_are_cached_by_content(backbone, monkeypatch):
    from lincir.train import searle

    feats = np.random.default_rng(0).standard_normal((5, backbone.embed_dim)).astype(np.float32)
    cfg = TrainConfig(oti_steps=3)
    calls = []
    real = searle._invert
    monkeypatch.setattr(searle, "_invert", lambda *a, **k: calls.append(1) or real(*a, **k))
    t1 = searle.invert_images(backbone, feats, cfg)
    t2 = searle.invert_images(backbone, feats, cfg)
    assert len(calls) == 1 and np.array_equal(np.asarray(t1), np.asarray(t2))
    searle.invert_images(backbone, feats, dataclasses.replace(cfg, oti_steps=4))  # a setting changed
    feats[0, 0] += 1.0
    searle.invert_images(backbone, feats, cfg)  # the images changed
    assert len(calls) == 3


def test_searle_stage1_tokens_are_cached_per_thread_count(monkeypatch):
    """Stage 1 runs at its caller's thread count (a job's one-thread workers), and its last bits depend on it: an
    entry another count filled must not be read back (5 steps on 100 features: 48 tokens differ on this machine).
    On a CPU where the two counts agree the bits cannot show it, but the count of calls still does."""
    from lincir.models.backbones import load_backbone
    from lincir.train import searle

    bb = load_backbone("scenes-clip-s", "pretrained")
    feats = np.random.default_rng(0).standard_normal((100, bb.embed_dim)).astype(np.float32)
    cfg = TrainConfig(oti_steps=5, concepts="scenes")
    calls = []
    real = searle._invert
    monkeypatch.setattr(searle, "_invert", lambda *a, **k: calls.append(torch.get_num_threads()) or real(*a, **k))

    def tokens(threads: int, **k) -> np.ndarray:
        torch.set_num_threads(threads)
        return np.asarray(searle.invert_images(bb, feats, cfg, **k))

    one = tokens(1)  # cached by a one-thread caller
    two = tokens(2)  # a two-thread caller computes its own entry ...
    assert calls == [1, 2]
    assert np.array_equal(two, tokens(2, use_cache=False))  # ... with its own bits
    assert np.array_equal(tokens(1), one) and np.array_equal(tokens(2), two) and calls == [1, 2, 2]


def test_searle_stage2_distillation_trains():
    g = torch.Generator().manual_seed(0)
    feats, tokens = torch.randn(32, D, generator=g), torch.randn(32, 16, generator=g)
    phi = Phi.seeded(D, 16, 0, dropout=0.0)
    opt = torch.optim.AdamW(phi.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = searle_distillation_loss(phi, feats, tokens, None)
        first = first if first is not None else float(loss.detach())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first


def test_train_searle_end_to_end_resumes_bit_for_bit(tmp_path):
    from lincir.models.phi_checkpoints import load_phi
    from lincir.train.loop import train

    cfg = TrainConfig(objective="searle", weights="random", world_images=48, oti_steps=3, steps=6, batch_size=8,
                      save_every=3, device="cpu")
    full = train(cfg, tmp_path / "full", progress=False)
    assert full.steps_done == 6 and all(math.isfinite(v) for _, v in full.losses)
    train(dataclasses.replace(cfg, steps=3), tmp_path / "part", progress=False)
    train(cfg, tmp_path / "part", resume=True, progress=False)
    a, meta = load_phi(tmp_path / "full")
    b, _ = load_phi(tmp_path / "part")
    assert meta["objective"] == "searle"
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


# --- the main job and the ablations carry the new rows ------------------------------------------------------

def test_main_job_and_ablations_plan_the_new_runs():
    from lincir.experiments.ablations import literature_variant, plan_for
    from lincir.experiments.main_job_config import PRESETS

    for job in PRESETS.values():
        runs = dict(job.runs())
        assert all(runs[f"searle-s{s}"].objective == "searle" for s in job.seeds)  # every seed, as the others
        assert runs[f"searle-s{job.seeds[0]}"].oti_images == job.oti_images
        c3 = runs[f"lincir-c3-s{job.seeds[0]}"]
        assert (c3.noise, c3.noise_space, c3.center, c3.renormalize) == ("gaussian", "normalised", True, True)
        assert c3.noise_scale == pytest.approx(CAPDEC_SCALE)
        assert literature_variant(job, job.seeds[0], "c3") == c3  # notebook 03 reuses the main job's phi
        assert "keywords-authors" in plan_for(job).maskings and "keywords-authors" in plan_for(job, quick=True).maskings
        for cfg in runs.values():
            cfg.validate()


def test_stats_cells_carry_n_and_an_interval():
    from lincir.experiments.stats import mean_std

    c = mean_std([1.0, 2.0, 3.0])
    assert c["n"] == 3 and c["std"] == pytest.approx(1.0)  # sample std (n - 1), not the population's 0.816
    assert c["ci95"] == pytest.approx(4.303 * 1.0 / math.sqrt(3))
    assert mean_std([5.0])["ci95"] is None and mean_std([5.0])["std"] == 0.0


def test_symmetric_nt_xent_matches_its_definition():
    from lincir.core.losses import symmetric_nt_xent

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g) * 4.0
    z = torch.nn.functional.normalize(torch.cat([a, b]), dim=-1)
    total = 0.0
    for i in range(10):  # each row against the 9 others, its partner the positive
        j = (i + 5) % 10
        logits = torch.tensor([float(z[i] @ z[k]) / 0.25 for k in range(10) if k != i])
        pos = float(z[i] @ z[j]) / 0.25
        total += -(pos - torch.logsumexp(logits, 0).item())
    assert float(symmetric_nt_xent(a, b, 0.25)) == pytest.approx(total / 10, rel=1e-5)
    assert float(symmetric_nt_xent(a, 3.0 * b, 0.25)) == pytest.approx(total / 10, rel=1e-5)  # scale-invariant


def test_searle_stage2_phrases_are_keyed_per_image_and_step(backbone):
    from lincir.train.searle import StagePhrases

    feats = torch.randn(12, backbone.embed_dim, generator=torch.Generator().manual_seed(1))
    ph = StagePhrases(backbone, feats, TrainConfig(seed=5))
    tok_a, tgt_a = ph.batch(torch.tensor([3, 7, 9]), step=2)
    tok_b, tgt_b = ph.batch(torch.tensor([9, 3]), step=2)  # another batch: the same image, the same phrase
    assert torch.equal(tok_a[2], tok_b[0]) and torch.equal(tgt_a[0], tgt_b[1])
    rows = [ph.batch(torch.tensor([3]), step=s)[1] for s in range(12)]
    assert len({tuple(r.flatten().tolist()) for r in rows}) > 1  # drawn afresh per step
    assert (tok_a == backbone.placeholder_id).any(dim=1).all()


def test_searle_stage2_concept_regulariser_adds_to_the_loss(backbone):
    from lincir.train.searle import StagePhrases

    feats = torch.randn(8, backbone.embed_dim, generator=torch.Generator().manual_seed(2))
    tokens = torch.randn(8, backbone.token_width, generator=torch.Generator().manual_seed(3))
    phi = Phi.for_backbone(backbone, 0, dropout=0.0)
    ph = StagePhrases(backbone, feats, TrainConfig())
    pt, tg = ph.batch(torch.arange(8), 0)
    plain = float(searle_distillation_loss(phi, feats, tokens, None))
    reg = float(searle_distillation_loss(phi, feats, tokens, None, backbone=backbone, phrase_tokens=pt,
                                         phrase_targets=tg, concept_weight=0.25))
    assert reg > plain


def test_equal_time_comparison_on_a_tiny_job(tmp_path, monkeypatch):
    from lincir.eval import world_benchmark as W
    from lincir.experiments.equal_time import equal_time_runs, run_equal_time
    from lincir.experiments.main_job_config import MainJobConfig

    monkeypatch.setitem(W.SIZES, "tiny", (60, 20))
    job = MainJobConfig(weights="random", seeds=(0,), steps=4, world_captions=64, world_images=48, noises=("lincir",),
                        size="tiny", oti_images=16, oti_steps=2, noise_variants=())
    runs = equal_time_runs(job, 2.0)
    assert [m for m, *_ in runs] == ["lincir", "pic2word", "searle"]
    assert all(c.max_seconds == 2.0 and c.steps > 10 ** 5 for *_, c in runs)
    with pytest.raises(LincirError, match="budget"):
        equal_time_runs(job, 0.0)
    res = run_equal_time(job, 2.0, tmp_path, log=lambda *_: None)
    assert set(res["methods"]) == {"lincir", "pic2word", "searle"}
    for m, cell in res["methods"].items():
        assert cell["steps"][0] >= 1 and 0.0 <= cell["R@10"]["mean"] <= 100.0
        assert cell["train_seconds"][0] <= 2.0 + 1.0  # the clock stops it (one step may run over)
    s1 = res["methods"]["searle"]["stage1_seconds"][0]
    assert s1 > 0 and res["methods"]["searle"]["train_seconds"][0] <= 2.0 - s1 + 1.0
    assert json.loads((tmp_path / "equal_time.json").read_text())["budget_seconds"] == 2.0
    if "R@10" in res["methods"]["searle"]:  # stage 1 left time for phi: paired against LinCIR seed by seed
        d = res["minus_lincir"]["searle"]["R@10"]
        assert d["values"] == [a - b for a, b in zip(res["methods"]["searle"]["R@10"]["values"],
                                                      res["methods"]["lincir"]["R@10"]["values"])]
    assert res["minus_lincir"]["pic2word"]["R@10"]["n"] == 1
    with pytest.raises(LincirError, match="already holds"):
        run_equal_time(job, 2.0, tmp_path, log=lambda *_: None)


def test_a_c3_phi_checkpoint_tells_the_evaluator_how_it_was_fed(tmp_path):
    # `lincir evaluate` reads how phi was trained from phi.json; a C3 phi must get centred, re-normalised input.
    from lincir.models.backbones import load_backbone
    from lincir.models.phi_checkpoints import load_phi_checkpoint
    from lincir.train.loop import train

    cfg = TrainConfig(weights="random", world_captions=64, steps=2, batch_size=8, save_every=2, device="cpu",
                      noise="gaussian", noise_scale=CAPDEC_SCALE, noise_space="normalised", center=True,
                      renormalize=True)
    train(cfg, tmp_path / "c3", progress=False)
    phi = load_phi_checkpoint(tmp_path / "c3", load_backbone("shapes-clip", "random"))
    assert (phi.input_space, phi.input_centered, phi.input_renormalized) == ("normalised", True, True)
    with pytest.raises(LincirError, match="--noise-space"):
        TrainConfig(objective="pic2word", renormalize=True).validate()
