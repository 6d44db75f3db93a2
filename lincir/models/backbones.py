"""CLIP backbones on top of open_clip: named presets (the paper's three, ViT-B-32 for quick real runs, the
embedded world's own small CLIPs shipped in lincir/assets), and any open_clip architecture as ARCH[:TAG].
Each backbone's text tower is classified once (`lincir.models.text_families`) and encoded on the path exact
for it."""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from lincir.core.text_encoding import (HFTower, TextTower, encode_text_with_pseudo_tokens, encode_texts,
                                       needed_lengths, trim_for)
from lincir.errors import LincirError
from lincir.models.text_families import TextFamily, classify, from_config

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
    world: str | None = None  # the embedded world an asset was trained on ("shapes" or "scenes")
    quick_gelu: bool = False  # OpenAI's weights were trained with QuickGELU
    description: str = ""


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in [
        BackboneSpec("ViT-B-32", "ViT-B-32", "openai", quick_gelu=True, description="OpenAI ViT-B/32: quick real runs"),
        BackboneSpec("ViT-L-14", "ViT-L-14", "openai", quick_gelu=True, description="OpenAI ViT-L/14 (paper)"),
        BackboneSpec("ViT-H-14", "ViT-H-14", "laion2b_s32b_b79k", description="LAION ViT-H/14 (paper)"),
        BackboneSpec("ViT-bigG-14", "ViT-bigG-14", "laion2b_s39b_b160k", description="LAION ViT-bigG/14 (paper)"),
        BackboneSpec("shapes-clip", "shapes-clip", asset="shapes-clip", world="shapes",
                     description="the shapes world's CLIP, fixed temperature: a real-CLIP-like modality gap"),
        BackboneSpec("shapes-clip-lowgap", "shapes-clip", asset="shapes-clip-lowgap", world="shapes",
                     description="the shapes world's CLIP, learned temperature: almost no modality gap"),
        *(BackboneSpec(f"scenes-clip-{k}", f"scenes-clip-{k}", asset=f"scenes-clip-{k}", world="scenes",
                       description=f"the scenes world's {size} CLIP (fixed temperature)")
          for k, size in (("s", "small"), ("m", "medium"), ("l", "large"))),
    ]
}


# The CLIPs that see 64x64 world renders (they ship as assets), per world; real backbones run on real data.
WORLD_BACKBONES: tuple[str, ...] = tuple(name for name, spec in BACKBONES.items() if spec.world == "shapes")
SCENES_BACKBONES: tuple[str, ...] = tuple(name for name, spec in BACKBONES.items() if spec.world == "scenes")
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
    if not isinstance(device, torch.device) and str(device).split(":")[0] not in ("cpu", "cuda", "mps"):
        raise LincirError(f"--device: unknown device {device!r} (use auto, cpu or cuda[:N])")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise LincirError(f"--device: unknown device {device!r} (use auto, cpu or cuda[:N])") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LincirError(f"--device: {device} asked for, but no CUDA device is available")
    return dev


