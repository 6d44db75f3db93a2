"""The scenes main job and what it stands on: the shipped scenes CLIPs (pruned token embeddings, loaded through
the registry), the variance-outside-the-text-span measure, the scenes corpus and image sources, and the JSON."""
import dataclasses
import json

import pytest
import torch

from lincir.core.modality_gap import variance_outside_span
from lincir.models.pruned_embedding import KEPT_IDS, expand_token_embedding, prune_token_embedding


def test_prune_then_expand_gives_back_the_kept_rows_and_the_initialisation_elsewhere():
    g = torch.Generator().manual_seed(0)
    trained, init = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    pruned = prune_token_embedding({"token_embedding.weight": trained, "x": torch.ones(2)}, [7, 3, 3, 49])
    assert pruned["token_embedding.weight"].shape == (3, 4) and pruned[KEPT_IDS].tolist() == [3, 7, 49]
    full = expand_token_embedding(pruned, init)
    assert KEPT_IDS not in full and torch.equal(full["x"], torch.ones(2))
    w = full["token_embedding.weight"]
    assert torch.equal(w[[3, 7, 49]], trained[[3, 7, 49]]) and torch.equal(w[:3], init[:3])
    with pytest.raises(ValueError):
        prune_token_embedding({"token_embedding.weight": trained}, [50])
    with pytest.raises(ValueError):
        expand_token_embedding(pruned, torch.zeros(50, 5))
    assert expand_token_embedding({"a": trained}, init) == {"a": trained}  # an unpruned state passes as it is


def test_variance_outside_span_matches_a_projection_by_hand():
    g = torch.Generator().manual_seed(1)
    basis = torch.linalg.qr(torch.randn(8, 8, generator=g))[0]
    texts = torch.randn(200, 3, generator=g) @ basis[:, :3].T  # a 3-dim span
    inside = torch.randn(100, 3, generator=g) @ basis[:, :3].T
    assert variance_outside_span(inside + 5 * basis[:, 0], texts, 0.999)["fraction"] < 1e-6
    off = torch.randn(100, 5, generator=g) @ basis[:, 3:].T
    assert variance_outside_span(off, texts, 0.999)["fraction"] > 0.999
    mixed = torch.randn(300, 8, generator=g)
    got = variance_outside_span(mixed, texts, 0.999)
    # by hand: normalise, centre, project on the text side's top principal directions
    x = torch.nn.functional.normalize(mixed.double(), dim=-1)
    x = x - x.mean(0)
    t = torch.nn.functional.normalize(texts.double(), dim=-1)
    _, _, vh = torch.linalg.svd(t - t.mean(0), full_matrices=False)
    k = got["text_dims"]
    want = 1 - float(((x @ vh[:k].T) ** 2).sum() / (x ** 2).sum())
    assert got["fraction"] == pytest.approx(want, abs=1e-9) and 2 <= k <= 4 and got["dims"] == 8


def test_world_token_ids_cover_the_query_template_and_fresh_captions():
    import open_clip

    from lincir.eval.methods import DEFAULT_TEMPLATE
    from lincir.world.clip_training import world_token_ids
    from lincir.world.scenes.data import benchmark, train_captions

    tok = open_clip.get_tokenizer("RN50")
    kept = world_token_ids(tok, n=2000)
    fresh = train_captions(500, seed=11, mention_scale=2.0) + [DEFAULT_TEMPLATE.format(text=q.text)
                                                               for q in benchmark(40, seed=5).queries]
    assert set(tok(fresh).flatten().tolist()) <= kept
    assert len(kept) < 400  # a few hundred of the 49,408


