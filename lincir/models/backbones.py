"""Named CLIP backbones on top of open_clip: the paper's three, ViT-B-32 for quick real runs, and the
embedded world's own small CLIPs (shipped in lincir/assets)."""
from __future__ import annotations

import hashlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from lincir.core.text_encoding import TextTower, encode_text_with_pseudo_tokens, encode_texts, trim_padding
from lincir.errors import LincirError

PACKAGE = Path(__file__).resolve().parent.parent  # lincir/: assets/ (shipped weights) and model_configs/
ASSETS = PACKAGE / "assets"
MODEL_CONFIGS = PACKAGE / "model_configs"
PLACEHOLDER = "$"


@dataclass(frozen=True)
class BackboneSpec:
    """A named backbone: an open_clip architecture and where its weights come from."""

    name: str
    arch: str
    pretrained: str | None = None  # open_clip pretrained tag (downloads on a machine with internet)
    asset: str | None = None  # a checkpoint shipped in lincir/assets (the world CLIPs)
    quick_gelu: bool = False  # OpenAI's weights were trained with QuickGELU
    description: str = ""


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in [
        BackboneSpec("ViT-B-32", "ViT-B-32", "openai", quick_gelu=True, description="OpenAI ViT-B/32: quick real runs"),
        BackboneSpec("ViT-L-14", "ViT-L-14", "openai", quick_gelu=True, description="OpenAI ViT-L/14 (paper)"),
        BackboneSpec("ViT-H-14", "ViT-H-14", "laion2b_s32b_b79k", description="LAION ViT-H/14 (paper)"),
        BackboneSpec("ViT-bigG-14", "ViT-bigG-14", "laion2b_s39b_b160k", description="LAION ViT-bigG/14 (paper)"),
        BackboneSpec("shapes-clip", "shapes-clip", asset="shapes-clip",
                     description="the shapes world's CLIP, fixed temperature: a real-CLIP-like modality gap"),
        BackboneSpec("shapes-clip-lowgap", "shapes-clip", asset="shapes-clip-lowgap",
                     description="the shapes world's CLIP, learned temperature: almost no modality gap"),
    ]
}


# The CLIPs that see 64x64 world renders (they ship as assets); real backbones run on real data.
WORLD_BACKBONES: tuple[str, ...] = tuple(name for name, spec in BACKBONES.items() if spec.asset)
DEFAULT_BACKBONE = "shapes-clip"


def register_model_configs() -> None:
    """Make lincir/model_configs/*.json (the world CLIPs) known to open_clip; idempotent."""
    import open_clip

    if MODEL_CONFIGS.is_dir() and "shapes-clip" not in open_clip.list_models():
        open_clip.add_model_config(MODEL_CONFIGS)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' is CUDA when present, else CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LincirError(f"--device: unknown device {device!r} (use auto, cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LincirError(f"--device: {device} asked for, but no CUDA device is available")
    return dev


