"""Tiny random-init Hugging Face text towers built offline: a config.json and a word-level tokenizer.json
(the `tokenizers` library, in memory) in a local folder, and an open_clip model config whose text_cfg points
at that folder, registered as open_clip's own configs are (tests/test_text_encoding.py does the same)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

WORDS = ("a photo of the red dog on grass two cats and that is blue green big small runs number table "
         "in with black white long short has sleeves collar print striped loose darker longer").split()
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]  # ids 0-3, as RoBERTa's: pad 1
PAD_ID = 1
CONTEXT = 16

# model type -> (open_clip pooler, projection, the Hugging Face config fields for a 2-layer, 32-wide model)
_BODY = {"vocab_size": 0, "pad_token_id": PAD_ID, "bos_token_id": 0, "eos_token_id": 2}
_BERTLIKE = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
             "max_position_embeddings": 40, "type_vocab_size": 1}
TOWERS = {
    "roberta": ("mean_pooler", "mlp", _BERTLIKE),
    "xlm-roberta": ("mean_pooler", "linear", _BERTLIKE),
    "bert": ("cls_pooler", "linear", _BERTLIKE),
    "mt5": ("mean_pooler", "linear", {"d_model": 32, "d_kv": 16, "d_ff": 64, "num_layers": 2,
                                       "num_decoder_layers": 1, "num_heads": 2, "decoder_start_token_id": PAD_ID}),
    "m2m_100": ("cls_pooler", "linear", {"d_model": 32, "encoder_layers": 2, "decoder_layers": 1,
                                          "encoder_attention_heads": 2, "decoder_attention_heads": 2,
                                          "encoder_ffn_dim": 64, "decoder_ffn_dim": 64,
                                          "max_position_embeddings": 40, "scale_embedding": True}),
}


def write_tower(folder: Path, model_type: str) -> Path:
    """config.json, tokenizer.json and tokenizer_config.json of a tiny `model_type` tower in `folder`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {t: i for i, t in enumerate(SPECIALS + ["$"] + WORDS + [str(i) for i in range(30)])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
        "unk_token": "<unk>", "cls_token": "<s>", "sep_token": "</s>", "model_max_length": CONTEXT}))
    cfg = {"model_type": model_type, **_BODY, **TOWERS[model_type][2]}
    cfg["vocab_size"] = len(vocab)
    (folder / "config.json").write_text(json.dumps(cfg))
    return folder


def register(root: Path, model_type: str) -> str:
    """Write the tower under root and register an open_clip config for it; returns the architecture name."""
    import open_clip

    folder = write_tower(root / model_type, model_type)
    pooler, proj, _ = TOWERS[model_type]
    name = f"lincir-test-hf-{model_type}"
    open_clip.factory._MODEL_CONFIGS[name] = copy.deepcopy({
        "embed_dim": 48,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
        "text_cfg": {"hf_model_name": str(folder), "hf_tokenizer_name": str(folder), "hf_model_pretrained": False,
                     "hf_pooler_type": pooler, "hf_proj_type": proj, "context_length": CONTEXT},
    })
    return name
