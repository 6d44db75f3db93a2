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
- Hugging Face text towers (`hf_model_name`, open_clip's HFTextEncoder: xlm-roberta, roberta, mt5, nllb):
  pads masked out of attention (as keys) and of mean pooling, CLS pooling at position 0, so trailing pads are
  never read and a batch may be cut after its longest text; the pseudo-token goes in through the model's
  `inputs_embeds`. Supported for the model types whose parity was checked (`HF_VERIFIED_MODEL_TYPES`), with
  `transformers` installed (an optional dependency) and the model's config and tokenizer files at hand.
Refused, with the reason: a causal tower pooled at its first token (the pseudo-token could never reach the
output), CoCa's appended CLS embedding, unpooled towers, Hugging Face towers of other model types or poolers,
or whose tokenizer pads with an id the model does not mask.

The placeholder: open_clip's CLIP BPE keeps a spaced `$` as one token; Hugging Face tokenizers (SigLIP's
canonicalise text and strip the `$`) get it by token id (`lincir.models.tokenizers`).
"""
from __future__ import annotations

from dataclasses import dataclass

# Text-config keys that change open_clip's default block: such towers keep open_clip's own forward.
# Hugging Face model types whose inputs_embeds path tests/test_text_families.py checks against open_clip's
# encode_text at random init (tiny configs built offline), and open_clip's pooler names for them.
HF_VERIFIED_MODEL_TYPES = ("roberta", "xlm-roberta", "bert", "mt5", "m2m_100")
HF_POOLER_TYPES = {"mean_pooler": "mean", "cls_pooler": "cls", "cls_last_hidden_state_pooler": "cls"}

_NONSTANDARD_BLOCK_KEYS = ("block_type", "qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner",
                           "scale_attn", "scale_fc")


@dataclass(frozen=True)
class TextFamily:
    """How one backbone's text tower is encoded, and why that is exact."""

    name: str  # "causal-eot", "causal-fixed", "bidirectional", "hf-masked", or "refused"
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
        if self.name == "hf-masked":
            pad = f"each batch trimmed after its longest text (pads masked out of attention and {self.pool} pooling)"
            blocks = "the Hugging Face model's own forward, pseudo-token through inputs_embeds"
        else:
            pad = (f"each batch trimmed to its furthest {self.pool} position" if self.trim
                   else f"full {self.context_length}-token padding (pads reach the pooled token)")
            blocks = "direct causal path" if self.direct else "open_clip's own text blocks"
        ph = "$ as one CLIP BPE token" if self.placeholder == "token" else "$ put in by token id"
        return f"{pad}; {blocks}; {ph}"


def decide(causal: bool, pool: str, context_length: int, direct: bool, tokenizer: str, placeholder: str,
           hf_tower: bool = False, cls_emb: bool = False, hf_refused: str | None = None) -> TextFamily:
    """The family of a tower from its facts; the one rule both front ends (an instance, a config) share.
    A Hugging Face tower gives pool "mean" or "cls" (bidirectional, pads masked); hf_refused: why it cannot
    be handled (a pooler, model type or pad id found unsupported)."""
    if hf_tower:
        refused = hf_refused
        if not refused and pool not in ("mean", "cls"):
            refused = f"Hugging Face text pooler {pool!r} is not supported (mean or CLS pooling only)"
        if refused:
            refused = f"a Hugging Face text tower: {refused}"
        return TextFamily("refused" if refused else "hf-masked", False, pool, context_length, not refused, False,
                          placeholder, tokenizer, refused)
    refused = None
    if cls_emb:
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
    if type(src).__name__ == "HFTextEncoder":
        return _classify_hf(model, tokenizer)
    tok = "stand-in" if getattr(tokenizer, "name", "").startswith("stand-in") else \
        ("clip-bpe" if type(tokenizer).__name__ == "SimpleTokenizer" else "hf")
    placeholder = "by-id" if isinstance(tokenizer, ByIdTokenizer) else "token"
    if not hasattr(src, "token_embedding"):
        return TextFamily("refused", True, "?", int(tokenizer.context_length), False, False, placeholder, tok,
                          f"{type(src).__name__} text tower (no token embedding): not supported")
    if getattr(src, "cls_emb", None) is not None:
        return decide(True, "argmax", int(tokenizer.context_length), False, tok, placeholder, cls_emb=True)
    t = TextTower.of(model)
    return decide(t.causal, t.pool_type, t.context_length, t.direct, tok, placeholder)


def _classify_hf(model, tokenizer) -> TextFamily:
    from lincir.core.text_encoding import TextTower
    from lincir.models.tokenizers import ByIdTokenizer

    placeholder = "by-id" if isinstance(tokenizer, ByIdTokenizer) else "token"
    context = int(getattr(tokenizer, "context_length", 0) or 0)
    try:
        t = TextTower.of(model)
    except ValueError as e:
        return decide(False, "?", context, False, "hf", placeholder, hf_tower=True, hf_refused=str(e))
    why = None
    if t.model_type not in HF_VERIFIED_MODEL_TYPES:
        why = (f"model type {t.model_type!r} is not among those verified "
               f"({', '.join(HF_VERIFIED_MODEL_TYPES)})")
    elif getattr(tokenizer, "pad_id", t.pad_id) != t.pad_id:
        why = f"the tokenizer pads with id {tokenizer.pad_id} but the model masks id {t.pad_id}"
    return decide(False, t.pool_type, context, False, "hf", placeholder, hf_tower=True, hf_refused=why)


def from_config(cfg: dict) -> TextFamily:
    """The family open_clip's model config predicts, without building the model (for `lincir backbones`)."""
    text = cfg.get("text_cfg", {})
    if text.get("hf_model_name"):  # the model type is in the Hugging Face config, read when it is built
        pooler = text.get("hf_pooler_type", "mean_pooler")
        return decide(False, HF_POOLER_TYPES.get(pooler, pooler), int(text.get("context_length", 77)), False,
                      "hf", "by-id", hf_tower=True)
    causal = not text.get("no_causal_mask", False)
    hf_tok = bool(text.get("hf_tokenizer_name"))
    direct = causal and not any(text.get(k) for k in _NONSTANDARD_BLOCK_KEYS)
    return decide(causal, text.get("pool_type", "argmax"), int(text.get("context_length", 77)), direct,
                  "hf" if hf_tok else "clip-bpe", "by-id" if hf_tok else "token",
                  hf_tower=bool(text.get("hf_model_name")), cls_emb=bool(text.get("embed_cls")))
