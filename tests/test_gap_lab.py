"""Notebook 01's modality-gap lab: the norm/direction split, phi's input statistics and response, the cone
effect at random initialisation, notebook 03's reference shift, where noisy captions land, and the figures drawn
from those numbers. Fast, CPU only."""
import math

import matplotlib
import numpy as np
import pytest
import torch

from lincir.core.phi import Phi
from lincir.experiments import gap as G

matplotlib.use("Agg")


def test_the_split_equals_a_hand_computation():
    x, y = torch.tensor([[3.0, 4.0]]), torch.tensor([[1.0, 0.0]])  # |x| 5, |y| 1, cos 3/5, |x - y|^2 = 20
    s = G.norm_direction_split(x, y)
    assert s["norm_part"] == pytest.approx(4.0)  # (5 - 1)^2 = 16
    assert s["direction_part"] == pytest.approx(2.0)  # 2 * 5 * 1 * (1 - 3/5) = 4
    assert s["rms_distance"] == pytest.approx(math.sqrt(20.0)) and s["mean_distance"] == pytest.approx(math.sqrt(20))
    assert s["norm_share"] == pytest.approx(0.8) and s["norm_ratio"] == pytest.approx(5.0)
    assert s["normalised_distance"] == pytest.approx(math.sqrt(2 * (1 - 0.6)))


def test_the_split_adds_up_and_isolates_each_part():
    g = torch.Generator().manual_seed(0)
    images, texts = 5.0 * torch.randn(200, 16, generator=g) + 3.0, torch.randn(200, 16, generator=g)
    s = G.norm_direction_split(images, texts)
    assert s["norm_part"] ** 2 + s["direction_part"] ** 2 == pytest.approx(s["rms_distance"] ** 2, rel=1e-9)
    assert s["mean_distance"] == pytest.approx(float((images - texts).norm(dim=-1).mean()), rel=1e-5)
    same_way = G.norm_direction_split(4.0 * texts, texts)  # parallel: all norm
    assert same_way["direction_part"] == pytest.approx(0.0, abs=1e-5) and same_way["norm_share"] == pytest.approx(1.0)
    rotated = torch.flip(texts, dims=[1])  # same norms, other directions: all direction
    assert G.norm_direction_split(rotated, texts)["norm_part"] == pytest.approx(0.0, abs=1e-5)


def test_input_statistics_and_the_test_to_train_ratio():
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    st = G.input_statistics(x)
    assert st["norm_mean"] == pytest.approx(3.5) and st["norm_std"] == pytest.approx(float(torch.tensor([5., 2.]).std()))
    assert st["coordinate_rms"] == pytest.approx(math.sqrt((9 + 16 + 0 + 4) / 4))
    texts = torch.randn(100, 8, generator=torch.Generator().manual_seed(1))
    p = G.phi_inputs(5.0 * texts, texts, "none")
    assert p["ratio"]["image_to_caption"] == pytest.approx(5.0) and p["ratio"]["image_to_noisy_caption"] == pytest.approx(5.0)
    noisy = G.phi_inputs(5.0 * texts, texts, "lincir", seed=2)
    assert noisy == G.phi_inputs(5.0 * texts, texts, "lincir", seed=2)  # seeded
    assert noisy["train: caption + lincir noise"]["norm_mean"] > p["train: caption"]["norm_mean"]


def test_phi_response_without_a_backbone():
    phi = Phi.seeded(16, 8, seed=0)
    phi.train()
    g = torch.Generator().manual_seed(3)
    texts, images = torch.randn(40, 16, generator=g), 5.0 * torch.randn(40, 16, generator=g)
    r = G.phi_response(phi, images, texts, scales=(0.5, 1.0, 2.0))
    assert phi.training  # restored
    assert r["tokens"]["caption"]["cos_to_caption_token"] == pytest.approx(1.0, abs=1e-6)
    one = next(row for row in r["scaling"] if row["factor"] == 1.0)
    assert one["cos_to_unscaled"] == pytest.approx(1.0, abs=1e-6) and one["norm_ratio"] == pytest.approx(1.0)
    rescaled = r["tokens"]["image rescaled to its caption's norm"]
    assert rescaled["input_norm"] == pytest.approx(r["tokens"]["caption"]["input_norm"], rel=1e-5)
    assert r["composed"] == {} and r == G.phi_response(phi, images, texts, scales=(0.5, 1.0, 2.0))  # deterministic


def test_phi_with_zero_biases_and_relu_like_inputs_is_homogeneous():
    """A bias-free phi is exactly positively homogeneous where GELU is ReLU: the reason test-time inputs five
    times longer keep the token's direction."""
    phi = Phi.seeded(8, 4, seed=1)
    for layer in phi.layers:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.zeros_(layer.bias)
    x = 50.0 * torch.randn(30, 8, generator=torch.Generator().manual_seed(0))  # large: GELU ~ ReLU
    r = G.phi_response(phi, x, x / 5.0, scales=(2.0, 5.0))
    for row in r["scaling"]:
        assert row["cos_to_unscaled"] > 0.999 and row["norm_ratio"] == pytest.approx(row["factor"], rel=0.01)


