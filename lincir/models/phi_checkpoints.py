"""phi checkpoints: safetensors + a JSON of the run; the authors' .pt files read with weights_only=True."""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.storage import atomic_write, atomic_write_json

PHI_FILE, PHI_META = "phi.safetensors", "phi.json"


CHECKSUM_KEY = "content_sha256"  # metadata entry: the hash of every tensor (name, dtype, shape, bytes)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """A content hash of named tensors, in name order: what a flipped byte anywhere in the data changes."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}\x00{t.dtype}\x00{tuple(t.shape)}\x00".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def read_safetensors(path: str | Path, what: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; corrupted, truncated or failing its content checksum (when it
    carries one): a one-line LincirError naming the file."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as e:
        detail = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LincirError(f"{path}: corrupted or truncated {what} ({detail})") from None
    saved = meta.get(CHECKSUM_KEY)
    if saved is not None and tensors_sha256(tensors) != saved:
        raise LincirError(f"{path}: {what} fails its content checksum (the file was altered or damaged after "
                          f"it was written); refused")
    return tensors, meta


def check_finite(tensors: dict[str, torch.Tensor], source: str, what: str) -> None:
    """Refuse weights holding NaN or Inf: they would rank nothing, silently."""
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise LincirError(f"{source}: {what} tensor {name!r} holds {bad} NaN or infinite values; refused")


def save_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None,
                     checksum: bool = True) -> Path:
    """Write a safetensors file atomically and byte-reproducibly, with a content checksum in its metadata.

    The safetensors writer orders the metadata by a per-process random hash, so equal content could give
    different bytes; the header is rewritten here with sorted keys (tensor offsets are relative to the data
    block, so the header may change length)."""
    from safetensors.torch import save

    if checksum:
        metadata = {**(metadata or {}), CHECKSUM_KEY: tensors_sha256(tensors)}

    def _write(tmp: str) -> None:
        blob = save(tensors, metadata=metadata)
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        meta = header.pop("__metadata__", None)
        ordered = {"__metadata__": dict(sorted(meta.items()))} if meta else {}
        ordered.update(sorted(header.items(), key=lambda kv: (kv[1]["data_offsets"][0], kv[0])))
        text = json.dumps(ordered, separators=(",", ":")).encode("utf-8")
        text += b" " * (-len(text) % 8)  # keep the data block 8-byte aligned, as the writer does
        with open(tmp, "wb") as fh:
            fh.write(len(text).to_bytes(8, "little"))
            fh.write(text)
            fh.write(memoryview(blob)[8 + n:])

    return atomic_write(path, _write)


def save_phi(directory: str | Path, phi: Phi, meta: dict, name: str = "phi") -> Path:
    """Write <directory>/<name>.safetensors and <name>.json atomically (weights first, so the JSON never lies).

    name "phi" is the run's phi; "phi_best" the best-validated one beside it (`load_phi` reads either)."""
    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    save_safetensors(directory / f"{name}.safetensors", state)
    atomic_write_json(directory / f"{name}.json", {**meta, **phi.config()})
    return directory / f"{name}.safetensors"


def torch_load_weights_only(path: str | Path, what: str = "torch file") -> object:
    """torch.load with weights_only=True; a file holding other pickled objects is refused, never unpickled.

    Every failure is a one-line LincirError naming the file: refused (and which global it wanted), or unreadable."""
    import re

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # torch colours part of its message
        wanted = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if wanted:
            raise LincirError(f"{path}: refused: the {what} holds a pickled {wanted.group(1)}, not only tensors "
                              f"(read with weights_only=True; arbitrary objects are never unpickled)") from None
        detail = re.sub(r"\s+", " ", text.split("WeightsUnpickler error:")[-1]).strip()
        raise LincirError(f"{path}: not a readable {what}, corrupted or truncated (read with weights_only=True; "
                          f"{type(e).__name__}: {detail[:100]})") from None


# Linear-GELU-Dropout x 2, Linear: the first and last weights first (they name the sizes), then the rest.
PHI_KEYS = ("layers.0.weight", "layers.6.weight", "layers.3.weight", "layers.0.bias", "layers.3.bias",
            "layers.6.bias")


