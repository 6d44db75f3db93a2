"""Images on disk to CLIP features: image references opened (and cropped GeneCIS-style), encoded in batches, and
kept in a feature cache, so a gallery is encoded once per backbone.

Cache layout: `cache_dir("features")/<backbone>/<weights fingerprint>/<shard hash>.safetensors`. A gallery is
encoded in shards of `shard_size` images; a shard's hash covers its images (key, file name, file size,
modification time, crop) and the image transform, so a shard is reused exactly when the backbone, its weights
and its images are the same, an interrupted run resumes where it stopped, and nothing is ever written beside
the images.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from lincir.data.image_refs import ImageRef
from lincir.errors import LincirError
from lincir.storage import cache_dir, sha256_text

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def image_folder_features(backbone, folder: str | Path, progress: bool = True) -> np.ndarray:
    """(N, d) features of every image under `folder` (sorted, recursive), through the feature cache."""
    from lincir.data.image_refs import ImageRef
    from lincir.data.images import image_features

    folder = Path(folder)
    if not folder.is_dir():
        raise LincirError(f"--images {folder}: no such folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LincirError(f"--images {folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    refs = [ImageRef(str(p.relative_to(folder)), p) for p in files]
    return image_features(backbone, refs, progress=progress, desc="encoding training images").numpy()


SHARD_SIZE = 4096


# -- images ----------------------------------------------------------------------------------------------


def open_image(ref: ImageRef) -> Image.Image:
    """The RGB image of `ref`, cropped GeneCIS-style when it names a box."""
    try:
        with warnings.catch_warnings():
            # PIL warns above MAX_IMAGE_PIXELS and raises above twice that: both are refused here, in one line.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(ref.path) as im:
                im = im.convert("RGB")
    except FileNotFoundError:
        raise LincirError(f"{ref.path}: image not found") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise LincirError(f"{ref.path}: image larger than {Image.MAX_IMAGE_PIXELS:,} pixels (PIL's "
                          f"decompression-bomb limit); refused") from None
    except (OSError, ValueError, SyntaxError) as e:  # PIL raises all three on damaged files
        detail = str(e).splitlines()[0][:120] if str(e) else type(e).__name__
        raise LincirError(f"{ref.path}: cannot read image ({detail})") from None
    if ref.crop is None:
        return im
    return crop_image(im, ref.crop.box, ref.crop.dilate, ref.crop.pad_square)


def crop_image(im: Image.Image, box: Sequence[float], dilate: float, pad_square: bool) -> Image.Image:
    """Crop [x, y, w, h] grown by `dilate` of its size (left = max(0, x - dilate*w), right = min(W, left +
    (1 + dilate)*w), same for y/h), then pad to a square with black, the crop centred as in GeneCIS."""
    x, y, w, h = box
    W, H = im.size
    if dilate:
        left, top = max(0.0, x - dilate * w), max(0.0, y - dilate * h)
        right, bottom = min(W, left + (1 + dilate) * w), min(H, top + (1 + dilate) * h)
    else:
        left, top, right, bottom = x, y, x + w, y + h
    im = im.crop((left, top, right, bottom))  # PIL rounds float box coordinates
    if not pad_square or im.width == im.height:
        return im
    side = max(im.width, im.height)
    square = Image.new(im.mode, (side, side), (0, 0, 0))
    square.paste(im, ((side - im.width) // 2, (side - im.height) // 2))
    return square


class _Images(torch.utils.data.Dataset):
    def __init__(self, refs: Sequence[ImageRef], transform):
        self.refs, self.transform = refs, transform

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(open_image(self.refs[i]))


# -- cache keys ------------------------------------------------------------------------------------------


def weights_fingerprint(backbone) -> str:
    """The backbone's weights fingerprint together with its image transform (both change the features)."""
    tag = backbone.fingerprint() if hasattr(backbone, "fingerprint") else backbone.name
    return sha256_text(tag, str(backbone.preprocess))


def images_hash(refs: Sequence[ImageRef]) -> str:
    """Hash of an image list: each image's key, file name, file size, modification time and crop (order
    matters), so that an image replaced in place (same name, even same size) is encoded again."""
    parts = []
    for r in refs:
        try:
            st = os.stat(r.path)
        except FileNotFoundError:
            raise LincirError(f"{r.path}: image not found") from None
        parts.append(f"{r.key}\t{r.path.name}\t{st.st_size}\t{st.st_mtime_ns}\t{r.crop}")
    return sha256_text(*parts)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


