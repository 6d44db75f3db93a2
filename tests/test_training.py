"""Text-only training on the shapes world with a random-init world CLIP: the loss falls, runs are exact."""
import json

import pytest
import torch
from safetensors.torch import load_file

from lincir.errors import LincirError
from lincir.train.config import TrainConfig
from lincir.train.loop import train

TINY = dict(backbone="shapes-clip", weights="random", world_captions=400, batch_size=16, log_every=2,
            save_every=4, device="cpu")


def _phi(out):
    return load_file(str(out / "phi.safetensors"))


def test_loss_falls(tmp_path):
    res = train(TrainConfig(**{**TINY, "steps": 40, "lr": 1e-3, "log_every": 5}), tmp_path / "run", progress=False)
    first, last = res.losses[0][1], res.losses[-1][1]
    assert last < 0.8 * first, res.losses
    meta = json.loads((tmp_path / "run" / "phi.json").read_text())
    assert meta["backbone"] == "shapes-clip" and meta["step"] == 40


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    cfg = TrainConfig(**{**TINY, "steps": 6})
    train(cfg, tmp_path / "a", progress=False)
    train(cfg, tmp_path / "b", progress=False)
    train(TrainConfig(**{**TINY, "steps": 6, "seed": 1}), tmp_path / "c", progress=False)
    a, b, c = ((tmp_path / x / "phi.safetensors").read_bytes() for x in "abc")
    assert a == b and a != c


def test_interrupted_run_resumes_to_the_same_phi(tmp_path):
    cfg = TrainConfig(**{**TINY, "steps": 10})
    train(cfg, tmp_path / "whole", progress=False)

    def interrupt_at_6(step, phi):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**{**TINY, "steps": 10, "val_every": 3}), tmp_path / "cut", progress=False,
              callbacks=[interrupt_at_6])
    assert not (tmp_path / "cut" / "phi.safetensors").exists()
    train(TrainConfig(**{**TINY, "steps": 10}), tmp_path / "cut", resume=True, progress=False)
    whole, cut = _phi(tmp_path / "whole"), _phi(tmp_path / "cut")
    assert all(torch.equal(whole[k], cut[k]) for k in whole)
    steps = [json.loads(l)["step"] for l in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps))  # the log holds each step once, in order


def test_existing_run_is_refused(tmp_path):
    cfg = TrainConfig(**{**TINY, "steps": 2})
    train(cfg, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "phi.safetensors").read_bytes()
    with pytest.raises(LincirError, match="already holds a run"):
        train(cfg, tmp_path / "run", progress=False)
    assert (tmp_path / "run" / "phi.safetensors").read_bytes() == before


def test_out_of_range_options_are_named():
    with pytest.raises(LincirError, match="--batch-size"):
        TrainConfig(batch_size=0).validate()
    with pytest.raises(LincirError, match="--noise"):
        TrainConfig(noise="loud").validate()


def test_runs_of_one_seed_mask_their_corpus_once(tmp_path, monkeypatch):
    import lincir.data.keywords as keywords
    from lincir.train import loop

    calls = []
    real = keywords.mask_captions
    monkeypatch.setattr(keywords, "mask_captions", lambda *a, **k: calls.append(k["seed"]) or real(*a, **k))
    texts = {}
    for name, cfg in {"none": TINY, "lincir": {**TINY, "noise": "lincir"}, "seed 1": {**TINY, "seed": 1},
                      "none again": TINY}.items():
        train(TrainConfig(**{**cfg, "steps": 2}), tmp_path / name, progress=False)
        texts[name] = list(loop._MASKED.values())[-1]
    # The noise arms of seed 0 share one masking; seed 1 draws its own; the first is still kept.
    assert calls == [0, 1]
    assert texts["none"] == texts["lincir"] == texts["none again"] != texts["seed 1"]
    assert texts["none"] == tuple(real(loop._load_captions(TrainConfig(**TINY), 77)[0], "keywords", seed=0,
                                       backbone=_backbone()))
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "another-cache"))  # a cold cache is cold in memory too
    train(TrainConfig(**{**TINY, "steps": 2}), tmp_path / "cold", progress=False)
    assert calls == [0, 1, 0]


def _backbone():
    from lincir.models.backbones import load_backbone

    return load_backbone("shapes-clip", "random", "cpu")


def test_a_corpus_over_the_bound_is_masked_per_run(tmp_path, monkeypatch):
    from lincir.train import loop

    monkeypatch.setattr(loop, "MASKED_MAX_CAPTIONS", 399)  # TINY's corpus holds 400
    for name in ("a", "b"):
        train(TrainConfig(**{**TINY, "steps": 1}), tmp_path / name, progress=False)
    assert loop._MASKED == {}
