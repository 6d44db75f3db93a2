"""phi checkpoints: safetensors + a JSON of the run; the authors' .pt files read with weights_only=True."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .errors import LincirError
from .files import atomic_write, atomic_write_json
from .phi import Phi

PHI_FILE, PHI_META = "phi.safetensors", "phi.json"


def save_phi(directory: str | Path, phi: Phi, meta: dict) -> Path:
    """Write <directory>/phi.safetensors and phi.json atomically (weights first, so the JSON never lies)."""
    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    atomic_write(directory / PHI_FILE, lambda tmp: save_file(state, tmp))
    atomic_write_json(directory / PHI_META, {**meta, **phi.config()})
    return directory / PHI_FILE


def _phi_from_state(state: dict, source: str, meta: dict) -> Phi:
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise LincirError(f"{source}: not a phi checkpoint ({bad[0]!r} does not hold a tensor)")
    try:
        w0, w6 = state["layers.0.weight"], state["layers.6.weight"]
    except KeyError as e:
        raise LincirError(f"{source}: not a phi checkpoint (no {e.args[0]})") from None
    hidden, embed_dim = w0.shape
    phi = Phi(embed_dim, w6.shape[0], dropout=float(meta.get("dropout", 0.5)), hidden_dim=hidden)
    try:
        phi.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as e:
        raise LincirError(f"{source}: phi weights do not fit ({str(e).splitlines()[-1].strip()[:160]})") from None
    return phi


def load_phi(path: str | Path) -> tuple[Phi, dict]:
    """Load phi from a run folder, a phi.safetensors file, or the authors' torch file ({"Phi": state_dict}).

    Returns (phi in eval mode, meta). meta has "backbone" when the checkpoint names one.
    """
    path = Path(path)
    if path.is_dir():
        path = path / PHI_FILE
    if not path.is_file():
        raise LincirError(f"{path}: phi checkpoint not found")
    if path.suffix == ".safetensors":
        try:
            state = load_file(str(path))
        except Exception as e:
            raise LincirError(f"{path}: corrupted safetensors file ({str(e).splitlines()[0][:120]})") from None
        meta_path = path.with_name(PHI_META) if path.name == PHI_FILE else path.with_suffix(".json")
        meta = {}
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise LincirError(f"{meta_path}: malformed JSON") from None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise LincirError(f"{path}: refused or unreadable torch file, loaded with weights_only=True "
                              f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
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