def _phi_from_state(state: dict, source: str, meta: dict) -> Phi:
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise LincirError(f"{source}: not a phi checkpoint ({bad[0]!r} does not hold a tensor)")
    for key in PHI_KEYS:
        rank = 2 if key.endswith("weight") else 1
        if key not in state:
            raise LincirError(f"{source}: not a phi checkpoint (no {key})")
        t = state[key]
        if t.dim() != rank or 0 in t.shape or t.dtype.is_complex or t.dtype == torch.bool:
            raise LincirError(f"{source}: phi tensor {key!r} has shape {tuple(t.shape)}, expected a "
                              f"non-empty {rank}-D tensor")
    check_finite(state, source, "phi")
    w0, w6 = state["layers.0.weight"], state["layers.6.weight"]
    hidden, embed_dim = w0.shape
    dropout = meta.get("dropout", 0.5)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise LincirError(f"{source}: 'dropout' in its JSON must be a number in [0, 1), found {dropout!r}")
    phi = Phi(embed_dim, w6.shape[0], dropout=float(dropout), hidden_dim=hidden)
    try:
        phi.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        first = next((ln for ln in lines if "size mismatch" in ln or "Unexpected" in ln or "Missing" in ln),
                     lines[-1] if lines else "")
        raise LincirError(f"{source}: phi weights do not fit ({first[:160]})") from None
    return phi


def _read_phi_meta(meta_path: Path) -> dict:
    """phi.json: a JSON object (a list or a number there is refused, naming the file)."""
    from lincir.storage import read_json

    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise LincirError(f"{meta_path}: expected a JSON object describing the phi, found a {type(meta).__name__}")
    return meta


def load_phi(path: str | Path) -> tuple[Phi, dict]:
    """Load phi from a run folder, a phi.safetensors file, or the authors' torch file ({"Phi": state_dict}).

    Returns (phi in eval mode, meta). meta has "backbone" when the checkpoint names one. Cheap (no backbone):
    commands call it before loading any model, so a bad phi fails at once.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PHI_FILE
    if not path.is_file():
        raise LincirError(f"{path}: phi checkpoint not found")
    if path.suffix == ".safetensors":
        state, _ = read_safetensors(path, "phi checkpoint")
        meta_path = path.with_name(PHI_META) if path.name == PHI_FILE else path.with_suffix(".json")
        meta = _read_phi_meta(meta_path) if meta_path.is_file() else {}
    else:
        obj = torch_load_weights_only(path, "phi checkpoint")
        if not isinstance(obj, dict):
            raise LincirError(f"{path}: expected a dict with key 'Phi', found {type(obj).__name__}")
        state = obj.get("Phi", obj)
        if not isinstance(state, dict):
            raise LincirError(f"{path}: key 'Phi' does not hold a state dict")
        # The authors' released checkpoints were made for OpenAI ViT-L/14.
        meta = {"backbone": "ViT-L-14", "source": "authors"} if "Phi" in obj else {}
    return _phi_from_state(state, str(path), meta).eval(), meta


def check_phi_fits(phi: Phi, backbone, source: str = "phi") -> None:
    """A phi made for another backbone fails here with both dimensions named."""
    if (phi.embed_dim, phi.token_width) != (backbone.embed_dim, backbone.token_width):
        raise LincirError(
            f"{source}: phi maps {phi.embed_dim} -> {phi.token_width} but backbone {backbone.name} needs "
            f"{backbone.embed_dim} -> {backbone.token_width} (a checkpoint for another backbone?)")


def load_phi_checkpoint(path, backbone, loaded: tuple[Phi, dict] | None = None):
    """A Phi in eval mode on the backbone's device, from our phi.safetensors (+ phi.json) or from the authors'
    torch file ({"Phi": state_dict}, read with weights_only=True); its sizes must fit the backbone.
    loaded: load_phi(path)'s result when the caller read it already (before loading the backbone)."""
    phi, meta = loaded if loaded is not None else load_phi(path)
    check_phi_fits(phi, backbone, str(path))
    trained_for = (meta or {}).get("backbone")
    if trained_for and trained_for != backbone.name:
        warnings.warn(f"{path}: phi was made for backbone {trained_for}, evaluating it on {backbone.name}")
    phi = phi.to(backbone.device).eval()
    # How phi was trained to receive features (lincir.core.noise): older checkpoints and the authors' are raw.
    phi.input_space = (meta or {}).get("noise_space", "raw")
    phi.input_centered = bool((meta or {}).get("center", False))
    phi.input_renormalized = bool((meta or {}).get("renormalize", False))
    return phi
