"""World CLIPs: pixel fast path parity, evaluation maths, the training loss, a smoke run, the shipped weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lincir.core.modality_gap import modality_gap
from lincir.world.attributes import ATTRIBUTE_NAMES, all_combinations, attribute_codes, random_attributes
from lincir.world.clip_eval import pair_cosines, zero_shot_accuracy
from lincir.world.clip_training import contrastive_loss, preset, sample_batch, soft_targets
from lincir.world.data import clip_pairs
from lincir.world.pixels import images_to_tensor


def test_pixel_fast_path_equals_open_clip_preprocess():
    from PIL import Image

    from lincir.models.backbones import load_backbone

    backbone = load_backbone("shapes-clip", weights="random")
    images = clip_pairs(4, seed=9).images
    reference = torch.stack([backbone.preprocess(Image.fromarray(im)) for im in images])
    fast = images_to_tensor(images)
    assert fast.shape == reference.shape == (4, 3, 64, 64)
    assert (fast - reference).abs().max().item() < 1e-5


def test_zero_shot_accuracy_on_constructed_features():
    combos = all_combinations()
    text = torch.eye(len(combos))  # one direction per combination prompt
    attrs = [combos[i] for i in (0, 5, 700, 1151)]
    codes = attribute_codes(attrs)
    img = text[[a.index() for a in attrs]].clone()
    perfect = zero_shot_accuracy(img, text, codes)
    assert perfect["combination"] == 1.0 and set(perfect["attribute"].values()) == {1.0}
    # Image 0 points at the prompt that differs from its truth only in colour: colour wrong, the rest right.
    wrong = attrs[0].replace(colour="blue")
    img[0] = text[wrong.index()]
    acc = zero_shot_accuracy(img, text, codes)
    assert acc["combination"] == 0.75 and acc["attribute"]["colour"] == 0.75
    assert acc["attribute"]["shape"] == 1.0 and acc["attribute_from_combination"]["colour"] == 0.75


def test_gap_and_cosines_by_hand():
    img = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    txt = torch.tensor([[0.0, 3.0], [1.0, 0.0]])
    assert modality_gap(img, txt) == pytest.approx(0.0)
    assert modality_gap(img, -txt) == pytest.approx(np.sqrt(2.0))
    matched, rand = pair_cosines(img, txt)
    assert matched == pytest.approx(0.0) and rand == pytest.approx(1.0)


def test_soft_targets_follow_mentioned_attributes():
    codes = np.array([[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0]])
    mentioned = np.ones((3, 5), dtype=bool)
    mentioned[0, ATTRIBUTE_NAMES.index("background")] = False  # caption 0 does not say the background
    match = soft_targets(codes, mentioned)
    assert match.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_contrastive_loss_matches_cross_entropy_with_hard_targets():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    scale = torch.tensor(10.0)
    logits = scale * torch.nn.functional.normalize(txt, dim=-1) @ torch.nn.functional.normalize(img, dim=-1).T
    ce = torch.nn.functional.cross_entropy
    expected = (ce(logits, torch.arange(5)) + ce(logits.T, torch.arange(5))) / 2
    assert torch.allclose(contrastive_loss(img, txt, scale, torch.eye(5)), expected, atol=1e-6)


def test_grouped_batches_share_attributes():
    cfg = preset("shapes-clip", batch_size=32, n_groups=2, group_size=8)
    codes = attribute_codes(random_attributes(np.random.default_rng(0), 2000))
    idx = sample_batch(codes, cfg, np.random.default_rng(1))
    assert idx.shape == (32,)
    for g in range(2):
        group = codes[idx[g * 8:(g + 1) * 8]]
        assert (group == group[0]).all(axis=0).sum() >= cfg.shared


def test_smoke_training_through_the_cli(tmp_path):
    from lincir.cli import main

    assert main(["world", "train-clip", "--preset", "smoke", "--out", str(tmp_path), "--steps", "3",
                 "--stop-at", "2", "--eval-every", "2"]) == 0
    meta = json.loads((tmp_path / "smoke.json").read_text())
    assert meta["steps"] == 2 and meta["config"]["steps"] == 3  # stopped early on a 3-step schedule
    assert meta["partial"] is False and meta["dtype"] == "float16" and len(meta["eval_history"]) == 1
    assert meta["model_config"] == "shapes-clip" and "train-clip" in meta["command"]
    for key in ("combination", "attribute", "gap", "matched_cos", "random_cos"):
        assert key in meta["eval"]
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "smoke.safetensors"))
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    # The result loads as a backbone checkpoint.
    from lincir.models.backbones import load_backbone

    backbone = load_backbone("shapes-clip", weights=str(tmp_path / "smoke.safetensors"))
    assert backbone.context_length == 32 and backbone.embed_dim == 128


@pytest.mark.parametrize("name", ["shapes-clip", "shapes-clip-lowgap"])
def test_shipped_world_clips_load_through_the_registry(name):
    from lincir.models.backbones import ASSETS, load_backbone

    meta = json.loads((ASSETS / f"{name}.json").read_text())
    for key in ("model_config", "command", "config", "seed", "train_seconds", "steps", "eval", "dtype", "versions"):
        assert key in meta, key
    backbone = load_backbone(name)
    images = clip_pairs(2, seed=0, split="clip_eval").images
    with torch.no_grad():
        feats = backbone.encode_images(images_to_tensor(images))
    assert feats.shape == (2, backbone.embed_dim) and torch.isfinite(feats).all()
    assert backbone.placeholder_id == backbone.tokenizer.encoder["$</w>"]


def test_shipped_weights_fit_the_size_budget():
    from lincir.models.backbones import ASSETS

    sizes = [(ASSETS / f"{n}.safetensors").stat().st_size for n in ("shapes-clip", "shapes-clip-lowgap")]
    assert sum(sizes) < 40e6
