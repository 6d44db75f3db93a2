"""CLIP text encoding with a pseudo-word token: the placeholder's token-embedding row replaced per sample.

Works on open_clip's `CLIP` (text tower fields on the model) and `CustomTextCLIP` (fields on `model.text`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from open_clip.transformer import text_global_pool


@dataclass
class TextTower:
    """The parts of an open_clip text tower that an encoder pass touches."""

    token_embedding: nn.Embedding
    positional_embedding: torch.Tensor
    transformer: nn.Module
    ln_final: nn.Module
    text_projection: object
    attn_mask: torch.Tensor | None
    pool_type: str
    eos_id: int | None
    cast_dtype: torch.dtype

    @classmethod
    def of(cls, model: nn.Module) -> "TextTower":
        src = model.text if hasattr(model, "text") and hasattr(model.text, "token_embedding") else model
        if getattr(src, "cls_emb", None) is not None:
            raise ValueError("text towers with an appended CLS embedding (CoCa) are not supported")
        return cls(
            token_embedding=src.token_embedding,
            positional_embedding=src.positional_embedding,
            transformer=src.transformer,
            ln_final=src.ln_final,
            text_projection=src.text_projection,
            attn_mask=src.attn_mask,
            pool_type=getattr(src, "text_pool_type", getattr(src, "pool_type", "argmax")),
            eos_id=getattr(src, "text_eos_id", getattr(src, "eos_id", None)),
            cast_dtype=src.transformer.get_cast_dtype(),
        )


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Cut (B, 77) tokens to the batch's longest caption (end-of-text included).

    Exact for causal towers pooled at the end-of-text token: no position after it can reach its output.
    The end-of-text id is the largest id in the vocabulary, so argmax finds it.
    """
    length = int(tokens.argmax(dim=-1).max().item()) + 1
    return tokens[:, :length]


def encode_text_with_pseudo_tokens(
    model: nn.Module,
    tokens: torch.Tensor,
    placeholder_id: int | None = None,
    pseudo_tokens: torch.Tensor | None = None,
    tower: TextTower | None = None,
) -> torch.Tensor:
    """E_T(tokens) with every `placeholder_id` row of the token embedding replaced by `pseudo_tokens`.

    tokens: (B, L) with L <= context length (a trimmed batch is fine for causal towers);
    pseudo_tokens: (B, w) or None (plain encoding). Returns the unnormalised projected feature (B, d),
    differentiable with respect to `pseudo_tokens`.
    """
    t = tower or TextTower.of(model)
    length = tokens.shape[1]
    x = t.token_embedding(tokens).to(t.cast_dtype)  # (B, L, w)
    if pseudo_tokens is not None:
        if placeholder_id is None:
            raise ValueError("pseudo_tokens given without a placeholder_id")
        is_placeholder = (tokens == placeholder_id).unsqueeze(-1)  # (B, L, 1)
        x = torch.where(is_placeholder, pseudo_tokens.to(t.cast_dtype).unsqueeze(1), x)
    x = x + t.positional_embedding[:length].to(t.cast_dtype)
    mask = t.attn_mask[:length, :length] if t.attn_mask is not None else None
    x = t.transformer(x, attn_mask=mask)
    x = t.ln_final(x)  # (B, L, w)
    x = text_global_pool(x, tokens, t.pool_type, eos_token_id=t.eos_id)  # (B, w)
    if t.text_projection is not None:
        x = t.text_projection(x) if isinstance(t.text_projection, nn.Linear) else x @ t.text_projection
    return x  # (B, d)
