"""SEARLE-style stage 1 (after Baldrati et al., ICCV 2023, our own implementation): optimisation-based textual
inversion of every training image, and the concept phrases that regularise it. Stage 2 (phi distilled from these
tokens on image features) runs in `lincir.train.loop` as objective "searle".

Each image gets a free token w (token width) optimised so that E_T("a photo of $", $ <- w) points where E_I(x)
does, while E_T(phrase with $, $ <- w) stays close to E_T(phrase) for a phrase of the image's concept (the
concept CLIP assigns it zero-shot): w is kept near a real word. The tokens are cached on disk, keyed by the
backbone, the image features' content, every stage-1 setting and the CPU thread count that optimised them.
"""
from __future__ import annotations

import json
import time

import numpy as np
import torch

from lincir.core.keyed_random import mix64, sample_generators
from lincir.core.losses import oti_loss
from lincir.data.concepts import mask_concept, read_concepts
from lincir.data.feature_cache import cached_array
from lincir.storage import atomic_write_json, cache_dir, read_json, sha256_text
from lincir.train.config import TrainConfig

OTI_STREAM = 3  # keyed-random stream of the tokens' initial values
STAGE2_STREAM = 4  # keyed-random stream of stage 2's phrase choice (per seed, step and image)
OTI_FORMAT = "oti-tokens-v3"  # v2: the phrases' "$" set apart by spaces; v3: the thread count in the key


def concept_bank(cfg: TrainConfig) -> dict[str, list[str]]:
    """{concept: phrases}: an embedded world's own (seeded by the run), or read from cfg.concepts."""
    if cfg.concepts == "world":
        from lincir.world.concepts import world_concepts

        return world_concepts(cfg.data_seed)
    if cfg.concepts == "scenes":
        from lincir.world.scenes.concepts import scenes_concepts

        return scenes_concepts(cfg.data_seed)
    return read_concepts(cfg.concepts)


@torch.no_grad()
def assign_concepts(backbone, image_features: torch.Tensor, concepts: list[str]) -> torch.Tensor:
    """(N,) index of each image's zero-shot concept: argmax cos(E_I(x), E_T("a photo of a <concept>"))."""
    prompts = torch.nn.functional.normalize(backbone.encode_texts([f"a photo of a {c}" for c in concepts]).float(), dim=-1)
    return (torch.nn.functional.normalize(image_features.float(), dim=-1) @ prompts.T).argmax(dim=-1).cpu()


def _settings(cfg: TrainConfig, bank: dict[str, list[str]]) -> str:
    return json.dumps({"steps": cfg.oti_steps, "lr": cfg.oti_lr, "concept_weight": cfg.oti_concept_weight,
                       "seed": cfg.seed, "bank": sha256_text(json.dumps(bank, sort_keys=True))}, sort_keys=True)


def invert_images(backbone, image_features: np.ndarray, cfg: TrainConfig, batch_size: int = 256,
                  progress: bool = False, use_cache: bool = True) -> np.ndarray:
    """(N, w) float32 stage-1 tokens of image_features (N, d), from the cache when it has them."""
    bank = concept_bank(cfg)
    feats = np.ascontiguousarray(image_features, dtype=np.float32)
    key = _tokens_key(backbone, feats, cfg, bank)

    def compute() -> np.ndarray:
        t0 = time.perf_counter()
        out = _invert(backbone, torch.from_numpy(feats), cfg, bank, batch_size, progress)
        if use_cache:  # how long stage 1 took, kept beside the tokens for equal wall-clock comparisons
            atomic_write_json(_seconds_path(key), {"seconds": time.perf_counter() - t0, "images": len(feats),
                                                   "steps": cfg.oti_steps, "threads": torch.get_num_threads()})
        return out

    return cached_array("oti-tokens", key, compute, use_cache)


def _tokens_key(backbone, feats: np.ndarray, cfg: TrainConfig, bank: dict[str, list[str]]) -> str:
    return sha256_text(OTI_FORMAT, backbone.fingerprint(), _where(backbone), str(feats.shape),
                       _array_digest(feats), _settings(cfg, bank))


def _where(backbone) -> str:
    """What the tokens' last bits depend on besides their inputs: on a CPU, the thread count (5 steps on 100 image
    features through the S scenes CLIP: 48 tokens differ between one and two threads). Stage 1 is training, so it
    is not moved to the feature cache's fixed count: it runs at its caller's (a job's one-thread workers), and an
    entry of another count is another entry, never read in its place."""
    kind = backbone.device.type
    return f"cpu-threads{torch.get_num_threads()}" if kind == "cpu" else kind


def _seconds_path(key: str):
    return cache_dir("oti-tokens") / f"{key}.seconds.json"


