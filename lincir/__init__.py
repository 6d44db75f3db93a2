"""lincir: a reproducible companion to LinCIR (CVPR 2024), language-only training of zero-shot composed
image retrieval. The public API; see README.md and the numbered notebooks."""
from .backbones import BACKBONES, Backbone, BackboneSpec, load_backbone
from .checkpoints import load_phi, save_phi
from .errors import LincirError
from .noise import NOISES, add_noise
from .phi import Phi
from .text_encoding import encode_text_with_pseudo_tokens, trim_padding
from .training import RUNS, TrainConfig, train

__version__ = "0.1.0"
__all__ = ["BACKBONES", "Backbone", "BackboneSpec", "LincirError", "NOISES", "Phi", "RUNS", "TrainConfig",
           "add_noise", "encode_text_with_pseudo_tokens", "load_backbone", "load_phi", "save_phi", "train",
           "trim_padding"]
