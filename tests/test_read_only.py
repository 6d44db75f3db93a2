"""Inputs are read-only: no command writes inside a corpus, image or dataset folder (file lists, sizes and
mtimes unchanged); caches go to LINCIR_CACHE, keyed so that a changed input is computed again."""
from __future__ import annotations

import bench_fixtures as F
import numpy as np
import torch
from PIL import Image

from lincir.cli import main
from lincir.core.phi import Phi
from lincir.data import images as R
from lincir.data.image_refs import ImageRef
from lincir.models.backbones import load_backbone
from lincir.models.phi_checkpoints import save_phi

TRAIN = ["train", "--backbone", "shapes-clip", "--weights", "random", "--steps", "3", "--batch-size", "4",
         "--no-progress", "--device", "cpu"]
CAPTIONS = ["a red cube on the grass", "two small dogs near a blue car", "a woman holding an umbrella",
            "the old church at night", "a plate of pasta with tomatoes", "a green bird on a branch"]


def test_training_never_writes_beside_its_inputs(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("LINCIR_CACHE", str(cache))
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "captions.txt").write_text("\n".join(CAPTIONS) + "\n")
    (corpus / "captions.csv").write_text("id,caption\n" + "".join(f"{i},{c}\n" for i, c in enumerate(CAPTIONS)))
    images = tmp_path / "images"
    rng = np.random.default_rng(0)
    for i in range(6):
        F.write_image(images / ("sub" if i % 2 else "") / f"{i}.png", rng)
    before = {"corpus": F.snapshot(corpus), "images": F.snapshot(images)}

    assert main([*TRAIN, "--corpus", str(corpus / "captions.txt"), "--out", str(tmp_path / "r1")]) == 0
    assert main([*TRAIN, "--corpus", str(corpus / "captions.csv"), "--masking", "template",
                 "--out", str(tmp_path / "r2")]) == 0
    assert main([*TRAIN, "--objective", "pic2word", "--noise", "none", "--images", str(images),
                 "--out", str(tmp_path / "r3")]) == 0
    assert {"corpus": F.snapshot(corpus), "images": F.snapshot(images)} == before
    assert list(cache.rglob("*.npy")) and list(cache.rglob("*.safetensors"))  # the caches went to LINCIR_CACHE


def test_benchmark_commands_never_write_into_the_dataset(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "cache"))
    root = F.make_cirr(tmp_path / "data")
    before = F.snapshot(root)
    backbone = load_backbone("shapes-clip", weights="random")
    save_phi(tmp_path / "phi", Phi.for_backbone(backbone), {"backbone": "shapes-clip"})
    model = ["--backbone", "shapes-clip", "--weights", "random", "--method", "lincir", "--phi", str(tmp_path / "phi"),
             "--quiet"]
    assert main(["evaluate", "--benchmark", "cirr", "--data-root", str(root), *model,
                 "--out", str(tmp_path / "eval")]) == 0
    assert main(["score", "--benchmark", "cirr", "--data-root", str(root), "--split", "val",
                 str(tmp_path / "eval" / "rankings.json"), "--out", str(tmp_path / "score.json")]) == 0
    assert main(["submit", "--benchmark", "cirr", "--data-root", str(root), *model,
                 "--out", str(tmp_path / "submissions")]) == 0
    for path in sorted((tmp_path / "submissions").iterdir()):
        main(["check-submission", "--benchmark", "cirr", "--data-root", str(root), str(path)])
    assert main(["evaluate", "--benchmark", "cirr", "--data-root", str(root), *model,
                 "--out", str(root / "results")]) == 2  # refused: inside the dataset
    assert F.snapshot(root) == before


def test_an_image_replaced_in_place_is_encoded_again(tmp_path, monkeypatch):
    """Same name, same byte size (uncompressed BMP), new pixels: the feature cache must not serve the old ones."""
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "cache"))
    backbone = load_backbone("shapes-clip", weights="random")
    rng = np.random.default_rng(0)
    path = tmp_path / "img" / "a.bmp"
    path.parent.mkdir()

    def put(seed_pixels):
        Image.fromarray(seed_pixels).save(path, format="BMP")

    put(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    refs = [ImageRef("a", path)]
    first = R.image_features(backbone, refs, progress=False)
    size = path.stat().st_size
    put(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    assert path.stat().st_size == size
    second = R.image_features(backbone, refs, progress=False)
    assert not torch.equal(first, second)
    assert torch.equal(second, R.encode_images(backbone, refs))
    assert torch.equal(R.image_features(backbone, refs, progress=False), second)  # and now it is cached