def test_reference_shift_moves_the_images_alone_by_the_mean_norm():
    g = torch.Generator().manual_seed(4)
    texts = torch.randn(100, 8, generator=g)
    images = torch.randn(100, 8, generator=g) * 0.3 + 2.0
    assert torch.equal(G.reference_shift(images, texts, 0.0), images)
    moved = G.reference_shift(images, texts, 1.5)
    step = (moved - images).norm(dim=-1)
    assert torch.allclose(step, torch.full_like(step, 1.5 * float(images.norm(dim=-1).mean())), rtol=1e-5)
    rows = G.reference_shift_gaps(images, texts, (0.0, 0.5, 1.0, 2.0))
    assert rows[0]["gap"] == pytest.approx(float(G.gap_vector(images, texts).norm()), rel=1e-6)  # a = 0: natural
    gaps = [r["gap"] for r in rows]
    assert gaps == sorted(gaps) and gaps[-1] > gaps[0]  # 03's shift widens the gap
    cos = [r["matched_cos"] for r in rows]
    assert cos == sorted(cos, reverse=True)


def test_noise_landing_is_seeded_and_none_lands_on_the_captions():
    g = torch.Generator().manual_seed(5)
    texts, images = torch.randn(60, 12, generator=g), 4.0 * torch.randn(60, 12, generator=g) + 1.0
    project = G.landing_projector(images, texts)
    a = G.noise_landing(images, texts, "gaussian", 2.0, project, seed=1, show=20)
    b = G.noise_landing(images, texts, "gaussian", 2.0, project, seed=1, show=20)
    assert np.array_equal(a["noisy"], b["noisy"]) and a["noisy"].shape == (20, 2)
    assert a["noise_norm"] == pytest.approx(2.0 * math.sqrt(12), rel=0.25)
    none = G.noise_landing(images, texts, "none", 0.0, project)
    assert np.allclose(none["noisy"], none["texts"]) and none["noise_norm"] == 0.0


def test_isotropic_baseline_is_near_zero_and_seeded():
    assert abs(G.isotropic_cosine(128)) < 0.01
    assert G.isotropic_cosine(64, 200, seed=3) == G.isotropic_cosine(64, 200, seed=3)


def test_the_cone_effect_at_random_initialisation_and_the_temperature_pair():
    from lincir.models.backbones import load_backbone

    rand = load_backbone("shapes-clip", "random")
    pairs = G.world_pairs(rand, 64, seed=0)
    again = G.world_pairs(rand, 64, seed=0)
    assert torch.equal(pairs.images, again.images) and torch.equal(pairs.texts, again.texts)  # deterministic
    geo = G.geometry(pairs.images, pairs.texts)
    assert geo["image_image_cos"] > 0.5 and geo["text_text_cos"] > 0.3  # narrow cones ...
    assert abs(geo["isotropic_cos"]) < 0.05  # ... where random directions would average 0
    assert geo["gap"] > 0.5  # ... and apart, before any training
    assert abs(geo["matched_cos"] - geo["unmatched_cos"]) < 0.05  # untrained: pairs are not aligned
    trained = load_backbone("shapes-clip")
    assert G.logit_scale_of(trained) == pytest.approx(100.0, rel=1e-3)
    lowgap = load_backbone("shapes-clip-lowgap")
    assert G.logit_scale_of(lowgap) < 50
    hi, lo = (G.geometry(f.images, f.texts) for f in (G.reencode(b, pairs) for b in (trained, lowgap)))
    assert lo["gap"] < hi["gap"] and hi["matched_cos"] > hi["unmatched_cos"]
    phi = Phi.for_backbone(rand, seed=0)
    r = G.phi_response(phi, pairs.images[:16], pairs.texts[:16], rand)
    assert set(r["composed"]) == set(r["tokens"]) and 0.0 <= r["composed"]["image"]["caption_R@1"] <= 100.0
    assert r["word_token_norm"] > 0


def test_lab_figures_draw_noisy_points_on_top_and_keep_narrow_histograms_visible():
    import matplotlib.pyplot as plt

    from lincir.report import plotting

    g = torch.Generator().manual_seed(6)
    texts, images = torch.randn(40, 10, generator=g), 4.0 * torch.randn(40, 10, generator=g)
    project = G.landing_projector(images, texts)
    grid = [G.noise_landing(images, texts, k, a, project) for k in ("gaussian", "lincir") for a in (1.0, 4.0)]
    fig = plotting.noise_landing_grid(grid, ["gaussian", "lincir"], [1.0, 4.0])
    ax = fig.axes[0]
    z = {c.get_label(): c.get_zorder() for c in ax.collections}
    assert z["captions + noise"] > z["caption features"] > z["image features"]
    assert all(t.get_fontsize() >= 9 for a in fig.axes for t in [a.title])
    plt.close(fig)
    fig, ax = plt.subplots()
    plotting.norm_histograms(ax, {"wide": np.random.default_rng(0).normal(100, 25, 500).clip(20),
                                  "narrow": np.random.default_rng(1).normal(21, 1, 500)}, {"wide": "b", "narrow": "r"})
    assert ax.get_xscale() == "log"
    narrow_heights = [p.get_height() for p in ax.patches[-59:]]
    assert max(narrow_heights) >= 20  # a narrow distribution still stands out on shared log bins
    plt.close(fig)
    fig = plotting.pair_thumbnails(np.zeros((3, 8, 8, 3), np.uint8), ["a", "b", "c"])
    assert all(not a.get_title() for a in fig.axes)  # captions under the images: no titles to collide
    plt.close(fig)
