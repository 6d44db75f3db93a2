"""Contrastive training of the world CLIPs on rendered image-caption pairs, with grouped batches.

Why grouped batches: with random in-batch negatives almost every negative differs from the positive in colour or
background, so the model never needs position or shape. A group of images that share some attributes makes the
others (shape, position, ...) the only way to tell its members apart. Captions may leave attributes out, and
two members may even show the same combination, so targets are soft: a caption matches every image that agrees
with all the attributes it mentions.

The same recipe trains the scenes world's CLIPs (`world="scenes"`): a PairSource gives each world's training
pool, its factor codes (what groups share and soft targets compare), its captions and its evaluation.

The quick switch is the "smoke" preset (seconds, same code path; "scenes-smoke" on the scenes world). The shipped
models are made by `lincir world train-clip --preset shapes-clip --out lincir/assets` (and --preset
shapes-clip-lowgap; scenes-clip-s, -m, -l).
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lincir.core.text_encoding import encode_text_with_pseudo_tokens, trim_padding
from lincir.errors import LincirError
from lincir.storage import atomic_write, atomic_write_json
from lincir.models.backbones import register_model_configs
from lincir.world.attributes import ATTRIBUTE_NAMES, attribute_codes
from lincir.world.clip_eval import evaluate_clip
from lincir.world.data import clip_pairs
from lincir.world.language import sample_caption
from lincir.world.pixels import images_to_tensor


@dataclass(frozen=True)
class ClipTrainConfig:
    """Everything that determines a world CLIP training run (with the code version)."""

    preset: str
    model_config: str = "shapes-clip"  # open_clip config name in lincir/model_configs
    world: str = "shapes"  # "shapes" or "scenes": which world's image-caption pairs (PAIR_SOURCES)
    steps: int = 3000  # length of the learning-rate schedule
    stop_at: int | None = None  # stop after this many steps of that schedule (early stopping, reproducible)
    batch_size: int = 128
    n_groups: int = 4  # groups of images sharing `shared` attribute values ...
    group_size: int = 16  # ... of this many images; the rest of the batch is random
    shared: int = 2  # random factors a group shares (beyond always_shared)
    always_shared: tuple[int, ...] = ()  # factor columns every group shares (phase 1's scenes variant B: the
    # object, so that only the context told a group's members apart; the current presets share none)
    always_shared_groups: int | None = None  # how many of the groups share always_shared (None: all); the others
    # share `shared` + len(always_shared) random factors, so that the object is contrasted too
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup: int = 50
    min_lr_ratio: float = 0.05  # cosine decay to lr * min_lr_ratio
    logit_scale: float | None = 100.0  # fixed temperature (real-CLIP-like gap); None: learned, from 1/0.07
    pool_size: int = 24000  # pre-rendered training images (captions are drawn fresh every step)
    omit_prob: float = 0.1  # shapes: chance a caption leaves out position, and independently background
    mention_scale: float = 1.0  # scenes: factors beyond the object are named with language.MENTION_PROB x this
    eval_every: int = 250
    eval_pairs: int = 1000
    seed: int = 0
    threads: int = 1  # measured: on the shared 2-core machines one thread is as fast as two


@dataclass(frozen=True)
class PairSource:
    """One world's side of CLIP training: everything train_clip needs that differs between worlds."""

    factor_names: tuple[str, ...]  # columns of codes; the names captions report as mentioned
    pool: Callable  # (n, seed) -> Pairs: the rendered training pool
    codes: Callable  # (list of attrs) -> (N, F) int64 value indices
    caption: Callable  # (attrs, rng, cfg) -> (caption, mentioned factor names)
    evaluate: Callable  # (model, tokenizer, n, seed) -> dict with "combination" and "attribute"


def _shapes_source() -> PairSource:
    return PairSource(ATTRIBUTE_NAMES, lambda n, seed: clip_pairs(n, seed), attribute_codes,
                      lambda a, rng, cfg: sample_caption(a, rng, cfg.omit_prob), evaluate_clip)


