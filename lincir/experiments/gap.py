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

from lincir.core.modality_gap import gap_vector, reference_shifted
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


# ---------------------------------------------------------------- the gap split into its norm and direction parts


def norm_direction_split(images: torch.Tensor, texts: torch.Tensor) -> dict:
    """The distance between matched unnormalised features x (image) and y (text), split exactly per pair:

        |x - y|^2 = (|x| - |y|)^2 + 2 |x| |y| (1 - cos(x, y))

    The first term is the norm part (what remains if the two pointed the same way), the second the direction
    part (the distance two vectors of length sqrt(|x| |y|) at the pair's angle would have). Returned as root
    mean squares over the pairs, so norm_part^2 + direction_part^2 == rms_distance^2, with the plain means too.
    """
    x, y = images.double(), texts.double()
    a, b = x.norm(dim=-1), y.norm(dim=-1)
    cos = (x * y).sum(-1) / (a * b).clamp_min(1e-12)
    d2 = ((x - y) ** 2).sum(-1)
    norm2, dir2 = (a - b) ** 2, (2.0 * a * b * (1.0 - cos)).clamp_min(0.0)
    return {
        "image_norm": float(a.mean()), "text_norm": float(b.mean()), "norm_ratio": float((a / b).mean()),
        "mean_distance": float(d2.sqrt().mean()), "mean_norm_difference": float((a - b).abs().mean()),
        "rms_distance": float(d2.mean().sqrt()), "norm_part": float(norm2.mean().sqrt()),
        "direction_part": float(dir2.mean().sqrt()), "norm_share": float(norm2.mean() / d2.mean()),
        "normalised_distance": float((2.0 * (1.0 - cos)).clamp_min(0).sqrt().mean()),  # |x/|x| - y/|y||
        "n_pairs": len(a),
    }


# ---------------------------------------------------------------- what phi is fed: training against test time


def input_statistics(feats: torch.Tensor) -> dict:
    """Scale of a batch of phi inputs (N, d): the norm (mean, sample std), the per-dimension std (mean over
    dimensions) and the root mean square of one coordinate."""
    norms = feats.norm(dim=-1)
    return {"norm_mean": float(norms.mean()), "norm_std": float(norms.std()) if len(norms) > 1 else 0.0,
            "per_dim_std": float(feats.std(0).mean()) if len(feats) > 1 else 0.0,
            "coordinate_rms": float(feats.pow(2).mean().sqrt()), "n": len(feats)}


def phi_inputs(images: torch.Tensor, texts: torch.Tensor, kind: str = "lincir", scale: float | None = None,
               seed: int = 0) -> dict:
    """phi's inputs at training time (caption features, and with the training noise) and at test time
    (reference image features), with the test-to-train ratio of their norms."""
    out = {"train: caption": input_statistics(texts),
           f"train: caption + {kind} noise": input_statistics(noisy_texts(texts, kind, scale, seed)),
           "test: image": input_statistics(images)}
    noisy = out[f"train: caption + {kind} noise"]["norm_mean"]
    out["ratio"] = {"image_to_caption": out["test: image"]["norm_mean"] / out["train: caption"]["norm_mean"],
                    "image_to_noisy_caption": out["test: image"]["norm_mean"] / noisy}
    return out


@torch.no_grad()
def _compose(backbone, tokens: torch.Tensor, template: str, batch_size: int = 256) -> torch.Tensor:
    """(N, d) normalised text features of `template` with its placeholder replaced by each pseudo-token (N, w)."""
    out = []
    for i in range(0, len(tokens), batch_size):
        chunk = tokens[i:i + batch_size]
        ids = backbone.tokenize([template] * len(chunk))
        out.append(backbone.encode_with_pseudo(ids, chunk.to(backbone.device)).float().cpu())
    return F.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def phi_response(phi, images: torch.Tensor, texts: torch.Tensor, backbone=None, template: str = "a photo of $",
                 scales: Sequence[float] = (0.2, 0.5, 1.0, 2.0, 5.0), kind: str = "lincir", seed: int = 0) -> dict:
    """How a trained phi (eval mode) answers inputs of test-time length.

    tokens: norm of phi's output for captions, noisy captions, images, and images rescaled to their caption's
    norm; cosine of phi(image) with phi(its caption) (matched) and with other captions' (unmatched).
    scaling: for each factor c, cosine of phi(c x) with phi(x) and the norm ratio |phi(c x)| / |phi(x)|, over
    the images x: a positively homogeneous phi keeps the direction and scales the length.
    composed (with a backbone): the feature of `template` with each token, its cosine with the caption's own
    text feature (matched, unmatched) and image-to-caption R@1 of that feature among all captions.
    """
    was_training = phi.training
    phi.eval()
    x_img, x_txt = images.float(), texts.float()
    x_scaled = F.normalize(x_img, dim=-1) * x_txt.norm(dim=-1, keepdim=True)  # image direction, caption length
    x_noisy = noisy_texts(x_txt, kind, None, seed)
    inputs = {"caption": x_txt, f"caption + {kind} noise": x_noisy, "image": x_img,
              "image rescaled to its caption's norm": x_scaled}
    toks = {k: phi(v).float() for k, v in inputs.items()}
    tn = F.normalize(toks["caption"], dim=-1)
    out = {"tokens": {}, "scaling": [], "composed": {}}
    for name, tok in toks.items():
        sims = F.normalize(tok, dim=-1) @ tn.T
        out["tokens"][name] = {"input_norm": float(inputs[name].norm(dim=-1).mean()),
                               "token_norm": float(tok.norm(dim=-1).mean()),
                               "cos_to_caption_token": float(sims.diagonal().mean()),
                               "cos_to_other_caption_tokens": _mean_offdiag(sims)}
    base = toks["image"]
    for c in scales:
        t = phi(c * x_img).float()
        out["scaling"].append({"factor": float(c), "cos_to_unscaled": float(F.cosine_similarity(t, base).mean()),
                               "norm_ratio": float((t.norm(dim=-1) / base.norm(dim=-1)).mean())})
    if backbone is not None:
        captions = F.normalize(x_txt, dim=-1)
        target = torch.arange(len(captions))
        for name, tok in toks.items():
            q = _compose(backbone, tok, template)
            sims = q @ captions.T
            out["composed"][name] = {"cos_to_own_caption": float(sims.diagonal().mean()),
                                     "cos_to_other_captions": _mean_offdiag(sims),
                                     "caption_R@1": 100.0 * float((sims.argmax(1) == target).float().mean())}
        out["template"] = template
        emb = backbone.tower.token_embedding.weight.detach().float()
        out["word_token_norm"] = float(emb.norm(dim=-1).mean())  # an ordinary token's embedding, for scale
    phi.train(was_training)
    return out