class _DistinctTokenizer:
    """open_clip's tokenizer, run once per distinct text: token ids are a pure function of the text, so a corpus
    of many duplicates tokenises in the time of its distinct captions, and a text seen before (an evaluation's
    query prompts, scored once per trained phi) is not tokenised again (exact, same ids)."""

    MEMO_IDS = 8_000_000  # token ids remembered (int64: 64 MB), whatever the context; then the memo restarts

    def __init__(self, tokenizer):
        self._tok = tokenizer
        self._memo: dict[str, torch.Tensor] = {}
        self.memo_texts = max(1, self.MEMO_IDS // int(getattr(tokenizer, "context_length", 77) or 77))

    def __call__(self, texts, *args, **kwargs) -> torch.Tensor:
        if isinstance(texts, str) or args or kwargs or not texts:
            return self._tok(texts, *args, **kwargs)
        texts = list(texts)
        unique = list(dict.fromkeys(texts))
        memo = self._memo
        if len(unique) > self.memo_texts:  # a corpus in one call: deduplicated, not remembered
            memo = {}
        elif len(memo) + len(unique) > self.memo_texts:
            memo = self._memo = {}
        new = [t for t in unique if t not in memo]
        if new:
            memo.update(zip(new, self._tok(new)))
        return torch.stack([memo[t] for t in texts])

    def __getattr__(self, name):  # context_length, encode, decode, ...: the wrapped tokenizer's
        return getattr(self._tok, name)

    def __repr__(self) -> str:  # the wrapped tokenizer's: a cache-key part (Backbone.fingerprint), no address
        return repr(self._tok)


class Backbone:
    """A frozen open_clip CLIP with its tokenizer, image transform and the placeholder token id."""

    def __init__(self, name: str, model: nn.Module, preprocess, tokenizer, weights: str, device: torch.device):
        self.name, self.model, self.preprocess = name, model, preprocess
        self.tokenizer = _DistinctTokenizer(tokenizer)
        self.weights = weights  # "random", a pretrained tag, or a file path: part of every cache key
        self.device = device
        self._fingerprint: str | None = None
        model.eval().requires_grad_(False)
        self.family: TextFamily = classify(model, tokenizer)
        if self.family.refused:
            raise LincirError(f"backbone {name}: text tower refused: {self.family.refused}")
        self.tower = TextTower.of(model)
        self.embed_dim = _joint_width(self.tower)
        self.token_width = int(self.tower.token_embedding.embedding_dim)
        self.context_length = int(tokenizer.context_length)
        self.placeholder_id = placeholder_token_id(tokenizer)

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """(B, context_length) token ids on the backbone's device."""
        return self.tokenizer(list(texts)).to(self.device)

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) preprocessed pixels -> (B, d) unnormalised image features."""
        return self.model.encode_image(pixels.to(self.device))

    def trim(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, context) -> (B, L): cut to the batch's furthest pooled position where the family allows it
        (exact); the tokens unchanged for families whose pads reach the pooled token."""
        return trim_for(tokens, self.tower)

    def lengths(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, context) -> (B,) tokens each text needs (its pooled position + 1; the context where untrimmable),
        for length bucketing."""
        if not self.family.trim:
            return torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long)
        return needed_lengths(tokens, self.tower)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens -> (B, d), exactly open_clip's encode_text (trailing padding trimmed where exact)."""
        return encode_text_with_pseudo_tokens(self.model, self.trim(tokens.to(self.device)), tower=self.tower)

    def encode_texts(self, texts, batch_size: int = 256, on_batch=None) -> torch.Tensor:
        """E_T of texts in order: (N, d) unnormalised, float32 on the CPU (batched, each batch trimmed)."""
        if len(texts) == 0:
            return torch.zeros(0, self.embed_dim)
        return encode_texts(self.model, self.tokenize, texts, batch_size, self.tower, on_batch)

    def encode_with_pseudo(self, tokens: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
        """(B, L) tokens with the placeholder row replaced by pseudo (B, w) -> (B, d)."""
        return encode_text_with_pseudo_tokens(
            self.model, self.trim(tokens.to(self.device)), self.placeholder_id, pseudo, tower=self.tower
        )

    def fingerprint(self) -> str:
        """Names the backbone and hashes its weights (a sample of every tensor), for cache keys."""
        if self._fingerprint is None:
            h = hashlib.sha256(f"{self.name}\x00{self.weights}\x00".encode())
            if self.family.tokenizer != "clip-bpe":  # other tokenizers give other ids (CLIP BPE keys unchanged)
                h.update(f"tokenizer:{self.tokenizer!r}\x00".encode())
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


def _joint_width(tower: TextTower | HFTower) -> int:
    """d, the joint embedding width: what the text projection gives (timm image towers have no output_dim)."""
    if isinstance(tower, HFTower):
        return tower.output_dim
    proj = tower.text_projection
    if isinstance(proj, nn.Linear):
        return int(proj.out_features)
    return int(proj.shape[1]) if proj is not None else int(tower.token_embedding.embedding_dim)


def placeholder_token_id(tokenizer) -> int:
    """The single BPE id the tokenizer gives "$" (checked: it must stay one token), or the id a by-id
    tokenizer puts in for it."""
    if getattr(tokenizer, "placeholder_id", None) is not None:
        return int(tokenizer.placeholder_id)
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
    from lincir.models.phi_checkpoints import check_finite, read_safetensors, torch_load_weights_only

    if path.suffix == ".safetensors":
        state, _ = read_safetensors(path, "weights file (cannot read weights)")
    else:
        state = torch_load_weights_only(path, "weights file")  # a pickle with objects we refuse to build fails here
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise LincirError(f"{path}: expected a state dict, found {type(state).__name__}")
        bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            raise LincirError(f"{path}: not a state dict of tensors ({bad[0]!r} holds no tensor)")
        state = {k.removeprefix("module."): v for k, v in state.items()}
    check_finite(state, str(path), "weights")
    return state


def _fit_state(model: nn.Module, state: dict, source: str, arch: str) -> None:
    """Load `state` into `model`, or one line naming the first tensor that is missing, unexpected or of
    another shape (never torch's multi-line dump)."""
    own = model.state_dict()
    wrong = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in state.items() if k in own and v.shape != own[k].shape]
    if wrong:
        k, got, want = wrong[0]
        raise LincirError(f"{source}: weights do not fit {arch}: {k} has shape {got}, expected {want} "
                          f"({len(wrong)} tensors of another shape; a checkpoint of another architecture?)")
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k != "attn_mask"]
    if missing or unexpected:
        raise LincirError(f"{source}: weights do not fit {arch} (missing {missing[:3]}, unexpected "
                          f"{list(unexpected)[:3]})")


