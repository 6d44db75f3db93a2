"""Parity of the pseudo-token encoder with open_clip's encode_text, on real architectures at random init."""
import open_clip
import pytest
import torch

from lincir.core.phi import Phi
from lincir.core.text_encoding import TextTower, encode_text_with_pseudo_tokens, trim_padding

ARCHS = ["ViT-B-32", "RN50", "ViT-S-32-alt"]  # text widths 512 / 512 / 256, embed dims 512 / 1024 / 256


@pytest.fixture(scope="module", params=ARCHS)
def clip(request):
    torch.manual_seed(0)
    model = open_clip.create_model(request.param, pretrained=None).eval().requires_grad_(False)
    return model, open_clip.get_tokenizer(request.param)


def _dollar(tok) -> int:
    return tok.encoder["$</w>"]


def test_placeholder_set_to_word_embedding_equals_encode_text(clip):
    model, tok = clip
    sentences = ["a photo of a red dog on the grass", "two cats and a dog", "a dog"]
    masked = [s.replace("dog", "$") for s in sentences]
    dog_id = tok.encoder["dog</w>"]
    tokens = tok(masked)
    emb = model.token_embedding.weight[dog_id].expand(len(sentences), -1)  # (B, w)
    ours = encode_text_with_pseudo_tokens(model, tokens, _dollar(tok), emb)
    ref = model.encode_text(tok(sentences))
    assert (ours - ref).abs().max().item() < 1e-5


def test_trimmed_padding_is_exact(clip):
    model, tok = clip
    tokens = tok(["a short one", "a somewhat longer caption about a small blue square"])
    trimmed = trim_padding(tokens)
    assert trimmed.shape[1] < tokens.shape[1]
    ours = encode_text_with_pseudo_tokens(model, trimmed)
    assert (ours - model.encode_text(tokens)).abs().max().item() < 1e-5


def test_gradients_reach_pseudo_token_and_not_clip(clip):
    model, tok = clip
    tower = TextTower.of(model)
    phi = Phi(model.text_projection.shape[1], tower.token_embedding.embedding_dim)
    feats = torch.randn(2, phi.embed_dim)
    tokens = trim_padding(tok(["a photo of $ that is red", "$ and $ on a table"]))
    out = encode_text_with_pseudo_tokens(model, tokens, _dollar(tok), phi(feats), tower=tower)
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in phi.parameters())
    assert all(p.grad is None for p in model.parameters())


def test_every_placeholder_occurrence_is_replaced(clip):
    model, tok = clip
    w = TextTower.of(model).token_embedding.embedding_dim
    a, b = torch.randn(1, w), torch.randn(1, w)
    tokens = tok(["$ next to $"])
    out_a = encode_text_with_pseudo_tokens(model, tokens, _dollar(tok), a)
    out_b = encode_text_with_pseudo_tokens(model, tokens, _dollar(tok), b)
    assert not torch.allclose(out_a, out_b)


def test_custom_text_clip_tower_is_supported():
    cfg = {"embed_dim": 64, "custom_text": True,
           "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2}}
    open_clip.factory._MODEL_CONFIGS["lincir-test-custom-text"] = cfg
    model = open_clip.create_model("lincir-test-custom-text", pretrained=None).eval()
    tok = open_clip.get_tokenizer("ViT-B-32")
    assert hasattr(model, "text")
    word = tok.encoder["cat</w>"]
    emb = model.text.token_embedding.weight[word].unsqueeze(0)
    ours = encode_text_with_pseudo_tokens(model, tok(["a $ on a mat"]), _dollar(tok), emb)
    assert (ours - model.encode_text(tok(["a cat on a mat"]))).abs().max().item() < 1e-5
