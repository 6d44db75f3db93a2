"""CLIP text encoding with a pseudo-word token: the placeholder's token-embedding row replaced per sample.

Works on open_clip's `CLIP` (text tower fields on the model) and `CustomTextCLIP` (fields on `model.text`),
including Hugging Face text towers (`HFTower`: the pseudo-token goes in through `inputs_embeds`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from open_clip.transformer import ResidualAttentionBlock, text_global_pool


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
    direct: bool = False  # blocks run by _causal_block / _block_at_rows (checked in `of`)
    context_length: int = 77
    pad_mask: object = None  # (tokens (B, L), L, dtype) -> additive mask, for towers that mask their pads

    @property
    def causal(self) -> bool:
        return self.attn_mask is not None

    @property
    def trimmable(self) -> bool:
        """Trailing padding can be cut without changing the output: a causal mask keeps every position after
        the pooled one from reaching it, and the pooled position is found from the tokens themselves."""
        return self.causal and self.pool_type in ("argmax", "eos")

    @classmethod
    def of(cls, model: nn.Module) -> "TextTower | HFTower":
        """The tower's parts; an `HFTower` for open_clip's Hugging Face adapter (HFTextEncoder)."""
        if _is_hf(getattr(model, "text", None)):
            return HFTower.of(model.text)
        src = model.text if hasattr(model, "text") and hasattr(model.text, "token_embedding") else model
        if getattr(src, "cls_emb", None) is not None:
            raise ValueError("text towers with an appended CLS embedding (CoCa) are not supported")
        if not hasattr(src, "token_embedding"):
            raise ValueError(f"{type(src).__name__} text towers (no token embedding) are not supported")
        pad_mask = None
        if getattr(src, "use_pad_mask", False):  # open_clip's own additive pad mask (bidirectional towers)
            pad_mask = src._build_additive_mask
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
            direct=_direct_path_applies(src.transformer, src.attn_mask, getattr(src, "text_pool_type",
                                                                                 getattr(src, "pool_type", "argmax"))),
            context_length=int(src.positional_embedding.shape[0]),
            pad_mask=pad_mask,
        )


def _is_hf(text: nn.Module | None) -> bool:
    return text is not None and type(text).__name__ == "HFTextEncoder" and hasattr(text, "pooler")


# open_clip's Hugging Face poolers (hf_model.py) this encoder reproduces; MaxPooler is not among them (it
# fills the kept positions, not the pads, with -inf).
HF_POOLS = {"MeanPooler": "mean", "ClsPooler": "cls", "ClsLastHiddenStatePooler": "cls"}


@dataclass
class HFTower:
    """The parts of open_clip's HFTextEncoder an encoder pass touches: the Hugging Face model (the encoder of
    an encoder-decoder), its input embedding, open_clip's pooler and projection.

    open_clip masks every `pad_id` token out of attention (as keys) and out of mean pooling; CLS pooling reads
    position 0. So no output reads a trailing pad, and a batch may be cut after its longest text
    (`trimmable`; tests/test_text_families.py checks it numerically per model type)."""

    transformer: nn.Module
    token_embedding: nn.Module  # the model's input embedding: ids -> the rows `inputs_embeds` takes
    pooler: nn.Module
    proj: nn.Module
    pad_id: int
    context_length: int
    pool_type: str  # "mean" or "cls"
    output_dim: int
    model_type: str
    eos_id: None = None
    attn_mask: None = None
    direct: bool = False
    causal: bool = False
    trimmable: bool = True

    @classmethod
    def of(cls, text: nn.Module) -> "HFTower":
        pool = HF_POOLS.get(type(text.pooler).__name__)
        if pool is None:
            raise ValueError(f"Hugging Face text pooler {type(text.pooler).__name__} is not supported "
                             f"(supported: {', '.join(HF_POOLS)})")
        if text.config.pad_token_id is None:
            raise ValueError("Hugging Face text tower without a pad_token_id: open_clip's mask is undefined")
        return cls(transformer=text.transformer, token_embedding=text.transformer.get_input_embeddings(),
                   pooler=text.pooler, proj=text.proj, pad_id=int(text.config.pad_token_id),
                   context_length=int(getattr(text, "context_length", 0) or 0), pool_type=pool,
                   output_dim=int(text.output_dim), model_type=str(text.config.model_type))


def _encode_hf(t: HFTower, tokens: torch.Tensor, placeholder_id: int | None,
               pseudo_tokens: torch.Tensor | None) -> torch.Tensor:
    """open_clip's HFTextEncoder.forward with the input embeddings given: (B, L) -> (B, d)."""
    mask = (tokens != t.pad_id).long()  # (B, L), as open_clip builds it from the model config's pad id
    x = t.token_embedding(tokens)  # (B, L, w)
    if pseudo_tokens is not None:
        if placeholder_id is None:
            raise ValueError("pseudo_tokens given without a placeholder_id")
        is_placeholder = (tokens == placeholder_id).unsqueeze(-1)  # (B, L, 1)
        x = torch.where(is_placeholder, pseudo_tokens.to(x.dtype).unsqueeze(1), x)
    # Positions: without input_ids, Hugging Face numbers positions from the start; with them, it gives pads
    # the padding position. They differ only at (trailing) pads, which no kept output attends to or pools.
    out = t.transformer(inputs_embeds=x, attention_mask=mask)
    return t.proj(t.pooler(out, mask))  # (B, d)


