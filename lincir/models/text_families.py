"""Text-tower families: which encoder path is exact for an open_clip text tower and its tokenizer.

The training step's speed-ups are exact only for some towers (read from open_clip 3.3.0's transformer.py,
model.py and model_configs):
- causal, pooled at the end-of-text token (argmax or eos: OpenAI / LAION ViT-B/L/H/bigG, EVA, DFN, MetaCLIP,
  PE-Core with its 32-token context): no position after the pooled one reaches it, so trailing padding can be
  cut (`trim`), and towers of open_clip's standard blocks take the direct causal path.
- causal, pooled at the last position: the pooled token is a pad, so every batch keeps the full context.
- bidirectional (no causal mask: SigLIP and SigLIP 2 pooled at the last position; MobileCLIP 2 pooled at argmax
  with no pad mask): pads reach the pooled token, so every batch keeps the full context and runs open_clip's
  own blocks.
Refused, with the reason: a causal tower pooled at its first token (the pseudo-token could never reach the
output), CoCa's appended CLS embedding, unpooled towers, and Hugging Face text towers (`hf_model_name`), which
need `transformers` and downloaded model files this project cannot assume.

The placeholder: open_clip's CLIP BPE keeps a spaced `$` as one token; Hugging Face tokenizers (SigLIP's
canonicalise text and strip the `$`) get it by token id (`lincir.models.tokenizers`).
"""
from __future__ import annotations

from dataclasses import dataclass

# Text-config keys that change open_clip's default block: such towers keep open_clip's own forward.
_NONSTANDARD_BLOCK_KEYS = ("block_type", "qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner",
                           "scale_attn", "scale_fc")


@dataclass(frozen=True)
class TextFamily:
    """How one backbone's text tower is encoded, and why that is exact."""

    name: str  # "causal-eot", "causal-fixed", "bidirectional", or "refused"
    causal: bool
    pool: str  # open_clip's text pool type
    context_length: int
    trim: bool  # batches cut to their furthest pooled position
    direct: bool  # the direct causal path (open_clip's standard blocks under the causal mask)
    placeholder: str  # "token": the tokenizer keeps `$` as one id; "by-id": put in by token id
    tokenizer: str  # "clip-bpe", "hf" (open_clip's HFTokenizer), "stand-in" (offline, random weights only)
    refused: str | None = None  # why this family cannot be handled exactly

    def path(self) -> str:
        """One line: the encoder path this family takes."""
        if self.refused:
            return f"refused: {self.refused}"
        pad = (f"each batch trimmed to its furthest {self.pool} position" if self.trim
               else f"full {self.context_length}-token padding (pads reach the pooled token)")
        blocks = "direct causal path" if self.direct else "open_clip's own text blocks"
        ph = "$ as one CLIP BPE token" if self.placeholder == "token" else "$ put in by token id"
        return f"{pad}; {blocks}; {ph}"


def decide(causal: bool, pool: str, context_length: int, direct: bool, tokenizer: str, placeholder: str,
           hf_tower: bool = False, cls_emb: bool = False) -> TextFamily:
    """The family of a tower from its facts; the one rule both front ends (an instance, a config) share."""
    refused = None
    if hf_tower:
        refused = ("a Hugging Face text tower (hf_model_name): it needs transformers and downloaded model files, "
                   "not available offline; not supported")
    elif cls_emb:
        refused = "an appended CLS embedding (CoCa): not supported"
    elif pool not in ("argmax", "eos", "last", "first"):
        refused = f"pool type {pool!r} gives no single text feature"
    elif causal and pool == "first":
        refused = "causal and pooled at the first token: no later token, the pseudo-word included, reaches it"
    trim = causal and pool in ("argmax", "eos")
    name = "refused" if refused else ("causal-eot" if trim else "causal-fixed" if causal else "bidirectional")
    return TextFamily(name, causal, pool, context_length, trim and not refused, direct and causal and not refused,
                      placeholder, tokenizer, refused)


def classify(model, tokenizer) -> TextFamily:
    """The family of an instantiated open_clip model and its tokenizer (computed once per backbone)."""
    from lincir.core.text_encoding import TextTower
    from lincir.models.tokenizers import ByIdTokenizer

    src = model.text if hasattr(model, "text") else model
    tok = "stand-in" if getattr(tokenizer, "name", "").startswith("stand-in") else \
        ("clip-bpe" if type(tokenizer).__name__ == "SimpleTokenizer" else "hf")
    placeholder = "by-id" if isinstance(tokenizer, ByIdTokenizer) else "token"
    if not hasattr(src, "token_embedding") or getattr(src, "cls_emb", None) is not None:
        return decide(True, "argmax", int(tokenizer.context_length), False, tok, placeholder,
                      hf_tower=not hasattr(src, "token_embedding"), cls_emb=hasattr(src, "token_embedding"))
    t = TextTower.of(model)
    return decide(t.causal, t.pool_type, t.context_length, t.direct, tok, placeholder)


def from_config(cfg: dict) -> TextFamily:
    """The family open_clip's model config predicts, without building the model (for `lincir backbones`)."""
    text = cfg.get("text_cfg", {})
    causal = not text.get("no_causal_mask", False)
    hf_tok = bool(text.get("hf_tokenizer_name"))
    direct = causal and not any(text.get(k) for k in _NONSTANDARD_BLOCK_KEYS)
    return decide(causal, text.get("pool_type", "argmax"), int(text.get("context_length", 77)), direct,
                  "hf" if hf_tok else "clip-bpe", "by-id" if hf_tok else "token",
                  hf_tower=bool(text.get("hf_model_name")), cls_emb=bool(text.get("embed_cls")))
