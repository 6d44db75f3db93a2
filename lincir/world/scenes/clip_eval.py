"""How good a scenes CLIP is: zero-shot accuracy of the object (96-way) and of every factor, modality gap,
matched/random cosine, on held-out pairs (split "clip_eval")."""
from __future__ import annotations

import itertools

import numpy as np
import torch
import torch.nn.functional as F

from lincir.core.text_encoding import encode_texts
from lincir.world.clip_eval import eval_mode, pair_geometry
from lincir.world.scenes.data import clip_pairs
from lincir.world.scenes.factors import FACTORS, FACTOR_NAMES, OBJECT_FACTORS, OBJECT_NAMES, Scene
from lincir.world.scenes.language import factor_prompt, object_prompt

OBJECTS: list[tuple[str, ...]] = list(itertools.product(*OBJECT_FACTORS.values()))  # (shape, colour, size), 96


def zero_shot_accuracy(model, tokenizer, image_features: torch.Tensor, scenes: list[Scene]) -> dict:
    """combination: the best of the 96 object prompts is the true object. attribute[f]: for an object factor, among
    the object prompts that keep the other object factors true, the best has f's true value; for a context factor or
    a detail, among the prompts "object + f's phrase" with the true object, the best has f's true value."""
    img = F.normalize(image_features, dim=-1)  # (N, d)
    obj_txt = F.normalize(encode_texts(model, tokenizer, [object_prompt(*o) for o in OBJECTS], 512), dim=-1)
    sims = img @ obj_txt.T  # (N, 96)
    dims = [len(v) for v in OBJECT_FACTORS.values()]
    codes = torch.tensor([[OBJECT_FACTORS[n].index(getattr(s, n)) for n in OBJECT_NAMES] for s in scenes])
    true_obj = torch.as_tensor(np.ravel_multi_index(codes.numpy().T, dims))
    out = {"combination": float((sims.argmax(1) == true_obj).float().mean()), "attribute": {}}
    grid, rows = sims.view(len(sims), *dims), torch.arange(len(sims))
    for a, name in enumerate(OBJECT_NAMES):
        index = [rows] + [codes[:, b] if b != a else slice(None) for b in range(len(dims))]
        out["attribute"][name] = float((grid[tuple(index)].argmax(1) == codes[:, a]).float().mean())
    # Context prompts depend on the object and one factor value only: encode each (object, value) once.
    for name in FACTOR_NAMES[len(OBJECT_NAMES):]:
        values = FACTORS[name]
        base = {o: Scene(*o, *(FACTORS[n][0] for n in FACTOR_NAMES[len(OBJECT_NAMES):])) for o in OBJECTS}
        texts = [factor_prompt(base[o].replace(**{name: v}), name) for o in OBJECTS for v in values]
        txt = F.normalize(encode_texts(model, tokenizer, texts, 512), dim=-1).view(len(OBJECTS), len(values), -1)
        per_image = txt[true_obj]  # (N, V, d): the prompts of each image's own object
        pred = torch.einsum("nd,nvd->nv", img, per_image).argmax(1)
        truth = torch.tensor([values.index(getattr(s, name)) for s in scenes])
        out["attribute"][name] = float((pred == truth).float().mean())
    return out


@torch.no_grad()
def evaluate_scenes_clip(model, tokenizer, n: int = 500, seed: int = 0) -> dict:
    """All quality numbers of a scenes CLIP on n held-out pairs (train mode is restored afterwards)."""
    with eval_mode(model):
        pairs = clip_pairs(n, seed, split="clip_eval")
        img, geometry = pair_geometry(model, tokenizer, pairs.images, pairs.captions)
        acc = zero_shot_accuracy(model, tokenizer, img, pairs.attrs)
        return {**acc, **geometry, "n_pairs": n, "eval_seed": seed}