def needed_lengths(tokens: torch.Tensor, tower: "TextTower | HFTower") -> torch.Tensor:
    """(B, L) -> (B,) the tokens each text needs where trimming is exact: up to its pooled position (causal
    towers), or up to its last non-pad token (Hugging Face towers, pads masked out)."""
    if isinstance(tower, HFTower):
        kept = (tokens != tower.pad_id).long() * torch.arange(1, tokens.shape[1] + 1, device=tokens.device)
        return kept.max(dim=1).values
    return pooled_positions(tokens, tower.pool_type, tower.eos_id) + 1


def _direct_path_applies(transformer: nn.Module, attn_mask: torch.Tensor | None, pool_type: str) -> bool:
    """The direct path computes exactly open_clip's default blocks under the standard causal mask, pooled at
    one position per caption; anything else (custom blocks, cross-attention, a different mask) keeps
    open_clip's own forward."""
    blocks = list(getattr(transformer, "resblocks", []))
    if not blocks or attn_mask is None or pool_type not in _POOL_POSITIONS:
        return False
    n = attn_mask.shape[0]
    if not torch.equal(torch.isneginf(attn_mask).cpu(), torch.ones(n, n, dtype=torch.bool).triu(1)):
        return False
    for blk in blocks:
        a = getattr(blk, "attn", None)
        if not (type(blk) is ResidualAttentionBlock and isinstance(a, nn.MultiheadAttention) and a.batch_first
                and a._qkv_same_embed_dim and a.bias_k is None and not a.add_zero_attn
                and not hasattr(blk, "ln_1_kv")):
            return False
    return getattr(transformer, "batch_first", True) and not getattr(transformer, "grad_checkpointing", False)


# Where each pool type reads its one position per caption: (B, L) tokens -> (B,) positions.
_POOL_POSITIONS = {
    "argmax": lambda tokens, eos_id: tokens.argmax(dim=-1),  # end of text: the largest id
    "eos": lambda tokens, eos_id: (tokens == eos_id).int().argmax(dim=-1),
    "last": lambda tokens, eos_id: torch.full_like(tokens[:, 0], tokens.shape[1] - 1),
    "first": lambda tokens, eos_id: torch.zeros_like(tokens[:, 0]),
}


def trim_padding(tokens: torch.Tensor) -> torch.Tensor:
    """Cut (B, 77) tokens to the batch's longest caption (end-of-text included).

    Exact for causal towers pooled at the end-of-text token: no position after it can reach its output.
    The end-of-text id is the largest id in the vocabulary, so argmax finds it.
    """
    length = int(tokens.argmax(dim=-1).max().item()) + 1
    return tokens[:, :length]


def pooled_positions(tokens: torch.Tensor, pool_type: str, eos_id: int | None) -> torch.Tensor:
    """(B, L) tokens -> (B,) the position each caption is pooled at (argmax, eos, first, last)."""
    return _POOL_POSITIONS[pool_type](tokens, eos_id)


def trim_for(tokens: torch.Tensor, tower: "TextTower") -> torch.Tensor:
    """(B, L) tokens cut to the batch's furthest pooled position where that is exact for the tower
    (`TextTower.trimmable`); otherwise the tokens unchanged (the full, fixed-length padding)."""
    if not tower.trimmable:
        return tokens
    length = max(int(needed_lengths(tokens, tower).max().item()), 1)
    return tokens[:, :length]


