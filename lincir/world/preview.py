"""A contact sheet of world samples (images with their captions, and a few queries) for a quick look."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from lincir.storage import atomic_write, atomic_write_json
from lincir.world.data import clip_pairs, gallery, queries


def contact_sheet(images: np.ndarray, columns: int = 8, pad: int = 2) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one uint8 grid image with white padding."""
    n, h, w, _ = images.shape
    rows = max(1, -(-n // columns))
    sheet = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        sheet[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return sheet


def write_samples(out_dir: str | Path, n: int = 24, seed: int = 0) -> tuple[Path, Path]:
    """Write samples.png (n captioned renders) and samples.json (their captions, attributes and 5 queries)."""
    from PIL import Image

    out_dir = Path(out_dir)
    pairs = clip_pairs(n, seed)
    gal = gallery(300, seed)
    qs = queries(5, seed, gal)
    png = atomic_write(out_dir / "samples.png", lambda tmp: Image.fromarray(contact_sheet(pairs.images)).save(tmp, format="PNG"))
    js = atomic_write_json(out_dir / "samples.json", {
        "seed": seed,
        "images": [{"caption": c, "attributes": a.as_dict()} for c, a in zip(pairs.captions, pairs.attrs)],
        "queries": [{"reference": q.reference.as_dict(), "text": q.text, "target": q.target.as_dict(),
                     "ground_truth": [gal.names[i] for i in q.ground_truth]} for q in qs],
    })
    return png, js
