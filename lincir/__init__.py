"""lincir: a reproducible companion to LinCIR (CVPR 2024), language-only training of zero-shot composed
image retrieval. The public API; see README.md and the numbered notebooks.

    import lincir
    backbone = lincir.load_backbone("shapes-clip")
    phi, run, _ = lincir.trained_phi(lincir.RUNS["world-quick"], "runs/cache")

The package is layered (README "What is here"): `core` (the paper's math) < `models` < `data` < `world` <
`train`, `eval` < `experiments`, `speed` < `report` < `cli`; each imports only from layers below it.
Names are imported on first use, so `lincir --help` does not wait for torch and open_clip.
"""
from importlib import import_module

__version__ = "0.1.0"

_API = {
    # core: the paper
    "Phi": "core.phi",
    "NOISES": "core.noise", "DEFAULT_SCALES": "core.noise", "add_noise": "core.noise", "sample_noise": "core.noise",
    "STRATEGIES": "core.masking", "KeywordSpans": "core.masking", "apply_masking": "core.masking",
    "encode_text_with_pseudo_tokens": "core.text_encoding", "trim_padding": "core.text_encoding",
    "smp_loss": "core.losses", "pic2word_loss": "core.losses",
    "gap_vector": "core.modality_gap",
    # models
    "BACKBONES": "models.backbones", "WORLD_BACKBONES": "models.backbones", "Backbone": "models.backbones",
    "load_backbone": "models.backbones",
    "load_phi": "models.phi_checkpoints", "save_phi": "models.phi_checkpoints",
    "load_phi_checkpoint": "models.phi_checkpoints",
    # data
    "read_captions": "data.corpus", "clean_caption": "data.corpus",
    "extract_keyword_spans": "data.keywords", "mask_captions": "data.keywords",
    "mask_captions_with_info": "data.keywords",
    # train
    "RUNS": "train.config", "TrainConfig": "train.config", "train": "train.loop", "trained_phi": "train.run_cache",
    # eval
    "BENCHMARKS": "eval.benchmarks", "load_benchmark": "eval.benchmarks",
    "METHODS": "eval.methods", "QueryEncoder": "eval.query_encoder", "rank_benchmark": "eval.harness",
    # errors
    "LincirError": "errors",
}
__all__ = sorted(_API)


def __getattr__(name: str):
    if name in _API:
        value = getattr(import_module(f".{_API[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'lincir' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