@pytest.mark.parametrize("name", ["scenes-clip-s", "scenes-clip-m", "scenes-clip-l"])
def test_shipped_scenes_clips_load_through_the_registry(name):
    from lincir.models.backbones import BACKBONES, SCENES_BACKBONES, WORLD_BACKBONES, asset_paths, load_backbone
    from lincir.storage import read_json

    assert name in SCENES_BACKBONES and name not in WORLD_BACKBONES and BACKBONES[name].world == "scenes"
    weights, meta_path = asset_paths(BACKBONES[name].asset)
    meta = read_json(meta_path)
    assert not meta["partial"] and meta["config"]["world"] == "scenes" and meta["shipped"]["bytes"] == weights.stat().st_size
    from lincir.world.clip_training import PRESETS

    # Shipped from the preset's recipe, the same for the three sizes (a retrained CLIP changes the preset too).
    assert meta["steps"] == PRESETS[name].steps
    assert meta["config"] == json.loads(json.dumps(dataclasses.asdict(PRESETS[name])))
    from safetensors.torch import load_file

    stored = load_file(str(weights))  # the file holds only the kept rows, and their ids
    rows = meta["shipped"]["token_embedding_rows_kept"]
    assert stored[KEPT_IDS].shape == (rows,) and stored["token_embedding.weight"].shape[0] == rows < 400
    bb = load_backbone(name)
    feats = bb.encode_texts(["a photo of a large red heart on a striped white background"])
    assert feats.shape == (1, bb.model.text_projection.shape[1]) and torch.isfinite(feats).all()
    # the loaded model is whole, and its kept rows are the file's
    w = bb.model.token_embedding.weight
    assert torch.equal(w[stored[KEPT_IDS]], stored["token_embedding.weight"].float())


def test_every_shipped_world_clip_together_is_under_100_mb():
    from lincir.models.backbones import ASSETS

    total = sum(p.stat().st_size for p in ASSETS.glob("*.safetensors"))
    assert total < 100e6, total


def test_scenes_corpus_and_images_are_embedded_sources(tmp_path):
    from lincir.train.config import TrainConfig
    from lincir.train.loop import _load_captions
    from lincir.world.scenes.data import train_captions

    cfg = TrainConfig(corpus="scenes", world_captions=30, seed=2)
    caps, _, source, sizes = _load_captions(cfg, 48)
    assert caps == train_captions(30, seed=2) and source == "scenes:30" and sizes == [30]
    from lincir.errors import LincirError
    from lincir.train.run_cache import config_key

    # the scenes world's version is in the run key; the shapes world's keys are as before (no such item)
    assert config_key(cfg) != config_key(dataclasses.replace(cfg, corpus="world"))
    with pytest.raises(LincirError, match="--corpus"):
        TrainConfig(corpus=["scenes", "x.txt"]).validate()


@pytest.mark.slow
def test_scenes_job_writes_every_number_with_the_variants(tmp_path, monkeypatch):
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "cache"))
    from lincir.experiments.scenes_job_config import PRESETS
    from lincir.experiments.scenes_main_job import run_scenes_job, table
    from lincir.experiments.scenes_variants import VARIANTS

    cfg = dataclasses.replace(PRESETS["quick"], steps=3, world_captions=200, world_images=64, oti_images=16,
                              oti_steps=1, span_captions=200, noise_variants=("capdec",), noise_scales=(0.5,))
    r = run_scenes_job(cfg, tmp_path / "job", progress=False, log=lambda m: None)
    b = r["backbones"]["scenes-clip-s"]
    for m in ("image", "image+text", "lincir (none noise)", "lincir (lincir noise)", "pic2word", "searle",
              "lincir (capdec noise)", "lincir (lincir at scale 0.5 noise)",
              "lincir, full caption fed to phi (none noise)", "slerp"):
        assert b["methods"][m]["R@10"]["n"] == (1 if m in ("image", "image+text", "slerp") else 2), m
    assert b["headroom_R@10"]["n"] == 2
    assert set(b["noise_gain_R@10"]) == {"lincir", "capdec", "lincir at scale 0.5"}
    assert 0 < b["variance_outside_text_span"]["fraction"] < 1
    assert 0 < r["shapes_contrast"]["variance_outside_text_span"]["fraction"] < 1
    assert set(r["scaling_R@10"]) == {"lincir (none noise)", "lincir (lincir noise)", "pic2word"}
    assert [v["name"] for v in r["variants"]] == [v["name"] for v in VARIANTS] and len(VARIANTS) >= 5
    assert r["coverage"]["benchmark_reference_full"]["context"] == 1.0
    assert "headroom" in table(r)
    assert r["timings"]["training"]["phis_trained_now"] == len(cfg.runs("scenes-clip-s"))
    assert cfg.corpus_seed == cfg.world_seed == 0
    # The same job with every phi trained in this process: the same numbers, bit for bit.
    one = run_scenes_job(cfg, tmp_path / "job-one-worker", progress=False, log=lambda m: None, workers=1)
    assert {k: v for k, v in one.items() if k != "timings"} == {k: v for k, v in r.items() if k != "timings"}
    with pytest.raises(Exception, match="already holds"):
        run_scenes_job(cfg, tmp_path / "job", progress=False, log=lambda m: None)

    # The notebooks read the results back for the same config, and run the job again for another.
    from lincir.experiments import scenes_main_job as J

    said = []
    assert J.scenes_results(cfg, tmp_path / "job", log=said.append) == json.loads(
        (tmp_path / "job" / "results.json").read_text(encoding="utf-8")) and "read" in said[0]
    monkeypatch.setattr(J, "run_scenes_job", lambda c, *a, **k: {"ran": c.steps})
    assert J.scenes_results(dataclasses.replace(cfg, steps=4), tmp_path / "job", log=said.append) == {"ran": 4}
    # ... and for the same config on retrained CLIPs (shipped anew under the same names and presets).
    assert r["clip_weights"] == J.clip_weights(cfg) and len(r["clip_weights"]["scenes-clip-s"]) == 16
    monkeypatch.setattr(J, "clip_weights", lambda c: {"scenes-clip-s": "another file"})
    assert J.scenes_results(cfg, tmp_path / "job", log=said.append) == {"ran": 3}

    # Every figure the notebooks draw from these results.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lincir.report import scenes_figures as SF

    for draw in (SF.why_figure, SF.noise_gain_figure, SF.scaling_figure, SF.methods_figure):
        plt.close(draw(r))


