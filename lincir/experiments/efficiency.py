"""What language-only training saves (notebook 05): the size of text against image data for the same items,
and the cost of preparing LinCIR's data once. Encoder throughputs and step times come from `lincir.speed`
(`bench_encoders`), which times the sides interleaved on the same inputs."""
from __future__ import annotations

import io
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

import numpy as np

# ---------------------------------------------------------------- data sizes


def encoded_size(image: np.ndarray, fmt: str = "PNG", quality: int = 90) -> int:
    """Bytes of one uint8 (H, W, 3) image stored as PNG (lossless) or JPEG."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buf.tell()


def world_data_sizes(n: int, seed: int = 0, fmt: str = "PNG") -> dict:
    """Bytes of n world captions (UTF-8, one per line) against their n images (encoded as fmt, and raw)."""
    from lincir.world.data import clip_pairs

    pairs = clip_pairs(n, seed)
    text = sum(len(c.encode("utf-8")) + 1 for c in pairs.captions)
    image = sum(encoded_size(im, fmt) for im in pairs.images)
    h, w = pairs.images.shape[1:3]
    return {"n": n, "text_bytes": text, "image_bytes": image, "raw_image_bytes": int(pairs.images.nbytes),
            "image_format": fmt, "image_size": f"{w}x{h}", "image_to_text_ratio": image / text,
            "bytes_per_caption": text / n, "bytes_per_image": image / n}


def folder_bytes(path: str | Path, suffixes: Sequence[str] = (".jpg", ".jpeg", ".png", ".webp")) -> tuple[int, int]:
    """(files, bytes) of the images under a folder (recursive)."""
    files = [p for p in Path(path).rglob("*") if p.suffix.lower() in suffixes and p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


# ---------------------------------------------------------------- training cost


@contextmanager
def fresh_cache():
    """A temporary LINCIR_CACHE, so that data preparation is measured cold (restored afterwards)."""
    old = os.environ.get("LINCIR_CACHE")
    with tempfile.TemporaryDirectory(prefix="lincir-cold-") as tmp:
        os.environ["LINCIR_CACHE"] = tmp
        try:
            yield Path(tmp)
        finally:
            if old is None:
                os.environ.pop("LINCIR_CACHE", None)
            else:
                os.environ["LINCIR_CACHE"] = old


def preparation_seconds(backbone, n: int, seed: int = 0) -> dict:
    """Cold cost of what each objective computes once before its first step, on n world captions: LinCIR
    tags and masks them (spaCy) and encodes them (its targets). A Pic2Word-style run prepares nothing here: it
    runs the image tower inside every step (timed with the step); decoding real images is not counted."""
    from lincir.data.feature_cache import encode_captions
    from lincir.data.keywords import mask_captions
    from lincir.world.data import train_captions

    captions = train_captions(n, seed)
    with fresh_cache():
        t = time.perf_counter()
        mask_captions(captions, "keywords", seed=seed, backbone=backbone)
        t_mask = time.perf_counter() - t
        t = time.perf_counter()
        encode_captions(backbone, captions)
        t_targets = time.perf_counter() - t
    return {"n": n, "lincir": {"masking": t_mask, "caption_features": t_targets, "total": t_mask + t_targets},
            "pic2word": {"total": 0.0}}


def training_cost(prep: dict, lincir_step: float, pic2word_step: float, steps: int) -> dict:
    """Seconds to prepare data and run `steps` steps of each objective: LinCIR pays its caption preparation
    once, then cheap steps; the Pic2Word-style step runs the frozen image tower on every batch."""
    lin = prep["lincir"]["total"] + steps * lincir_step
    p2w = prep["pic2word"]["total"] + steps * pic2word_step
    return {"steps": steps, "lincir": {"preparation_seconds": prep["lincir"]["total"], "seconds_per_step": lincir_step,
                                       "total_seconds": lin},
            "pic2word": {"preparation_seconds": prep["pic2word"]["total"], "seconds_per_step": pic2word_step,
                         "total_seconds": p2w}, "lincir_saves": 1.0 - lin / p2w}