def _scenes_source() -> PairSource:
    from lincir.world.scenes import clip_eval as scenes_eval
    from lincir.world.scenes import data as scenes_data
    from lincir.world.scenes.factors import FACTOR_NAMES, scene_codes
    from lincir.world.scenes.language import sample_caption as scene_caption

    return PairSource(FACTOR_NAMES, lambda n, seed: scenes_data.clip_pairs(n, seed), scene_codes,
                      lambda s, rng, cfg: scene_caption(s, rng, cfg.mention_scale), scenes_eval.evaluate_scenes_clip)


PAIR_SOURCES: dict[str, Callable[[], PairSource]] = {"shapes": _shapes_source, "scenes": _scenes_source}

# The scenes CLIPs (world scenes-v2, variant F's schedule; docs/scenes-findings.md has every variant). Groups of
# 16 share 3 random factors of the 10, as the shapes CLIP's share 2 of 5, so that shape is contrasted as often as the
# context (phase 1's groups that always shared the object starved shape); CLIP-training captions name each factor
# twice as often as phi's corpus does (mention_scale 2), so the context is named in most and each detail in about
# a quarter of them. One recipe for the three sizes: only the model config differs. 500 steps (variant F): the
# 1,000-step CLIPs left less headroom on M (+9.7 against +12.9), 3,000 steps far less (+4.1, variant E).
_SCENES = dict(world="scenes", n_groups=4, shared=3, mention_scale=2.0, steps=500, eval_pairs=500)
PRESETS: dict[str, ClipTrainConfig] = {
    "shapes-clip": ClipTrainConfig("shapes-clip"),
    "shapes-clip-lowgap": ClipTrainConfig("shapes-clip-lowgap", logit_scale=None, steps=900, eval_every=150),
    "smoke": ClipTrainConfig("smoke", steps=3, batch_size=16, n_groups=1, group_size=8, pool_size=256,
                             eval_every=3, eval_pairs=48, warmup=1),
    "scenes-clip-s": ClipTrainConfig("scenes-clip-s", model_config="scenes-clip-s", **_SCENES),
    "scenes-clip-m": ClipTrainConfig("scenes-clip-m", model_config="scenes-clip-m", **_SCENES),
    "scenes-clip-l": ClipTrainConfig("scenes-clip-l", model_config="scenes-clip-l", **_SCENES),
    "scenes-smoke": ClipTrainConfig("scenes-smoke", model_config="scenes-clip-s", batch_size=16,
                                    group_size=8, pool_size=256, eval_every=3, warmup=1,
                                    **{**_SCENES, "n_groups": 1, "eval_pairs": 32, "steps": 3}),
}


def sample_batch(codes: np.ndarray, cfg: ClipTrainConfig, rng: np.random.Generator) -> np.ndarray:
    """Pool indices (batch_size,) for one step: n_groups groups sharing `shared` attribute values, then random.

    codes: (P, A) value indices of the pool.
    """
    picks = []
    n_always = cfg.n_groups if cfg.always_shared_groups is None else cfg.always_shared_groups
    for g in range(cfg.n_groups):
        if cfg.always_shared and g >= n_always:
            attrs = rng.choice(codes.shape[1], size=cfg.shared + len(cfg.always_shared), replace=False)
        elif cfg.always_shared:
            others = np.setdiff1d(np.arange(codes.shape[1]), np.asarray(cfg.always_shared))
            attrs = np.concatenate([np.asarray(cfg.always_shared), rng.choice(others, size=cfg.shared, replace=False)])
        else:
            attrs = rng.choice(codes.shape[1], size=cfg.shared, replace=False)
        anchor = codes[int(rng.integers(0, len(codes)))]
        candidates = np.flatnonzero((codes[:, attrs] == anchor[attrs]).all(axis=1))  # includes the anchor
        picks.append(rng.choice(candidates, size=cfg.group_size, replace=len(candidates) < cfg.group_size))
    rest = cfg.batch_size - cfg.n_groups * cfg.group_size
    picks.append(rng.integers(0, len(codes), size=rest))
    return np.concatenate(picks)