def test_world_seed_fixes_the_data_and_leaves_earlier_run_keys_alone():
    from lincir.train.config import TrainConfig
    from lincir.train.loop import _load_captions
    from lincir.train.loop import data_key as _data_key
    from lincir.train.run_cache import config_key
    from lincir.world.scenes.data import train_captions

    free = TrainConfig(corpus="scenes", world_captions=20, seed=3)
    fixed = dataclasses.replace(free, world_seed=0)
    assert _load_captions(free, 48)[0] == train_captions(20, seed=3)
    assert _load_captions(fixed, 48)[0] == train_captions(20, seed=0)  # one corpus, whatever the run's seed
    assert _load_captions(dataclasses.replace(fixed, seed=4), 48)[0] == train_captions(20, seed=0)
    # world_seed=None is left out of the key, so every run cached before it existed keeps its folder (these
    # keys were computed by the code before world_seed, b434c95)
    assert (config_key(free), config_key(TrainConfig())) == ("829f11f1ab5731ac", "ea2cd2c8360d8742")
    assert config_key(free) != config_key(fixed) != config_key(dataclasses.replace(fixed, world_seed=1))
    assert _data_key(fixed) == _data_key(dataclasses.replace(fixed, seed=4, noise="none"))
    assert _data_key(free) != _data_key(dataclasses.replace(free, seed=4))
    from lincir.errors import LincirError

    with pytest.raises(LincirError, match="--world-seed"):
        dataclasses.replace(free, world_seed=-1).validate()


@pytest.mark.slow
def test_trained_phis_are_the_same_bytes_with_one_or_two_workers(tmp_path, monkeypatch):
    """Phis train on one thread each, so training them side by side in worker processes changes no bit."""
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "cache"))
    from lincir.train.config import TrainConfig
    from lincir.train.run_cache import trained_phis

    base = TrainConfig(corpus="scenes", images="scenes", backbone="scenes-clip-s", world_captions=300,
                       world_images=64, world_seed=0, steps=4, batch_size=16, lr=1e-3, save_every=4, device="cpu")
    cfgs = {"a": base, "b": dataclasses.replace(base, seed=1, noise="none"),
            "c": dataclasses.replace(base, objective="pic2word", noise="none"),
            "a again": base}  # two names for one config: one run, both reported as trained
    one, done_one = trained_phis(cfgs, tmp_path / "one", workers=1)
    two, done_two = trained_phis(cfgs, tmp_path / "two", workers=2)
    assert done_one.trained == done_two.trained == list(cfgs) and done_two.seconds > 0
    for name in cfgs:
        for k, v in one[name].state_dict().items():
            assert torch.equal(v, two[name].state_dict()[k]), (name, k)
    again, done = trained_phis(cfgs, tmp_path / "two", workers=2)  # all cached now: nothing trains
    assert done.trained == [] and done.seconds == 0 and all(torch.equal(again["a"].state_dict()[k], v) for k, v in two["a"].state_dict().items())