def stage1_seconds(backbone, image_features: np.ndarray, cfg: TrainConfig) -> float:
    """Wall-clock seconds stage 1 took for these images and settings: measured now if its tokens are not cached,
    else as recorded when they were computed (tokens cached by an older version are recomputed to time them)."""
    invert_images(backbone, image_features, cfg)
    feats = np.ascontiguousarray(image_features, dtype=np.float32)
    path = _seconds_path(_tokens_key(backbone, feats, cfg, concept_bank(cfg)))
    if not path.is_file():  # time it (the cached tokens stay as they are)
        t0 = time.perf_counter()
        invert_images(backbone, image_features, cfg, use_cache=False)
        return time.perf_counter() - t0
    return float(read_json(path)["seconds"])


def _array_digest(a: np.ndarray) -> str:
    import hashlib

    return hashlib.sha256(a.tobytes()).hexdigest()


def _invert(backbone, feats: torch.Tensor, cfg: TrainConfig, bank: dict[str, list[str]], batch_size: int,
            progress: bool) -> np.ndarray:
    from tqdm.auto import tqdm

    concepts = sorted(bank)
    which = assign_concepts(backbone, feats, concepts)  # (N,)
    template = backbone.tokenize(["a photo of $"])
    scale = float(backbone.model.token_embedding.weight.float().std())  # tokens start at the scale of real words
    out = np.zeros((len(feats), backbone.token_width), dtype=np.float32)
    with tqdm(total=len(feats), desc="searle stage 1 (textual inversion)", disable=not progress) as bar:
        for lo in range(0, len(feats), batch_size):
            hi = min(lo + batch_size, len(feats))
            out[lo:hi] = invert_batch(backbone, feats[lo:hi], [concepts[int(c)] for c in which[lo:hi]], bank,
                                      range(lo, hi), cfg, template, scale).numpy()
            bar.update(hi - lo)
    return out


def invert_batch(backbone, feats: torch.Tensor, concepts: list[str], bank: dict[str, list[str]], slots: range,
                 cfg: TrainConfig, template: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, w) tokens for the images feats (B, d) at global positions `slots`; each image's initial token and
    phrase depend only on (seed, its position), and its loss term only on its own token, so a token does not
    depend on the batch it is optimised in (up to Adam's epsilon, which sees per-element values only)."""
    gens = sample_generators(cfg.seed, 0, slots, OTI_STREAM)
    init = torch.cat([torch.randn(1, backbone.token_width, generator=g) for g in gens]) * scale  # (B, w)
    phrases = [bank[c][mix64(cfg.seed, i, OTI_STREAM) % len(bank[c])] for c, i in zip(concepts, slots)]
    with torch.no_grad():
        phrase_targets = backbone.encode_texts(phrases).float()  # (B, d)
    phrase_tokens = backbone.tokenize([mask_concept(p, c) for p, c in zip(phrases, concepts)])
    tokens = torch.nn.Parameter(init.to(backbone.device))
    opt = torch.optim.AdamW([tokens], lr=cfg.oti_lr, weight_decay=0.01)
    for _ in range(cfg.oti_steps):
        loss = oti_loss(backbone, tokens, feats, template, phrase_tokens, phrase_targets, cfg.oti_concept_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return tokens.detach().float().cpu()


class StagePhrases:
    """Stage 2's concept regulariser (SEARLE applies it to phi's token too): every phrase of the bank tokenised
    (with $ for its concept) and encoded once; each image keeps its stage-1 concept, and its phrase is drawn
    afresh per step, keyed by (seed, step, image), so a batch's phrases do not depend on the batch."""

    def __init__(self, backbone, feats: torch.Tensor, cfg: TrainConfig):
        bank = concept_bank(cfg)
        concepts = sorted(bank)
        self.seed = cfg.seed
        self.which = assign_concepts(backbone, feats, concepts)  # (N,) as in stage 1
        phrases = [(c, p) for c in concepts for p in bank[c]]
        self.start = torch.tensor(np.cumsum([0] + [len(bank[c]) for c in concepts])[:-1])  # (C,) first phrase
        self.count = torch.tensor([len(bank[c]) for c in concepts])  # (C,)
        self.tokens = backbone.tokenize([mask_concept(p, c) for c, p in phrases])  # (P, L)
        with torch.no_grad():
            self.targets = torch.cat([backbone.encode_texts([p for _, p in phrases[i:i + 256]]).float().cpu()
                                      for i in range(0, len(phrases), 256)])  # (P, d)

    def batch(self, idx: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(phrase tokens (B, L), phrase targets (B, d)) for the images idx (B,) at this step."""
        c = self.which[idx]
        pick = torch.tensor([mix64(self.seed, step, int(i), STAGE2_STREAM) % int(n)
                             for i, n in zip(idx.tolist(), self.count[c].tolist())])
        rows = self.start[c] + pick
        return self.tokens[rows], self.targets[rows]
