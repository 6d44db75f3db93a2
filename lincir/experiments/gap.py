"""The modality gap, measured (notebook 01): paired image and text features, the gap as numbers, what each
training noise does to the text-to-image distance, and the shifting experiment of "Mind the Gap" (Liang et al.,
NeurIPS 2022): move both modalities along the gap vector and watch retrieval accuracy.

All functions take unnormalised features (N, d) and return plain numbers or arrays; randomness comes from an
explicit seed.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from lincir.core.modality_gap import gap_vector
from lincir.core.noise import DEFAULT_SCALES, NOISES, sample_noise
from lincir.errors import LincirError


@dataclass
class PairFeatures:
    """n image-caption pairs and their unnormalised features."""

    images: torch.Tensor  # (N, d) image features
    texts: torch.Tensor  # (N, d) caption features
    captions: list[str]
    source: str
    attrs: list | None = None  # world pairs: the attributes each image shows (for zero-shot accuracy)
    thumbnails: np.ndarray | None = None  # world pairs: uint8 (N, H, W, 3)


def world_pairs(backbone, n: int, seed: int = 0) -> PairFeatures:
    """n held-out world pairs (split "clip_eval": never seen by the world CLIP's training)."""
    from lincir.world.data import clip_pairs
    from lincir.world.pixels import encode_world_images

    pairs = clip_pairs(n, seed, split="clip_eval")
    return PairFeatures(encode_world_images(backbone, pairs.images), backbone.encode_texts(pairs.captions),
                        pairs.captions, f"shapes world, {n} held-out pairs (seed {seed})", pairs.attrs, pairs.images)


def read_pairs_file(path: str | Path) -> list[tuple[Path, str]]:
    """(image path, caption) rows of a TSV or CSV with a header naming `image` and `caption` columns; image
    paths are relative to the file's folder."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        missing = {"image", "caption"} - set(reader.fieldnames or ())
        if missing:
            raise LincirError(f"{path}: needs columns 'image' and 'caption' (missing {', '.join(sorted(missing))})")
        rows = [(path.parent / r["image"], r["caption"]) for r in reader if r["image"] and r["caption"]]
    if not rows:
        raise LincirError(f"{path}: no image-caption rows")
    return rows


@torch.no_grad()
def file_pairs(backbone, path: str | Path, n: int, seed: int = 0, batch_size: int = 32) -> PairFeatures:
    """Up to n pairs drawn (seeded) from a pairs file (see read_pairs_file), encoded with the backbone."""
    from PIL import Image

    rows = read_pairs_file(path)
    pick = np.sort(np.random.default_rng(seed).permutation(len(rows))[:n])
    rows = [rows[i] for i in pick]
    feats = []
    for i in range(0, len(rows), batch_size):
        ims = []
        for p, _ in rows[i:i + batch_size]:
            if not p.is_file():
                raise LincirError(f"{path}: image not found: {p}")
            with Image.open(p) as im:
                ims.append(backbone.preprocess(im.convert("RGB")))
        feats.append(backbone.encode_images(torch.stack(ims)).float().cpu())
    captions = [c for _, c in rows]
    return PairFeatures(torch.cat(feats), backbone.encode_texts(captions), captions, f"{path}, {len(rows)} pairs")


def gap_numbers(images: torch.Tensor, texts: torch.Tensor) -> dict:
    """The gap (centroid distance of normalised features), matched and unmatched cosine, feature norms."""
    i, t = F.normalize(images, dim=-1), F.normalize(texts, dim=-1)
    sims = i @ t.T  # (N, N)
    n = len(i)
    off = sims[~torch.eye(n, dtype=torch.bool)]
    return {
        "gap": float(gap_vector(images, texts).norm()),
        "matched_cos": float(sims.diagonal().mean()),
        "unmatched_cos": float(off.mean()),
        "image_image_cos": float(_mean_offdiag(i @ i.T)),
        "text_text_cos": float(_mean_offdiag(t @ t.T)),
        "image_norm": float(images.norm(dim=-1).mean()),
        "text_norm": float(texts.norm(dim=-1).mean()),
        "matched_distance": float((images - texts).norm(dim=-1).mean()),  # unnormalised: what phi must bridge
        "n_pairs": n,
    }


def _mean_offdiag(m: torch.Tensor) -> float:
    n = len(m)
    return float((m.sum() - m.diagonal().sum()) / max(n * n - n, 1))


def project_2d(images: torch.Tensor, texts: torch.Tensor, method: str = "pca", seed: int = 0) -> np.ndarray:
    """(2N, 2) coordinates of the normalised image features (first N rows) then text features, by PCA or UMAP."""
    x = torch.cat([F.normalize(images, dim=-1), F.normalize(texts, dim=-1)]).numpy().astype(np.float64)
    if method == "pca":
        return pca_fit(x)(x)
    if method == "umap":
        import umap

        return umap.UMAP(n_neighbors=15, min_dist=0.3, random_state=seed, n_jobs=1).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}")


def pca_fit(x: np.ndarray, k: int = 2):
    """A function projecting rows onto the top-k principal axes of x (N, d) (signs fixed: deterministic)."""
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    axes = vt[:k]  # (k, d)
    axes = axes * np.sign(axes[np.arange(k), np.abs(axes).argmax(1)])[:, None]  # largest entry positive
    return lambda y: (np.asarray(y, dtype=np.float64) - mean) @ axes.T


# ---------------------------------------------------------------- noise against the gap


def noise_effects(images: torch.Tensor, texts: torch.Tensor, kinds: Sequence[str] = tuple(NOISES),
                  scales: dict | None = None, seed: int = 0) -> dict:
    """What each training noise does to the text features, measured against the image features.

    For each kind: the mean noise norm (how far a training input moves from its caption's feature), the mean
    distance from noisy text to its matched image feature (unnormalised), the cosine to it, and the gap between
    images and noisy texts. The noise reaches the images when its norm is comparable to the matched distance.
    """
    scales = {**DEFAULT_SCALES, **(scales or {})}
    out = {}
    for kind in kinds:
        g = torch.Generator().manual_seed(seed)
        noise = sample_noise(kind, tuple(texts.shape), scales[kind], g)  # (N, d)
        noisy = texts + noise
        out[kind] = {
            "scale": scales[kind],
            "noise_norm": float(noise.norm(dim=-1).mean()),
            "distance_to_image": float((noisy - images).norm(dim=-1).mean()),
            "cos_to_image": float(F.cosine_similarity(noisy, images, dim=-1).mean()),
            "cos_to_own_text": float(F.cosine_similarity(noisy, texts, dim=-1).mean()),
            "gap": float(gap_vector(images, noisy).norm()),
        }
    return out


def noisy_texts(texts: torch.Tensor, kind: str, scale: float | None = None, seed: int = 0) -> torch.Tensor:
    """texts (N, d) plus one draw of a noise (the training's distribution), seeded."""
    g = torch.Generator().manual_seed(seed)
    return texts + sample_noise(kind, tuple(texts.shape), DEFAULT_SCALES[kind] if scale is None else scale, g)


# ---------------------------------------------------------------- "Mind the Gap": shifting both modalities


def shift_modalities(images: torch.Tensor, texts: torch.Tensor, lam: float,
                     delta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised features moved towards each other along the gap vector and normalised again (Liang et al.):
    images - lam * delta / 2, texts + lam * delta / 2. lam = 1 makes the centroids meet; lam < 0 widens the gap."""
    delta = gap_vector(images, texts) if delta is None else delta
    i = F.normalize(F.normalize(images, dim=-1) - lam * delta / 2, dim=-1)
    t = F.normalize(F.normalize(texts, dim=-1) + lam * delta / 2, dim=-1)
    return i, t


def pair_retrieval(images: torch.Tensor, texts: torch.Tensor) -> dict:
    """Recall@1 (percent) of matching each image to its own caption among all captions, and the reverse."""
    sims = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T  # (N, N)
    target = torch.arange(len(sims))
    return {"image_to_text_R@1": 100.0 * float((sims.argmax(1) == target).float().mean()),
            "text_to_image_R@1": 100.0 * float((sims.argmax(0) == target).float().mean())}


def shift_curve(images: torch.Tensor, texts: torch.Tensor, lams: Sequence[float],
                prompts: torch.Tensor | None = None, codes: np.ndarray | None = None) -> list[dict]:
    """Retrieval accuracy at each shift lam. With the world's combination prompts (C, d) and the images' true
    value codes (N, A), also zero-shot combination and mean attribute accuracy (percent); prompts move with the
    text side. The gap vector is measured once, on the unshifted pairs."""
    from lincir.world.clip_eval import zero_shot_accuracy

    delta = gap_vector(images, texts)
    rows = []
    for lam in lams:
        i, t = shift_modalities(images, texts, lam, delta)
        row = {"lambda": float(lam), "gap": float(gap_vector(i, t).norm()), **pair_retrieval(i, t)}
        if prompts is not None and codes is not None:
            p = F.normalize(F.normalize(prompts, dim=-1) + lam * delta / 2, dim=-1)
            acc = zero_shot_accuracy(i, p, codes)
            row["zero_shot_combination"] = 100.0 * acc["combination"]
            row["zero_shot_attribute_mean"] = 100.0 * float(np.mean(list(acc["attribute"].values())))
        rows.append(row)
    return rows


def world_prompts(backbone) -> torch.Tensor:
    """(1152, d) features of the canonical caption of every world combination (zero-shot classifier)."""
    from lincir.world.attributes import all_combinations
    from lincir.world.language import canonical_caption

    return backbone.encode_texts([canonical_caption(c) for c in all_combinations()])


def cosine_distributions(images: torch.Tensor, texts: torch.Tensor, max_unmatched: int = 20000,
                         seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(matched cosines (N,), a seeded sample of unmatched cosines) of normalised features."""
    sims = F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T  # (N, N)
    off = sims[~torch.eye(len(sims), dtype=torch.bool)].numpy()
    pick = np.random.default_rng(seed).permutation(len(off))[:max_unmatched]
    return sims.diagonal().numpy(), off[pick]
