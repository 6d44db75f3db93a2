"""Shared by the text-family parity tests: sentences, and the same sentences with one word masked by "$"."""
import torch


def word_and_masked(bb, sentences, word="dog"):
    """(tokens of the sentences, tokens with the word masked by $, the word's token id)."""
    ref = bb.tokenizer(sentences)
    masked = bb.tokenizer([s.replace(word, "$") for s in sentences])
    at = masked == bb.placeholder_id  # (B, L)
    assert at.any(dim=1).all()
    ids = ref[at].unique()
    assert len(ids) == 1 and torch.equal(ref[~at], masked[~at])  # one token, the rest unchanged
    return ref, masked, int(ids[0])


def assert_gradients_reach_phi_only(backbone, token_width):
    """A seeded phi's pseudo-token through the backbone: every phi weight gets a gradient, no backbone one."""
    from lincir.core.phi import Phi

    phi = Phi.for_backbone(backbone)
    assert (phi.embed_dim, phi.token_width) == (48, token_width)
    tokens = backbone.trim(backbone.tokenizer(["a photo of $ that is red", "$ and $ on a table"]))
    out = backbone.encode_with_pseudo(tokens, phi(torch.randn(2, 48)))
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in phi.parameters())
    assert all(p.grad is None for p in backbone.model.parameters())
