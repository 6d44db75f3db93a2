"""phi checkpoints: safetensors + a JSON of the run; the authors' .pt files read with weights_only=True."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file

from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.files import atomic_write, atomic_write_json

PHI_FILE, PHI_META = "phi.safetensors", "phi.json"


def save_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    """Write a safetensors file atomically and byte-reproducibly.

    The safetensors writer orders the metadata by a per-process random hash, so equal content could give
    different bytes; the header is rewritten here with sorted keys (tensor offsets are relative to the data
    block, so the header may change length)."""
    from safetensors.torch import save

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


def save_phi(directory: str | Path, phi: Phi, meta: dict) -> Path:
    """Write <directory>/phi.safetensors and phi.json atomically (weights first, so the JSON never lies)."""
    directory = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in phi.state_dict().items()}
    save_safetensors(directory / PHI_FILE, state)
    atomic_write_json(directory / PHI_META, {**meta, **phi.config()})
    return directory / PHI_FILE


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


def load_phi_checkpoint(path, backbone):
    """A Phi in eval mode on the backbone's device, from our phi.safetensors (+ phi.json) or from the authors'
    torch file ({"Phi": state_dict}, read with weights_only=True); its sizes must fit the backbone."""
    from lincir.models.phi_checkpoints import check_phi_fits, load_phi

    phi, meta = load_phi(path)
    check_phi_fits(phi, backbone, str(path))
    trained_for = (meta or {}).get("backbone")
    if trained_for and trained_for != backbone.name:
        warnings.warn(f"{path}: phi was made for backbone {trained_for}, evaluating it on {backbone.name}")
    phi = phi.to(backbone.device).eval()
    # How phi was trained to receive features (lincir.core.noise): older checkpoints and the authors' are raw.
    phi.input_space = (meta or {}).get("noise_space", "raw")
    phi.input_centered = bool((meta or {}).get("center", False))
    return phi
