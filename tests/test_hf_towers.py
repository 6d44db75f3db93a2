"""Hugging Face text towers (open_clip's HFTextEncoder), at random init on tiny towers built offline from
local folders (tests/hf_towers.py): the pseudo-token goes in through inputs_embeds; set to a real word's
embedding it gives exactly open_clip's encode_text of the sentence holding that word, on the trimmed batches
the trainer uses; trimming is checked to be exact on open_clip's own forward."""
import pytest
import torch

pytest.importorskip("transformers", reason="Hugging Face text towers need `transformers` (pip install 'lincir[hf]')")

import hf_towers as H  # noqa: E402
from parity import assert_gradients_reach_phi_only, word_and_masked  # noqa: E402

from lincir.core.text_encoding import HFTower, encode_text_with_pseudo_tokens  # noqa: E402
from lincir.models.backbones import family_of, load_backbone  # noqa: E402

SENTENCES = ["a photo of a red dog on the grass", "two cats and a dog", "a dog"]


@pytest.fixture(scope="module")
def hf_root(tmp_path_factory):
    return tmp_path_factory.mktemp("hf-towers")


@pytest.fixture(scope="module", params=list(H.TOWERS))
def backbone(request, hf_root):
    return load_backbone(H.register(hf_root, request.param), weights="random")


def test_family_and_path(backbone):
    f = backbone.family
    pool = "cls" if H.TOWERS[backbone.tower.model_type][0] == "cls_pooler" else "mean"
    assert isinstance(backbone.tower, HFTower) and backbone.tower.model_type in backbone.name
    assert (f.name, f.trim, f.causal, f.pool, f.placeholder, f.tokenizer) == ("hf-masked", True, False, pool, "by-id", "hf")
    assert family_of(backbone.name).name == "hf-masked"  # the config predicts what the built model gets
    assert "inputs_embeds" in f.path() and backbone.context_length == H.CONTEXT
    assert backbone.placeholder_id == 4 and backbone.tower.pad_id == H.PAD_ID



def test_placeholder_as_word_equals_encode_text_on_trainer_path(backbone):
    ref, masked, word = word_and_masked(backbone, SENTENCES)
    tokens = backbone.trim(masked)  # what the trainer and the evaluation hand the encoder
    assert tokens.shape[1] == 11 < backbone.context_length  # <s> + 9 words + </s>: the pads cut
    emb = backbone.tower.token_embedding(torch.tensor([word]))[0].expand(len(SENTENCES), -1)  # (B, w)
    ours = backbone.encode_with_pseudo(tokens, emb)
    want = backbone.model.encode_text(ref)  # open_clip's own forward (input_ids), full context
    assert (ours - want).abs().max().item() < 1e-5
    assert (backbone.encode_text(ref) - want).abs().max().item() < 1e-5
    assert (backbone.encode_texts(SENTENCES, batch_size=2) - want).abs().max().item() < 1e-5
    full = encode_text_with_pseudo_tokens(backbone.model, masked, backbone.placeholder_id, emb)  # untrimmed
    assert (full - want).abs().max().item() < 1e-5
    other = backbone.encode_with_pseudo(tokens, torch.randn_like(emb))  # the pseudo-token does matter
    assert (other - want).abs().max().item() > 1e-4


def test_trimming_is_exact_on_open_clips_own_forward(backbone):
    full = backbone.tokenizer(SENTENCES)
    n = int(backbone.lengths(full).max())
    assert backbone.lengths(full).tolist() == [11, 7, 4]
    want = backbone.model.encode_text(full)
    cut = backbone.model.encode_text(full[:, :n])  # only pads cut: exact
    assert (cut - want).abs().max().item() < 1e-5
    into = backbone.model.encode_text(full[:, :n - 1])  # into the longest text: not exact (the test can fail)
    assert (into - want)[0].abs().max().item() > 1e-4


def test_gradients_reach_pseudo_token_never_backbone(backbone):
    assert_gradients_reach_phi_only(backbone, 32)


def test_trainer_trims_a_hugging_face_tower(tmp_path, monkeypatch, hf_root):
    from lincir.train import loop
    from lincir.train.config import TrainConfig

    bb = load_backbone(H.register(hf_root, "roberta"), weights="random")
    seen = []
    bb.tower.token_embedding.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    monkeypatch.setattr(loop, "load_backbone", lambda *a, **k: bb)
    corpus = tmp_path / "corpus" / "captions.txt"  # its own folder: outputs never go inside an input's
    corpus.parent.mkdir()
    corpus.write_text("".join(f"a small {c} dog on the grass\n" for c in ["red", "blue", "green", "big"] * 4))
    cfg = TrainConfig(backbone=bb.name, weights="random", corpus=str(corpus), steps=2, batch_size=4,
                      masking="random_word", log_every=1, save_every=2, device="cpu")
    loop.train(cfg, tmp_path / "run", progress=False)  # the target cache, then two training steps
    assert len(seen) >= 3 and max(seen) < bb.context_length