def _pretrained_status(spec: BackboneSpec) -> tuple[bool, str]:
    """(is the tag's checkpoint in the local cache, where it would be): checked before anything downloads."""
    import open_clip

    cfg = open_clip.pretrained.get_pretrained_cfg(spec.arch, spec.pretrained) or {}
    hub = (cfg.get("hf_hub") or "").strip("/")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        parts = hub.split("/")
        repo, sub = "/".join(parts[:2]), "/".join(parts[2:])  # "org/name[/subfolder]"
        for name in ("open_clip_model.safetensors", "open_clip_pytorch_model.bin"):
            found = try_to_load_from_cache(repo, f"{sub}/{name}" if sub else name)
            if isinstance(found, str):
                return True, found
        return False, f"the Hugging Face cache ({repo})"
    url = cfg.get("url") or ""
    local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    return bool(url) and local.is_file(), str(local)


def _offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _hub_reachable(timeout: float = 1.5) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within `timeout` seconds."""
    import socket

    if _offline_env():
        return False
    try:
        host = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").split("://")[-1].split("/")[0]
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _quiet_downloads(offline: bool):
    """No retry warnings from the hub client while open_clip fetches weights; offline: no network at all."""
    names = ("huggingface_hub", "urllib3", "requests", "httpx", "open_clip")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.CRITICAL)
    saved = os.environ.get("HF_HUB_OFFLINE")
    consts = None
    if offline:
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            from huggingface_hub import constants as consts

            was, consts.HF_HUB_OFFLINE = consts.HF_HUB_OFFLINE, True
        except Exception:
            consts = None
    try:
        yield
    finally:
        for n, level in levels.items():
            logging.getLogger(n).setLevel(level)
        if offline:
            if saved is None:
                os.environ.pop("HF_HUB_OFFLINE", None)
            else:
                os.environ["HF_HUB_OFFLINE"] = saved
            if consts is not None:
                consts.HF_HUB_OFFLINE = was


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


def resolve_spec(name: str) -> BackboneSpec:
    """A preset by name, or any open_clip architecture as ARCH or ARCH:TAG (checked without building it)."""
    import open_clip

    if name in BACKBONES:
        return BACKBONES[name]
    register_model_configs()
    arch, _, tag = name.partition(":")
    if arch not in open_clip.list_models():
        raise LincirError(f"--backbone: unknown backbone {name!r}; use a preset ({', '.join(BACKBONES)}) or an "
                          f"open_clip architecture as ARCH[:TAG] (see `lincir backbones`)")
    if tag and tag not in open_clip.list_pretrained_tags_by_model(arch):
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(arch)) or "none"
        raise LincirError(f"--backbone: {arch} has no pretrained tag {tag!r} (open_clip knows: {tags})")
    return BackboneSpec(name, arch, tag or None, quick_gelu=(tag == "openai"), description="open_clip architecture")


def arch_config(arch: str) -> dict:
    """open_clip's model config for an architecture (a copy)."""
    import copy

    import open_clip

    register_model_configs()
    return copy.deepcopy(open_clip.get_model_config(arch) or {})


def family_of(name: str) -> TextFamily:
    """The text family a backbone's config predicts, without building it (`lincir backbones ARCH`)."""
    return from_config(arch_config(resolve_spec(name).arch))


def _tokenizer_for(spec: BackboneSpec, weights: str):
    """open_clip's tokenizer for the architecture; Hugging Face ones put the placeholder in by id. Offline, a
    Hugging Face tokenizer cannot load: random-init towers then get the stand-in (`standin_tokenizer`)."""
    import open_clip

    from lincir.models.tokenizers import hf_by_id_tokenizer, standin_tokenizer

    text = arch_config(spec.arch).get("text_cfg", {})
    if not text.get("hf_tokenizer_name"):
        return open_clip.get_tokenizer(spec.arch)
    try:
        with _quiet_open_clip():
            return hf_by_id_tokenizer(open_clip.get_tokenizer(spec.arch))
    except Exception as e:
        if weights != "random" or text.get("hf_model_name"):  # a Hugging Face tower needs its own vocabulary
            raise LincirError(f"backbone {spec.name}: cannot load its Hugging Face tokenizer "
                              f"{text['hf_tokenizer_name']} ({type(e).__name__}: {str(e).splitlines()[0][:100] if str(e) else ''}); "
                              f"it needs `transformers` and the tokenizer files (online once, or in the HF cache)") from None
        clean = text.get("tokenizer_kwargs", {}).get("clean", "whitespace")
        return standin_tokenizer(int(text.get("vocab_size", 49408)), int(text.get("context_length", 77)), clean,
                                 int(text.get("eos_id", 2)))


