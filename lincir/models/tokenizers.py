"""Tokenizers for towers whose own tokenizer would drop or merge the `$` placeholder, and an offline stand-in
for Hugging Face tokenizers.

SigLIP's and SigLIP 2's tokenizers canonicalise text (open_clip's `clean="canonicalize"`: lower case,
punctuation removed), so a literal `$` vanishes before it is tokenized. `ByIdTokenizer` splits each text at
`$`, tokenizes the pieces, and puts the placeholder in by token id: the pseudo-token then sits exactly where
the `$` was. It is a tokenizer like open_clip's: texts -> (B, context_length) int64 ids.
"""
from __future__ import annotations

import zlib

import torch

PLACEHOLDER = "$"


class ByIdTokenizer:
    """texts -> (B, context) ids with every `$` as `placeholder_id`; pieces by `encode_piece`, framed by
    `frame` (start/end of text), cut to the context (the end of text kept) and padded with `pad_id`."""

    def __init__(self, encode_piece, frame, n_special: int, pad_id: int, placeholder_id: int, context_length: int,
                 name: str):
        self.encode_piece, self.frame, self.n_special = encode_piece, frame, n_special
        self.pad_id, self.placeholder_id, self.context_length, self.name = pad_id, placeholder_id, context_length, name

    def __call__(self, texts, context_length: int | None = None) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        n = context_length or self.context_length
        out = torch.full((len(texts), n), self.pad_id, dtype=torch.long)  # (B, n)
        for i, text in enumerate(texts):
            body: list[int] = []
            for k, piece in enumerate(text.split(PLACEHOLDER)):
                if k:
                    body.append(self.placeholder_id)
                body += self.encode_piece(piece)
            ids = self.frame(body[: n - self.n_special])
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out

    def __repr__(self) -> str:
        return f"ByIdTokenizer({self.name}, placeholder id {self.placeholder_id}, context {self.context_length})"


# The stand-in's reserved ids 0-3: padding, the end of text (the tower's eos_id: eos-pooled towers look for
# it), the placeholder (the first of 1-3 that is not the end of text); words from 4 on.
STANDIN_PAD, STANDIN_FIRST_WORD = 0, 4


def standin_tokenizer(vocab_size: int, context_length: int, clean: str = "whitespace", eos_id: int = 2) -> ByIdTokenizer:
    """A word-level tokenizer over the tower's vocabulary size, for random-init towers whose Hugging Face
    tokenizer cannot be loaded offline (it needs `transformers` and downloaded vocabulary files).

    It keeps what the encoder's exactness depends on: open_clip's text cleaning for the architecture (so `$`
    vanishes as it does for SigLIP), no start token, an end-of-text token, padding to the full context. Word
    ids are a hash of the word, so its features mean nothing: it is for tests and speed benchmarks with
    `--weights random`, never for real weights (load_backbone refuses that)."""
    from open_clip.tokenizer import get_clean_fn

    if not 1 <= eos_id < STANDIN_FIRST_WORD:
        raise ValueError(f"stand-in tokenizer: end-of-text id {eos_id} is not one of 1-3")
    placeholder = next(i for i in (1, 2, 3) if i != eos_id)
    clean_fn = get_clean_fn(clean)
    n_words = vocab_size - STANDIN_FIRST_WORD

    def encode_piece(text: str) -> list[int]:
        return [STANDIN_FIRST_WORD + zlib.crc32(w.encode()) % n_words for w in clean_fn(text).split()]

    return ByIdTokenizer(encode_piece, lambda body: body + [eos_id], 1, STANDIN_PAD, placeholder,
                         context_length, f"stand-in word tokenizer ({clean}, eos {eos_id})")


def _special_frame(hf, probe: str = "photo") -> tuple[list[int], list[int]]:
    """The ids a Hugging Face tokenizer puts before and after a text (its post-processor's special tokens),
    read off one probe: transformers 5 tokenizers have no build_inputs_with_special_tokens."""
    bare = hf(probe, add_special_tokens=False).input_ids
    full = hf(probe, add_special_tokens=True).input_ids
    for k in range(len(full) - len(bare) + 1):
        if full[k:k + len(bare)] == bare:
            return full[:k], full[k + len(bare):]
    raise ValueError(f"cannot find the special tokens {type(hf).__name__} frames a text with")


# A text without `$`: the by-id tokenizer must give exactly open_clip's ids for it (checked once, at load).
_CHECK_TEXT = "a photo of a red dog on the grass, two cats and a table"


def hf_by_id_tokenizer(tok) -> ByIdTokenizer:
    """open_clip's HFTokenizer with the placeholder put in by id: the id Hugging Face gives the `$` piece itself
    (text never yields it where cleaning removes every `$`). Pieces are cleaned and tokenized as open_clip does,
    framed by the tokenizer's own special tokens (`strip_sep_token` as open_clip applies it), and the result
    is checked once against open_clip's tokenizer on a `$`-free text (ValueError if they differ)."""
    hf = tok.tokenizer
    ids = hf(PLACEHOLDER, add_special_tokens=False).input_ids
    if not ids or ids[-1] == hf.unk_token_id:
        raise ValueError(f"the tokenizer {type(hf).__name__} has no token for {PLACEHOLDER!r}")
    head, tail = _special_frame(hf)
    if getattr(tok, "strip_sep_token", False):  # open_clip zeroes the separator token
        head, tail = ([0 if i == hf.sep_token_id else i for i in part] for part in (head, tail))

    def encode_piece(text: str) -> list[int]:
        return hf(tok.clean_fn(text), add_special_tokens=False).input_ids if text.strip() else []

    by_id = ByIdTokenizer(encode_piece, lambda body: head + body + tail, len(head) + len(tail),
                          int(hf.pad_token_id), int(ids[-1]), int(tok.context_length), type(hf).__name__)
    want = tok([_CHECK_TEXT])
    if not torch.equal(by_id([_CHECK_TEXT]), want.to(torch.long)):
        raise ValueError(f"the by-id tokenizer over {type(hf).__name__} does not reproduce open_clip's ids")
    return by_id