class Backbone:
    """A frozen open_clip CLIP with its tokenizer, image transform and the placeholder token id."""

    def __init__(self, name: str, model: nn.Module, preprocess, tokenizer, weights: str, device: torch.device):
        self.name, self.model, self.preprocess, self.tokenizer = name, model, preprocess, tokenizer
        self.weights = weights  # "random", a pretrained tag, or a file path: part of every cache key
        self.device = device
        self._fingerprint: str | None = None
        model.eval().requires_grad_(False)
        self.tower = TextTower.of(model)
        self.embed_dim = int(model.visual.output_dim if hasattr(model.visual, "output_dim") else model.embed_dim)
        self.token_width = int(self.tower.token_embedding.embedding_dim)
        self.context_length = int(tokenizer.context_length)
        self.placeholder_id = placeholder_token_id(tokenizer)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """(B, context_length) token ids on the backbone's device."""
        return self.tokenizer(list(texts)).to(self.device)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed pixels -> (B, d) unnormalised image features."""
        return self.model.encode_image(pixels.to(self.device))

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, d), exactly open_clip's encode_text (trailing padding trimmed)."""
        return encode_text_with_pseudo_tokens(self.model, trim_padding(tokens.to(self.device)), tower=self.tower)

    def encode_texts(self, texts, batch_size: int = 256, on_batch=None) -> torch.Tensor:
        """E_T of texts in order: (N, d) unnormalised, float32 on the CPU (batched, each batch trimmed)."""
        if len(texts) == 0:
            return torch.zeros(0, self.embed_dim)
        return encode_texts(self.model, self.tokenize, texts, batch_size, self.tower, on_batch)

    def encode_with_pseudo(self, tokens: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens with the placeholder row replaced by pseudo (B, w) -> (B, d)."""
        return encode_text_with_pseudo_tokens(
            self.model, trim_padding(tokens.to(self.device)), self.placeholder_id, pseudo, tower=self.tower
        )

    def fingerprint(self) -> str:
        """Names the backbone and hashes its weights (a sample of every tensor), for cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha256(f"{self.name}\x00{self.weights}\x00".encode())
            with torch.no_grad():
                for key, t in self.model.state_dict().items():
                    flat = t.detach().reshape(-1)
                    sample = flat[:: max(1, flat.numel() // 4096)]  # ~4k values a tensor: cheap even for bigG
                    sample = sample.to("cpu", torch.float32 if t.is_floating_point() else torch.int64)
                    h.update(f"{key}{tuple(t.shape)}{t.dtype}".encode())
                    h.update(sample.contiguous().numpy().tobytes())
            self._fingerprint = f"{self.name}|{h.hexdigest()[:32]}"
        return self._fingerprint

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, weights={self.weights!r}, d={self.embed_dim}, w={self.token_width})"


def placeholder_token_id(tokenizer) -> int:
    """The single BPE id the tokenizer gives "$" (checked: it must stay one token)."""
    ids = tokenizer([PLACEHOLDER])[0]
    body = [int(i) for i in ids if int(i) != 0][1:-1]  # drop start/end of text and padding
    if len(body) != 1:
        raise LincirError(f"tokenizer splits the placeholder {PLACEHOLDER!r} into {len(body)} tokens")
    return body[0]


def asset_paths(asset: str) -> tuple[Path, Path]:
    return ASSETS / f"{asset}.safetensors", ASSETS / f"{asset}.json"


def _load_state_dict(path: Path) -> dict:
    """Weights from safetensors, or from a torch file read with weights_only=True (never arbitrary pickles)."""
    if not path.is_file():
        raise LincirError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # corrupted or truncated
            raise LincirError(f"{path}: cannot read weights, corrupted or truncated safetensors file "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from None
    from lincir.models.phi_checkpoints import torch_load_weights_only

    state = torch_load_weights_only(path, "weights file")  # a pickle with objects we refuse to build fails here
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise LincirError(f"{path}: expected a state dict, found {type(state).__name__}")
    return {k.removeprefix("module."): v for k, v in state.items()}


@contextmanager
def _quiet_open_clip():
    """open_clip warns on the root logger when it builds a model without weights: we load ours after."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def load_backbone(name: str = DEFAULT_BACKBONE, weights: str = "pretrained", device: str | torch.device = "cpu") -> Backbone:
    """Load a named backbone.

    weights: "pretrained" (the spec's pretrained tag, or the shipped asset for the world CLIPs),
    "random" (random init, for tests and speed benchmarks), or a path to a local checkpoint
    (safetensors, or a torch state dict read with weights_only=True).
    """
    import open_clip

    if name not in BACKBONES:
        raise LincirError(f"--backbone: unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    spec = BACKBONES[name]
    dev = resolve_device(device)
    register_model_configs()
    kwargs = {"force_quick_gelu": spec.quick_gelu}
    state = None
    if weights == "pretrained" and spec.asset:
        st_path, _ = asset_paths(spec.asset)
        if not st_path.is_file():
            raise LincirError(f"backbone {name}: shipped weights {st_path} are missing "
                              f"(train them with `lincir world train-clip --preset {name}`)")
        state, tag = _load_state_dict(st_path), str(st_path.name)
    elif weights == "pretrained":
        tag = spec.pretrained
    elif weights == "random":
        tag = "random"
    else:
        state, tag = _load_state_dict(Path(weights)), str(Path(weights).resolve())

    pretrained = spec.pretrained if (weights == "pretrained" and not spec.asset) else None
    try:
        with _quiet_open_clip(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # "random" weights are one fixed init, so caches keyed on them stay true
            model, _, preprocess = open_clip.create_model_and_transforms(spec.arch, pretrained=pretrained, **kwargs)
    except Exception as e:
        if pretrained:
            cache = os.environ.get("HF_HUB_CACHE") or os.path.expanduser("~/.cache/huggingface/hub")
            raise LincirError(
                f"backbone {name}: could not load open_clip pretrained weights {spec.arch}/{pretrained} "
                f"(looked in the Hugging Face cache {cache} and tried to download: {type(e).__name__}). "
                f"Offline, download the checkpoint on a machine with internet and pass it as --weights PATH"
            ) from None
        raise
    if state is not None:
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if k != "attn_mask"]
        if missing or unexpected:
            raise LincirError(f"{weights if weights != 'pretrained' else tag}: weights do not fit {spec.arch} "
                              f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})")
    model = model.to(dev)
    tokenizer = open_clip.get_tokenizer(spec.arch)
    return Backbone(name, model, preprocess, tokenizer, tag, dev)