# ---------------------------------------------------------------- cone effect and temperature (Liang et al.)


def reencode(backbone, pairs: PairFeatures) -> PairFeatures:
    """The same world pairs (images and captions) through another backbone."""
    from lincir.world.pixels import encode_world_images

    if pairs.thumbnails is None:
        raise LincirError("reencode needs world pairs (their images)")
    return PairFeatures(encode_world_images(backbone, pairs.thumbnails), backbone.encode_texts(pairs.captions),
                        pairs.captions, pairs.source, pairs.attrs, pairs.thumbnails)


def isotropic_cosine(d: int, n: int = 1000, seed: int = 0) -> float:
    """Mean pairwise cosine of n isotropic Gaussian vectors in d dimensions (about 0): the no-cone baseline."""
    x = F.normalize(torch.randn(n, d, generator=torch.Generator().manual_seed(seed)), dim=-1)
    return _mean_offdiag(x @ x.T)


def geometry(images: torch.Tensor, texts: torch.Tensor, logit_scale: float | None = None) -> dict:
    """One backbone's feature geometry: gap_numbers (gap, matched / unmatched cosine, within-modality mean
    pairwise cosine = the cone, norms), the isotropic baseline at its width, and its logit scale."""
    out = gap_numbers(images, texts)
    out["isotropic_cos"] = isotropic_cosine(images.shape[1])
    out["logit_scale"] = logit_scale
    return out


def logit_scale_of(backbone) -> float | None:
    """exp(logit_scale) of an open_clip model (the inverse temperature), or None."""
    p = getattr(backbone.model, "logit_scale", None)
    return None if p is None else float(p.detach().exp())


# ---------------------------------------------------------------- notebook 03's reference shift, for comparison


def reference_shift(images: torch.Tensor, texts: torch.Tensor, shift: float) -> torch.Tensor:
    """Notebook 03's "reference shift": the unnormalised image features alone moved further from the text side
    along the unit gap direction by shift x their mean norm (lincir.eval.world_benchmark.shifted). Texts stay."""
    direction = gap_vector(images, texts)
    return reference_shifted(images, direction / direction.norm(), images.norm(dim=-1).mean(), shift)


def reference_shift_gaps(images: torch.Tensor, texts: torch.Tensor, shifts: Sequence[float]) -> list[dict]:
    """The gap (normalised centroids) and matched cosine after each reference shift: where 03's axis puts the
    natural gap (shift 0) and how far each step widens it."""
    rows = []
    for a in shifts:
        moved = reference_shift(images, texts, a)
        rows.append({"shift": float(a), "gap": float(gap_vector(moved, texts).norm()),
                     "matched_cos": float(F.cosine_similarity(moved, texts, dim=-1).mean())})
    return rows


# ---------------------------------------------------------------- where the noisy text features land


def landing_projector(images: torch.Tensor, texts: torch.Tensor):
    """PCA (2-D) fitted on the clean unnormalised image and caption features: the space phi's inputs live in."""
    return pca_fit(torch.cat([images, texts]).numpy().astype(np.float64))


def noise_landing(images: torch.Tensor, texts: torch.Tensor, kind: str, scale: float, project=None,
                  seed: int = 0, show: int = 300) -> dict:
    """2-D coordinates of the first `show` images, clean captions and noisy captions (one seeded draw of `kind`
    at `scale`) on the clean features' PCA, with the noise's mean norm and the noisy captions' distance to
    their images."""
    project = project or landing_projector(images, texts)
    noisy = noisy_texts(texts, kind, scale, seed)
    k = slice(0, min(show, len(images)))
    return {"kind": kind, "scale": float(scale),
            "images": project(images[k].numpy()), "texts": project(texts[k].numpy()),
            "noisy": project(noisy[k].numpy()),
            "noise_norm": float((noisy - texts).norm(dim=-1).mean()),
            "distance_to_image": float((noisy - images).norm(dim=-1).mean())}
