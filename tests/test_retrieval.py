"""Retrieval engine: chunked top-k against a full sort, GeneCIS crops, the gallery feature cache."""
import bench_fixtures as F
import numpy as np
import pytest
import torch
from PIL import Image

from lincir.data import images as R
from lincir.eval import ranking
from lincir.data.image_refs import Crop, ImageRef
from lincir.storage import cache_dir
from lincir.models.backbones import load_backbone


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return load_backbone("shapes-clip", weights="random")


def test_topk_chunked_matches_full_sort_with_exclusions():
    g = torch.Generator().manual_seed(0)
    queries = ranking.normalize(torch.randn(7, 16, generator=g))
    gallery = ranking.normalize(torch.randn(100, 16, generator=g))
    exclude = [[int(i) for i in torch.randint(0, 100, (3,), generator=g)] for _ in range(7)]
    sims = queries @ gallery.T
    for q, ex in enumerate(exclude):
        sims[q, ex] = float("-inf")
    full = sims.argsort(dim=1, descending=True)
    for chunk, qchunk in [(13, 3), (100, 7), (7, 1)]:
        top = ranking.topk_chunked(queries, gallery, 10, exclude, chunk=chunk, query_chunk=qchunk)
        assert top == full[:, :10].tolist()
    everything = ranking.topk_chunked(queries, gallery, 500, exclude, chunk=17)
    assert [len(t) for t in everything] == [100 - len(set(ex)) for ex in exclude]
    assert all(not set(t) & set(ex) for t, ex in zip(everything, exclude))


def test_topk_ties_go_to_the_lower_index():
    gallery = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    assert ranking.topk_chunked(torch.tensor([[1.0, 0.0]]), gallery, 3, chunk=2) == [[0, 2, 3]]


def test_rank_among_returns_positions_in_the_list():
    gallery = torch.eye(4)
    # positions into [3, 1, 3, 0]: the two copies of row 3 tie and keep list order
    assert ranking.rank_among(torch.tensor([0.0, 0.5, 0.0, 1.0]), gallery, [3, 1, 3, 0]) == [0, 2, 1, 3]


def test_crop_matches_genecis_formula(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)  # H=30, W=40
    im = Image.fromarray(pixels)
    out = R.crop_image(im, (10, 5, 8, 6), 0.7, True)
    # left = max(0, 10 - 5.6) = 4.4, top = max(0, 5 - 4.2) = 0.8, right = 4.4 + 13.6 = 18, bottom = 0.8 + 10.2 = 11
    region = pixels[1:11, 4:18]  # rounded box (4, 1, 18, 11): 14 wide, 10 high
    arr = np.asarray(out)
    assert arr.shape == (14, 14, 3)
    assert (arr[2:12] == region).all() and (arr[:2] == 0).all() and (arr[12:] == 0).all()  # centred, black pad
    # clamped at the image border: right = min(W, left + 1.7 w)
    edge = R.crop_image(im, (30, 20, 12, 12), 0.7, False)  # left 21.6, right min(40, 42.0), top 11.6
    assert np.array_equal(np.asarray(edge), pixels[12:30, 22:40])
    path = tmp_path / "x.png"
    im.save(path)
    ref = ImageRef("x", path, Crop((10, 5, 8, 6)))
    assert np.array_equal(np.asarray(R.open_image(ref)), arr)


def _refs(tmp_path, n=5):
    rng = np.random.default_rng(1)
    refs = []
    for i in range(n):
        path = tmp_path / "imgs" / f"{i}.png"
        F.write_image(path, rng)
        refs.append(ImageRef(str(i), path))
    return refs


def test_features_match_direct_encoding(backbone, tmp_path):
    refs = _refs(tmp_path)
    feats = R.image_features(backbone, refs, batch_size=2, progress=False, shard_size=2)
    pixels = torch.stack([backbone.preprocess(Image.open(r.path).convert("RGB")) for r in refs])
    with torch.no_grad():
        direct = backbone.encode_images(pixels)
    assert feats.shape == (5, backbone.embed_dim)
    torch.testing.assert_close(feats, direct, rtol=1e-4, atol=1e-5)


def test_cache_reused_and_invalidated(backbone, tmp_path, monkeypatch):
    refs = _refs(tmp_path)
    first = R.image_features(backbone, refs, progress=False, shard_size=2)
    files = sorted(cache_dir("features").rglob("*.safetensors"))
    assert len(files) == 3 and all(tmp_path / "imgs" not in f.parents for f in files)

    calls = []
    real = R.encode_images
    monkeypatch.setattr(R, "encode_images",
                        lambda bb, shard, *a, **k: calls.append(len(shard)) or real(bb, shard, *a, **k))
    torch.testing.assert_close(R.image_features(backbone, refs, progress=False, shard_size=2), first)
    assert calls == []  # everything from the cache

    F.write_image(refs[3].path, np.random.default_rng(9), size=(30, 30))  # another image, same name
    again = R.image_features(backbone, refs, progress=False, shard_size=2)
    assert calls == [2]  # only the shard holding image 3
    assert torch.equal(again[:2], first[:2]) and not torch.allclose(again[3], first[3])

    files = sorted(cache_dir("features").rglob("*.safetensors"), key=lambda p: p.stat().st_mtime_ns)
    files[0].unlink()  # an interrupted run: one shard never written
    calls.clear()
    R.image_features(backbone, refs, progress=False, shard_size=2)
    assert calls == [2]

    calls.clear()
    R.image_features(backbone, refs[:4] + [refs[4]], progress=False, shard_size=2, cache=False)
    assert calls == [2, 2, 1]  # no cache: everything encoded

    other = load_backbone("shapes-clip", weights="random")  # same name and tag ...
    with torch.no_grad():
        other.model.visual.conv1.weight.mul_(1.01)  # ... other weights (a fine-tune, a differently seeded init)
    assert R.weights_fingerprint(other) != R.weights_fingerprint(backbone)
    calls.clear()
    R.image_features(other, refs, progress=False, shard_size=2)
    assert calls == [2, 2, 1]


def test_missing_image_while_encoding_is_one_line(backbone, tmp_path):
    from lincir.errors import LincirError

    with pytest.raises(LincirError, match="nope.png: image not found"):
        R.image_features(backbone, [ImageRef("a", tmp_path / "nope.png")], progress=False)
