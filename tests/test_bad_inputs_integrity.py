"""Integrity and numeric sanity: checksummed checkpoints and cache entries, the corpus content checked on
--resume, NaN and Inf refused in weights and features, images beyond PIL's pixel limit refused."""
from __future__ import annotations


import bench_fixtures as F
import numpy as np
import pytest
import torch
from PIL import Image
from test_bad_inputs import _tiny_world_run, _write, evaluate_args, one_line_error, train_on

from lincir.cli import main
from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.models.phi_checkpoints import save_phi, save_safetensors


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the tensor data: the header stays valid, the size the same
    path.write_bytes(bytes(data))


def test_resume_refuses_another_corpus_at_the_same_path(tmp_path, capsys):
    corpus = _write(tmp_path / "c" / "c.txt", b"".join(b"a red cube number %d\n" % i for i in range(12)))
    out = tmp_path / "run"
    assert main(train_on(corpus, out, "--save-every", "1")) == 0
    corpus.write_bytes(b"".join(b"a blue ball number %d\n" % i for i in range(12)))
    one_line_error(train_on(corpus, out, "--resume", "--steps", "4"), capsys, "checkpoint.safetensors",
                   "another corpus content", "c.txt")


def test_resume_refuses_a_checkpoint_with_a_flipped_byte(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny_world_run(out)) == 0
    _flip_last_byte(out / "checkpoint.safetensors")
    one_line_error(_tiny_world_run(out, "--resume", "--steps", "4"), capsys, "checkpoint.safetensors",
                   "cannot resume", "checksum")


def test_a_phi_with_a_flipped_byte_is_refused(tmp_path, capsys):
    save_phi(tmp_path / "phi", Phi(32, 32), {"backbone": "shapes-clip"})
    _flip_last_byte(tmp_path / "phi" / "phi.safetensors")
    root = F.make_circo(tmp_path / "data")
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "phi"), capsys,
                   "phi.safetensors", "checksum")


def test_altered_or_truncated_targets_cache_is_recomputed(tmp_path):
    from lincir.data.feature_cache import _cached_array

    calls = []

    def compute():
        calls.append(1)
        return np.arange(12, dtype=np.float32).reshape(3, 4)

    first = np.array(_cached_array("k", "targets", compute))
    assert np.array_equal(np.array(_cached_array("k", "targets", compute)), first) and len(calls) == 1
    path = next((tmp_path / "lincir-cache" / "targets").glob("k.npy"))
    _flip_last_byte(path)  # same size, valid header, one value altered
    assert np.array_equal(np.array(_cached_array("k", "targets", compute)), first) and len(calls) == 2
    path.write_bytes(path.read_bytes()[:40])  # truncated
    assert np.array_equal(np.array(_cached_array("k", "targets", compute)), first) and len(calls) == 3


def test_altered_or_truncated_keyword_chunk_is_recomputed(tmp_path):
    from lincir.core.masking import KeywordSpans
    from lincir.data.keywords import _load_chunk, _save_chunk

    spans = KeywordSpans.from_lists([[(0, 3), (4, 9)], [], [(2, 5)]])
    path = tmp_path / "chunk.npz"
    _save_chunk(path, spans)
    assert _load_chunk(path, 3).offsets.tolist() == spans.offsets.tolist()
    data = bytearray(path.read_bytes())
    at = data.index(np.asarray([[0, 3], [4, 9], [2, 5]], dtype=np.uint16).tobytes())
    data[at + 2] ^= 0x01  # one offset altered, the archive still valid
    path.write_bytes(bytes(data))
    assert _load_chunk(path, 3) is None
    path.write_bytes(bytes(data)[:100])  # truncated: zipfile's error is caught, not raised
    assert _load_chunk(path, 3) is None