@torch.no_grad()
def encode_images(backbone, refs: Sequence[ImageRef], batch_size: int = 64, workers: int = 0,
                  progress=None) -> torch.Tensor:
    """(N, d) unnormalised image features, float32 on the CPU, no cache."""
    if not refs:
        return torch.zeros(0, backbone.embed_dim)
    loader = torch.utils.data.DataLoader(_Images(refs, backbone.preprocess), batch_size=batch_size,
                                         num_workers=workers, shuffle=False)
    out = []
    try:
        for pixels in loader:
            out.append(backbone.encode_images(pixels).float().cpu())
            if progress is not None:
                progress.update(len(pixels))
    except LincirError as e:
        # From a worker process the error arrives wrapped in its traceback: keep the one line it was raised with.
        lines = str(e).strip().splitlines()
        raise LincirError(lines[-1].removeprefix("lincir.errors.LincirError: ") if lines else str(e)) from None
    return torch.cat(out)


def image_features(backbone, refs: Sequence[ImageRef], batch_size: int = 64, workers: int = 0,
                   progress: bool = True, cache: bool = True, shard_size: int = SHARD_SIZE,
                   desc: str = "encoding images") -> torch.Tensor:
    """(N, d) unnormalised features of `refs`, float32 on the CPU, read from / written to the feature cache."""
    from tqdm.auto import tqdm

    from lincir.models.phi_checkpoints import CHECKSUM_KEY, read_safetensors, save_safetensors

    refs = list(refs)
    folder = cache_dir("features", _safe(backbone.name), weights_fingerprint(backbone)[:20]) if cache else None
    bar = tqdm(total=len(refs), desc=desc, unit="img", disable=not progress, leave=False)
    chunks = []
    try:
        for s in range(0, len(refs), shard_size):
            shard = refs[s:s + shard_size]
            path = folder / f"{images_hash(shard)[:32]}.safetensors" if cache else None
            feats = None
            if path is not None and path.is_file():
                try:  # checked against its content checksum: a damaged or altered shard is recomputed
                    tensors, meta = read_safetensors(path, "feature cache shard")
                    feats = tensors["features"] if CHECKSUM_KEY in meta else None
                except (LincirError, KeyError):
                    feats = None
                if feats is not None and feats.shape != (len(shard), backbone.embed_dim):
                    feats = None
                if feats is not None:
                    bar.update(len(shard))
            if feats is None:
                feats = encode_images(backbone, shard, batch_size, workers, bar)
                if path is not None:
                    save_safetensors(path, {"features": feats.contiguous()},
                                     {"backbone": backbone.name, "images": str(len(shard))})
            chunks.append(feats)
    finally:
        bar.close()
    return torch.cat(chunks) if chunks else torch.zeros(0, backbone.embed_dim)


# ---------------------------------------------------------------- real data: benchmarks and image folders


def thumbnail(path, size: int = 96) -> np.ndarray:
    """uint8 (size, size, 3): an image file, centre-cropped to a square and resized (for grids)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        return np.asarray(ImageOps.fit(im.convert("RGB"), (size, size)))


def folder_gallery(backbone, folder: str | Path):
    """(features (N, d), image paths) of every image under a folder, through the feature cache."""
    from lincir.data.image_refs import ImageRef
    from lincir.data.images import IMAGE_SUFFIXES, image_features

    folder = Path(folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise LincirError(f"gallery_dir {folder}: no image files")
    refs = [ImageRef(str(p.relative_to(folder)), p) for p in files]
    return image_features(backbone, refs, desc="gallery"), files


@torch.no_grad()
def image_file_feature(backbone, path) -> tuple[torch.Tensor, np.ndarray]:
    """(feature (d,), thumbnail) of one image file, through the backbone's own preprocessing."""
    from PIL import Image

    with Image.open(path) as im:
        pixels = backbone.preprocess(im.convert("RGB"))[None]
    return backbone.encode_images(pixels)[0].float().cpu(), thumbnail(path)
