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