def test_altered_image_feature_shard_is_recomputed(tmp_path):
    from lincir.data.image_refs import ImageRef
    from lincir.data.images import image_features

    class Tiny:  # the least a backbone needs for the feature cache
        name, embed_dim = "tiny", 3
        preprocess = staticmethod(lambda im: torch.tensor(np.asarray(im)).float().mean((0, 1)))  # (3,)
        encoded = 0

        def fingerprint(self):
            return "tiny|0"

        def encode_images(self, pixels):
            Tiny.encoded += len(pixels)
            return pixels

    refs = []
    for i in range(3):
        F.write_image(tmp_path / "imgs" / f"{i}.png", np.random.default_rng(i))
        refs.append(ImageRef(str(i), tmp_path / "imgs" / f"{i}.png"))
    first = image_features(Tiny(), refs, progress=False)
    shard = next((tmp_path / "lincir-cache" / "features").rglob("*.safetensors"))
    _flip_last_byte(shard)
    again = image_features(Tiny(), refs, progress=False)
    assert torch.equal(first, again) and Tiny.encoded == 6  # encoded twice: the altered shard was not used


# ------------------------------------------------------------------------------ numeric sanity and shapes

@pytest.fixture(scope="module")
def world_dims():
    from lincir.models.backbones import load_backbone

    b = load_backbone("shapes-clip", "random")
    return b.embed_dim, b.token_width, {k: v.clone() for k, v in b.model.state_dict().items()}


def test_phi_with_nan_weights_is_refused_before_the_backbone(tmp_path, capsys, world_dims, monkeypatch):
    d, w, _ = world_dims
    phi = Phi(d, w)
    with torch.no_grad():
        phi.layers[0].weight[0, 0] = float("nan")
    save_phi(tmp_path / "phi", phi, {"backbone": "shapes-clip"})
    import lincir.models.backbones as B

    monkeypatch.setattr(B, "load_backbone", lambda *a, **k: pytest.fail("the backbone was loaded first"))
    root = F.make_circo(tmp_path / "data")
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "phi"), capsys,
                   "phi.safetensors", "NaN", "layers.0.weight")


def test_phi_of_the_wrong_rank_and_a_list_as_phi_json(tmp_path, capsys, world_dims):
    d, w, _ = world_dims
    root = F.make_circo(tmp_path / "data")
    state = {k: v.reshape(-1) if k == "layers.3.weight" else v for k, v in Phi(d, w).state_dict().items()}
    save_safetensors(tmp_path / "flat" / "phi.safetensors", state)
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "flat"), capsys,
                   "layers.3.weight", "2-D")
    save_phi(tmp_path / "listed", Phi(d, w), {})
    (tmp_path / "listed" / "phi.json").write_text("[1, 2]")
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "listed"), capsys,
                   "phi.json", "list")
    save_phi(tmp_path / "dropout", Phi(d, w), {})
    (tmp_path / "dropout" / "phi.json").write_text('{"dropout": "half"}')
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "dropout"), capsys,
                   "dropout")


def test_backbone_weights_of_the_wrong_shape_or_not_finite(tmp_path, capsys, world_dims):
    _, _, state = world_dims
    key = next(k for k, v in state.items() if v.dim() == 2)
    wrong = dict(state, **{key: torch.zeros(3, 5)})
    save_safetensors(tmp_path / "w" / "wrong.safetensors", wrong)
    line = one_line_error(_tiny_world_run(tmp_path / "o", "--weights", tmp_path / "w" / "wrong.safetensors"),
                          capsys, "wrong.safetensors", key, "(3, 5)")
    assert "size mismatch" not in line
    bad = {k: v.clone() for k, v in state.items()}
    bad[key].view(-1)[0] = float("inf")
    torch.save(bad, tmp_path / "w" / "inf.pt")
    one_line_error(_tiny_world_run(tmp_path / "o", "--weights", tmp_path / "w" / "inf.pt"), capsys, "inf.pt",
                   "NaN or infinite", key)


def test_features_are_checked_before_ranking():
    from lincir.eval.ranking import require_finite

    require_finite(torch.ones(3, 4), "gallery")
    x = torch.ones(3, 4)
    x[1, 2] = float("nan")
    with pytest.raises(LincirError, match="gallery: 1 of 3 feature rows hold NaN"):
        require_finite(x, "gallery")


def test_an_image_beyond_the_pixel_limit_is_refused(tmp_path, capsys, monkeypatch):
    root = F.make_circo(tmp_path / "data")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200)  # the 24x24 fixture images are 576 pixels: a "bomb"
    one_line_error(evaluate_args("circo", root, tmp_path / "out"), capsys, ".jpg", "pixels", "decompression-bomb")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 400)  # between the limit and twice it: PIL only warns
    one_line_error(evaluate_args("circo", root, tmp_path / "out"), capsys, "decompression-bomb")