def context_length_of(name: str) -> int:
    """The text context of a named backbone, from its tokenizer alone (no weights loaded): what corpus
    reading needs, so a bad corpus fails before any model is loaded."""
    spec = resolve_spec(name)
    # From the architecture's config, as open_clip's get_tokenizer reads it: no tokenizer files are needed.
    return int(arch_config(spec.arch).get("text_cfg", {}).get("context_length", 77))


def check_weights_available(name: str, weights: str) -> bool:
    """Cheap checks of a backbone's weights before anything is loaded: the name, a weights file that exists,
    and for a pretrained tag whether it is cached (True) or can be downloaded (False); offline and not
    cached, one line in about a second instead of minutes of hub retries."""
    spec = resolve_spec(name)
    if weights not in ("pretrained", "random"):
        if not Path(weights).is_file():
            raise LincirError(f"{weights}: weights file not found")
        return True
    if weights == "random" or spec.asset:
        return True
    cached, where = _pretrained_status(spec)
    if not cached and not _hub_reachable():
        raise LincirError(
            f"backbone {name}: open_clip pretrained weights {spec.arch}/{spec.pretrained} are not in {where} and "
            f"the hub cannot be reached ({'HF_HUB_OFFLINE is set' if _offline_env() else 'offline'}); "
            f"download them on a machine with internet, or pass a checkpoint file as --weights PATH")
    return cached


def load_backbone(name: str = DEFAULT_BACKBONE, weights: str = "pretrained", device: str | torch.device = "cpu") -> Backbone:
    """Load a backbone: a preset name, or any open_clip architecture as ARCH[:TAG].

    weights: "pretrained" (the spec's pretrained tag, or the shipped asset for the world CLIPs),
    "random" (random init, for tests and speed benchmarks), or a path to a local checkpoint
    (safetensors, or a torch state dict read with weights_only=True). A text tower that cannot be encoded
    exactly is refused before anything heavy is built.
    """
    import open_clip

    spec = resolve_spec(name)
    family = from_config(arch_config(spec.arch))
    if family.refused:
        raise LincirError(f"backbone {name}: text tower refused: {family.refused}")
    if weights == "pretrained" and not spec.asset and not spec.pretrained:
        tags = ", ".join(open_clip.list_pretrained_tags_by_model(spec.arch)) or "none in open_clip"
        raise LincirError(f"--weights pretrained: {name} names no pretrained tag; use {spec.arch}:TAG "
                          f"(tags: {tags}), --weights PATH or --weights random")
    dev = resolve_device(device)
    hf_tower = bool(arch_config(spec.arch).get("text_cfg", {}).get("hf_model_name"))
    if hf_tower and importlib.util.find_spec("transformers") is None:
        raise LincirError(f"backbone {name}: its Hugging Face text tower needs `transformers` "
                          f"(pip install 'lincir[hf]')")
    tokenizer = _tokenizer_for(spec, weights)  # before the model: a missing tokenizer fails fast
    kwargs = {"force_quick_gelu": spec.quick_gelu}
    if hf_tower:  # never fetch the Hugging Face text weights: ours come from the CLIP checkpoint, or are random
        kwargs["pretrained_text"] = False
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
    cached = check_weights_available(name, weights) if pretrained else True
    try:
        with _quiet_open_clip(), _quiet_downloads(offline=cached and bool(pretrained)), \
                torch.random.fork_rng(devices=[]):
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
        from lincir.models.pruned_embedding import expand_token_embedding

        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        if hasattr(model, "token_embedding"):  # a shipped world CLIP keeps only the rows its world's text uses
            try:
                state = expand_token_embedding(state, model.token_embedding.weight)
            except ValueError as e:
                raise LincirError(f"{weights if weights != 'pretrained' else tag}: {e}") from None
        _fit_state(model, state, weights if weights != "pretrained" else tag, spec.arch)
    model = model.to(dev)
    return Backbone(name, model, preprocess, tokenizer, tag, dev)