def encode_text_with_pseudo_tokens(
    model: nn.Module,
    tokens: torch.Tensor,
    placeholder_id: int | None = None,
    pseudo_tokens: torch.Tensor | None = None,
    tower: TextTower | None = None,
    direct: bool = True,
) -> torch.Tensor:
    """E_T(tokens) with every `placeholder_id` row of the token embedding replaced by `pseudo_tokens`.

    tokens: (B, L) with L <= context length (a trimmed batch is fine for causal towers);
    pseudo_tokens: (B, w) or None (plain encoding). Returns the unnormalised projected feature (B, d),
    differentiable with respect to `pseudo_tokens`. direct=False always runs open_clip's own transformer
    forward (the reference step's path); by default towers of open_clip's standard blocks take the
    faster, equal direct path below.
    """
    t = tower or TextTower.of(model)
    if isinstance(t, HFTower):
        return _encode_hf(t, tokens, placeholder_id, pseudo_tokens)
    length = tokens.shape[1]
    if length != t.context_length and not t.trimmable:
        raise ValueError(f"{length} tokens given to a text tower whose output depends on its padding "
                         f"(pool {t.pool_type!r}, {'causal' if t.causal else 'bidirectional'}): it needs all "
                         f"{t.context_length}")
    x = t.token_embedding(tokens).to(t.cast_dtype)  # (B, L, w)
    if pseudo_tokens is not None:
        if placeholder_id is None:
            raise ValueError("pseudo_tokens given without a placeholder_id")
        is_placeholder = (tokens == placeholder_id).unsqueeze(-1)  # (B, L, 1)
        x = torch.where(is_placeholder, pseudo_tokens.to(t.cast_dtype).unsqueeze(1), x)
    x = x + t.positional_embedding[:length].to(t.cast_dtype)
    if direct and t.direct and not any(blk.training and blk.attn.dropout > 0 for blk in t.transformer.resblocks):
        pos = _POOL_POSITIONS[t.pool_type](tokens, t.eos_id)  # (B,)
        *blocks, last = t.transformer.resblocks
        for blk in blocks:
            x = _causal_block(blk, x)
        x = t.ln_final(_block_at_rows(last, x, pos))  # (B, w)
    else:
        mask = t.attn_mask[:length, :length] if t.attn_mask is not None else None
        if t.pad_mask is not None:  # as open_clip's TextTransformer._embeds: pads masked as keys
            pad = t.pad_mask(tokens, length, x.dtype)  # (B*H, L, L)
            mask = pad if mask is None else mask.unsqueeze(0) + pad
        x = t.transformer(x, attn_mask=mask)
        x = t.ln_final(x)  # (B, L, w)
        x = text_global_pool(x, tokens, t.pool_type, eos_token_id=t.eos_id)  # (B, w)
    if t.text_projection is not None:
        x = t.text_projection(x) if isinstance(t.text_projection, nn.Linear) else x @ t.text_projection
    return x  # (B, d)


# The direct path: open_clip's ResidualAttentionBlock written out with its own weights. Measured on the
# 2-core CPU machines (ViT-B-32 and ViT-L-14 text towers, batch 64, about 14 tokens), forward + backward
# through the pseudo-token is 5-9% faster than nn.MultiheadAttention: the batch-first input stays
# contiguous (one matmul for q, k, v instead of a batched matmul on a transposed view), attention gets
# SDPA's is_causal instead of a float mask, and the last block is computed only at the pooled position.


def _causal_block(blk: ResidualAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """One block with causal self-attention: (B, L, w) -> (B, L, w)."""
    a = blk.attn
    B, L, w = x.shape
    qkv = F.linear(blk.ln_1(x), a.in_proj_weight, a.in_proj_bias)  # (B, L, 3w)
    q, k, v = qkv.view(B, L, 3, a.num_heads, w // a.num_heads).permute(2, 0, 3, 1, 4)  # each (B, H, L, w/H)
    o = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, L, w)
    x = x + blk.ls_1(a.out_proj(o))
    return x + blk.ls_2(blk.mlp(blk.ln_2(x)))


def _block_at_rows(blk: ResidualAttentionBlock, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """The last block's output at one position per caption, pos (B,): (B, L, w) -> (B, w).

    Only the pooled position is read after the last block, so its query, output projection and MLP are
    computed for that row alone; keys and values still cover every position up to it.
    """
    a = blk.attn
    B, L, w = x.shape
    heads = a.num_heads
    h = blk.ln_1(x)  # (B, L, w)
    rows = torch.arange(B, device=x.device)
    bias = a.in_proj_bias
    q = F.linear(h[rows, pos], a.in_proj_weight[:w], None if bias is None else bias[:w])  # (B, w)
    kv = F.linear(h, a.in_proj_weight[w:], None if bias is None else bias[w:])  # (B, L, 2w)
    k, v = kv.view(B, L, 2, heads, w // heads).permute(2, 0, 3, 1, 4)  # each (B, H, L, w/H)
    allowed = torch.arange(L, device=x.device)[None, :] <= pos[:, None]  # (B, L): causal, seen from pos
    o = F.scaled_dot_product_attention(q.view(B, heads, 1, w // heads), k, v,
                                       attn_mask=allowed[:, None, None, :]).reshape(B, w)
    y = x[rows, pos] + blk.ls_1(a.out_proj(o))  # (B, w)
    return y + blk.ls_2(blk.mlp(blk.ln_2(y)))


@torch.no_grad()
def encode_texts(model: nn.Module, tokenize, texts, batch_size: int = 256, tower: TextTower | None = None,
                 on_batch=None) -> torch.Tensor:
    """E_T of texts in order: (N, d) unnormalised features, float32 on the CPU, `batch_size` texts at a time,
    each batch trimmed to its longest text where that is exact for the tower (`trim_for`).

    tokenize: texts -> (B, context) token ids on the model's device. on_batch(n): called after each batch."""
    t = tower or TextTower.of(model)
    out = []
    for i in range(0, len(texts), batch_size):
        batch = list(texts[i:i + batch_size])
        out.append(encode_text_with_pseudo_tokens(model, trim_for(tokenize(batch), t), tower=t).float().cpu())
        if on_batch is not None:
            on_batch(len(batch))
    return torch.cat(out)
