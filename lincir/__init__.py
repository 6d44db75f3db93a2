"""lincir: a reproducible companion to LinCIR (CVPR 2024), language-only training of zero-shot composed
image retrieval. The public API; see README.md and the numbered notebooks.

Names are imported on first use, so `lincir --help` does not wait for torch and open_clip.
"""
from importlib import import_module

__version__ = "0.1.0"

_API = {
    "BACKBONES": "backbones", "Backbone": "backbones", "BackboneSpec": "backbones", "load_backbone": "backbones",
    "load_phi": "checkpoints", "save_phi": "checkpoints",
    "LincirError": "errors",
    "NOISES": "noise", "add_noise": "noise",
    "Phi": "phi",
    "encode_text_with_pseudo_tokens": "text_encoding", "trim_padding": "text_encoding",
    "RUNS": "training", "TrainConfig": "training", "train": "training",
    "trained_phi": "experiments",
    "BENCHMARKS": "benchmarks", "load_benchmark": "benchmarks",
    "METHODS": "methods", "QueryEncoder": "methods", "rank_benchmark": "methods",
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