def soft_targets(codes: np.ndarray, mentioned: np.ndarray) -> torch.Tensor:
    """(B_text, B_image) float: 1 where the image agrees with every attribute the caption mentions.

    codes: (B, A) value indices; mentioned: (B, A) bool, which attributes each caption mentions.
    """
    equal = codes[:, None, :] == codes[None, :, :]  # (B, B, A)
    return torch.from_numpy((equal | ~mentioned[:, None, :]).all(-1).astype(np.float32))


def contrastive_loss(image_features: torch.Tensor, text_features: torch.Tensor, logit_scale: torch.Tensor,
                     match: torch.Tensor) -> torch.Tensor:
    """Symmetric cross-entropy with soft targets (match: (B_text, B_image), each row/column has a 1)."""
    logits = logit_scale * F.normalize(text_features, dim=-1) @ F.normalize(image_features, dim=-1).T  # (Bt, Bi)
    text_to_image = -(match / match.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    image_to_text = -(match.T / match.T.sum(1, keepdim=True) * logits.T.log_softmax(1)).sum(1).mean()
    return (text_to_image + image_to_text) / 2


def lr_at(step: int, cfg: ClipTrainConfig) -> float:
    """Linear warm-up, then cosine decay to lr * min_lr_ratio."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def _state_fp16(model) -> dict[str, torch.Tensor]:
    return {k: (v.half() if v.is_floating_point() else v).contiguous().clone() for k, v in model.state_dict().items()}


def save_weights(model, path: Path) -> Path:
    """Floating-point weights as float16 safetensors (the shipped form), written atomically."""
    from safetensors.torch import save_file

    state = _state_fp16(model)
    return atomic_write(path, lambda tmp: save_file(state, tmp))


def _versions() -> dict[str, str]:
    import open_clip

    return {"torch": torch.__version__, "open_clip": open_clip.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


def train_clip(cfg: ClipTrainConfig, out_dir: str | Path, command: str = "",
               log: Callable[[str], None] = print) -> dict:
    """Train one world CLIP; write <out>/<preset>.safetensors, <preset>.json and <preset>.log.jsonl.

    The weights and the JSON are rewritten at every evaluation (marked "partial": true) so that progress is visible
    and usable during a long run. The final JSON's "eval" is measured on the stored float16 weights.
    Returns the final JSON record.
    """
    import open_clip

    torch.set_num_threads(cfg.threads)
    register_model_configs()
    if cfg.world not in PAIR_SOURCES:
        raise LincirError(f"--preset {cfg.preset}: unknown world {cfg.world!r}; choose from {', '.join(PAIR_SOURCES)}")
    source = PAIR_SOURCES[cfg.world]()
    if cfg.model_config not in open_clip.list_models():
        raise LincirError(f"--preset {cfg.preset}: unknown model config {cfg.model_config!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path, meta_path = out_dir / f"{cfg.preset}.safetensors", out_dir / f"{cfg.preset}.json"
    log_path = out_dir / f"{cfg.preset}.log.jsonl"

    torch.manual_seed(cfg.seed)
    model = open_clip.create_model(cfg.model_config, pretrained=None)
    model.visual.to(memory_format=torch.channels_last)  # measured 1.5x faster convolutions on CPU
    tokenizer = open_clip.get_tokenizer(cfg.model_config)
    if cfg.logit_scale is not None:
        model.logit_scale.data.fill_(math.log(cfg.logit_scale))
        model.logit_scale.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and (p.ndim < 2 or "embedding" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)

    t0 = time.time()
    pool = source.pool(cfg.pool_size, cfg.seed)
    codes = source.codes(pool.attrs)  # (P, F)
    log(f"[{cfg.preset}] rendered {cfg.pool_size} training images in {time.time() - t0:.0f}s")
    rng = np.random.default_rng([606, cfg.seed])  # the batch and caption stream
    history: list[dict] = []
    train_time = 0.0
    log_path.write_text("")

    def record(step: int, partial: bool, evaluation: dict) -> dict:
        return {
            "model_config": cfg.model_config, "preset": cfg.preset, "command": command,
            "config": asdict(cfg), "seed": cfg.seed, "steps": step, "train_seconds": round(train_time, 1),
            "seconds_per_step": round(train_time / max(step, 1), 3), "partial": partial, "dtype": "float16",
            "logit_scale": float(model.logit_scale.exp()), "eval": evaluation,
            "eval_history": history, "versions": _versions(),
            "parameters": sum(p.numel() for p in model.parameters()),
        }

    model.train()
    last = min(cfg.steps, cfg.stop_at or cfg.steps)
    for step in range(last):
        tic = time.time()
        idx = sample_batch(codes, cfg, rng)
        texts = [source.caption(pool.attrs[i], rng, cfg) for i in idx]
        mentioned = np.array([[n in m for n in source.factor_names] for _, m in texts])
        match = soft_targets(codes[idx], mentioned)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        pixels = images_to_tensor(pool.images[idx]).contiguous(memory_format=torch.channels_last)
        img = model.encode_image(pixels)  # (B, d)
        txt = encode_text_with_pseudo_tokens(model, trim_padding(tokenizer([t for t, _ in texts])))  # (B, d)
        loss = contrastive_loss(img, txt, model.logit_scale.exp(), match)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if cfg.logit_scale is None:
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        train_time += time.time() - tic
        done = step + 1
        if done % cfg.eval_every == 0 or done == last:
            ev = source.evaluate(model, tokenizer, cfg.eval_pairs, cfg.seed)
            entry = {"step": done, "loss": round(loss.item(), 4), "train_seconds": round(train_time, 1),
                     "logit_scale": round(float(model.logit_scale.exp()), 2), **ev}
            history.append(entry)
            with open(log_path, "a") as fh:
                fh.write(json.dumps(entry) + "\n")
            log(f"[{cfg.preset}] step {done}/{last} loss {loss.item():.3f} {train_time / done:.2f}s/step "
                f"comb {ev['combination']:.3f} attr " + " ".join(f"{k}={v:.2f}" for k, v in ev["attribute"].items())
                + f" gap {ev['gap']:.3f} cos {ev['matched_cos']:.2f}/{ev['random_cos']:.2f}")
            save_weights(model, weights_path)
            atomic_write_json(meta_path, record(done, done < last, ev))

    # The shipped numbers: evaluate the float16 weights as stored (loaded back into float32).
    from safetensors.torch import load_file

    stored = load_file(str(weights_path))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in stored.items()}, strict=False)
    final = record(last, False, source.evaluate(model, tokenizer, cfg.eval_pairs, cfg.seed))
    atomic_write_json(meta_path, final)
    log(f"[{cfg.preset}] wrote {weights_path} ({weights_path.stat().st_size / 1e6:.1f} MB) and {meta_path}")
    return final


def preset(name: str, **overrides) -> ClipTrainConfig:
    """A named preset with some fields replaced (None values are ignored)."""
    if name not in PRESETS:
        raise LincirError(f"--preset: unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def world_token_ids(tokenizer, n: int = 20000) -> set[int]:
    """Every token id the embedded worlds' text can use: captions of both worlds at their rates and at the CLIP
    rates, full scene captions, zero-shot prompts, concept phrases, modification texts, the template, the
    placeholder, and every synonym in the phrase tables (so words a grammar draws rarely are kept too)."""
    from lincir.world.concepts import world_concepts
    from lincir.world.data import train_captions as shapes_captions
    from lincir.world.language import _COMPARATIVE, _MODIFY
    from lincir.world.scenes import data as scenes_data
    from lincir.world.scenes.concepts import scenes_concepts
    from lincir.world.scenes.factors import DISTRACTOR_PHRASES, DISTRACTOR_WORDS, NO_DISTRACTOR_PHRASES, SYNONYMS

    texts = shapes_captions(n, 0) + scenes_data.train_captions(n, 0) + scenes_data.train_captions(n, 1, 2.0)
    bench = scenes_data.benchmark(300, 0)
    texts += [t for q in bench.queries for t in (q.text, q.reference_caption, q.target_caption,
                                                   q.reference_alt_caption)]
    texts += [p for bank in (world_concepts(0), scenes_concepts(0)) for ps in bank.values() for p in ps]
    texts += [w for table in SYNONYMS.values() for words in table.values() for w in words]
    texts += [w for kinds in DISTRACTOR_WORDS.values() for w in kinds] + list(DISTRACTOR_PHRASES)
    # The query templates' words (eval.methods.DEFAULT_TEMPLATE composes "a photo of $ that <text>"; a test checks).
    texts += list(NO_DISTRACTOR_PHRASES) + ["a photo of $", "a photo of $ that", "$"]
    texts += [t for table in _MODIFY.values() for t in table] + [w for ws in _COMPARATIVE.values() for w in ws]
    ids = set()
    for i in range(0, len(texts), 4096):
        ids |= set(tokenizer(texts[i:i + 4096]).flatten().tolist())
    return ids


def ship_clip(src_dir: str | Path, preset_name: str, out_dir: str | Path, log: Callable[[str], None] = print) -> dict:
    """Write <out>/<preset>.safetensors with the token embedding pruned to world_token_ids, and <preset>.json
    (the training record plus what was pruned). Refuses unless the world's texts encode bit-identically."""
    import open_clip
    from safetensors.torch import load_file, save_file

    from lincir.models.pruned_embedding import expand_token_embedding, prune_token_embedding

    register_model_configs()
    src, out = Path(src_dir), Path(out_dir)
    weights, meta_path = src / f"{preset_name}.safetensors", src / f"{preset_name}.json"
    for p in (weights, meta_path):
        if not p.is_file():
            raise LincirError(f"{p}: not found (train it with `lincir world train-clip --preset {preset_name}`)")
    meta = json.loads(meta_path.read_text())
    if meta.get("partial"):
        raise LincirError(f"{meta_path}: a partial run (step {meta.get('steps')}); ship a finished one")
    if meta.get("seed") != 0:  # load_backbone refills pruned rows from the seed-0 initialisation
        raise LincirError(f"{meta_path}: trained with seed {meta.get('seed')}; only seed-0 CLIPs can ship pruned")
    state = load_file(str(weights))
    tokenizer = open_clip.get_tokenizer(meta["model_config"])
    kept = world_token_ids(tokenizer)
    pruned = prune_token_embedding(state, kept)
    # Parity: the pruned file, expanded on a model built as load_backbone builds it, encodes the world's text as
    # the unpruned file does.
    def model_from(st):
        torch.manual_seed(0)
        m = open_clip.create_model(meta["model_config"], pretrained=None)
        st = expand_token_embedding({k: v.float() if v.is_floating_point() else v for k, v in st.items()},
                                    m.token_embedding.weight)
        m.load_state_dict(st)
        return m.eval()

    from lincir.world.scenes.data import train_captions as scenes_captions

    probe = tokenizer(scenes_captions(512, 7) + ["a photo of $ that is red"])
    whole, rebuilt = model_from(state), model_from(pruned)
    with torch.no_grad():
        a, b = whole.encode_text(probe), rebuilt.encode_text(probe)
    if not torch.equal(a, b):
        raise LincirError(f"{weights}: the pruned embedding changes text features (max {float((a - b).abs().max())})")
    # Every row, not only the probed ones: the refilled rows are the training run's own, up to float16 rounding
    # (a CLIP whose unseen rows moved, or another initialisation, fails here).
    gap = float((whole.token_embedding.weight - rebuilt.token_embedding.weight).abs().max())
    if gap > 1e-4:
        raise LincirError(f"{weights}: a refilled embedding row differs from the trained one by {gap:.2e}")
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{preset_name}.safetensors"
    atomic_write(target, lambda tmp: save_file(pruned, tmp))
    meta["shipped"] = {"token_embedding_rows_kept": len(kept), "vocab_size": int(state["token_embedding.weight"].shape[0]),
                       "bytes": target.stat().st_size, "unpruned_bytes": weights.stat().st_size,
                       "other_rows": "the seeded initialisation (torch.manual_seed(0)): the training run's own "
                                     f"rows up to float16 rounding (max difference {gap:.1e})"}
    atomic_write_json(out / f"{preset_name}.json", meta)
    log(f"[{preset_name}] shipped {target} ({target.stat().st_size / 1e6:.1f} MB; {len(kept)} embedding rows kept "
        f"of {meta['shipped']['vocab_size']}; text features identical on {len(probe)} probe texts; refilled rows "
        f"within {gap:.1e} of the trained ones)")
    return meta
