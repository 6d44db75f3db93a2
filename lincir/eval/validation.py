"""Validation during training, on any benchmark: a callback (step, phi) -> {"<benchmark>_<metric>": value}.

The trainer (train/) never imports eval/: the CLI builds the callback here and hands it to `train`, which
calls it every `val_every` steps and keeps phi_best by `best_metric`. The shapes world is one case of it.
"""
from __future__ import annotations

from typing import Callable

from lincir.errors import LincirError

# What the best phi is chosen by when --best-metric is not given: each benchmark's headline number (CIRR's
# leaderboard average, as the authors validate on CIRR val).
DEFAULT_BEST = {
    "world": "world_R@10",
    "cirr": "cirr_avg(R@5,R_subset@1)",
    "circo": "circo_mAP@10",
    "fashioniq": "fashioniq_average/R@10",
    "genecis": "genecis_average/R@1",
}


def benchmark_validation_callback(cfg, name: str, data_root, split: str = "val", template: str | None = None,
                                  batch_size: int = 64, cache: bool = True) -> Callable:
    """A callback scoring phi ("lincir" method) on benchmark `name` at `data_root`. The benchmark is read (and
    its images checked) now, so a bad --data-root fails before training; the backbone is loaded on phi's
    device at the first call, and gallery features come from the on-disk image-feature cache after it."""
    from lincir.eval.benchmarks import load_benchmark
    from lincir.eval.methods import DEFAULT_TEMPLATE

    if data_root is None:
        raise LincirError(f"--validate {name}: needs --data-root (the {name} folder as downloaded), "
                          f"or --validate none")
    bench = load_benchmark(name, data_root, split)
    bench.check_images()  # raises, naming the missing files
    state: dict = {}

    def callback(step: int, phi) -> dict:
        from lincir.eval.harness import rank_benchmark
        from lincir.eval.query_encoder import QueryEncoder
        from lincir.models.backbones import load_backbone

        device = next(phi.parameters()).device
        if state.get("device") != device:
            state["backbone"], state["device"] = load_backbone(cfg.backbone, cfg.weights, device), device
        encoder = QueryEncoder(state["backbone"], "lincir", phi, template or DEFAULT_TEMPLATE, batch_size)
        rankings = rank_benchmark(bench, state["backbone"], encoder, batch_size, progress=False, cache=cache)
        return {f"{name}_{k}": float(v) for k, v in bench.metrics(rankings).items()}

    return callback


def validation_callback(cfg, name: str, data_root=None, split: str = "val") -> Callable:
    """The callback of `--validate name`: the shapes world (no data root) or a benchmark folder."""
    if name == "world":
        from lincir.eval.world_benchmark import world_validation_callback

        return world_validation_callback(cfg)
    if name not in DEFAULT_BEST:
        raise LincirError(f"--validate: unknown benchmark {name!r}; choose from {', '.join(DEFAULT_BEST)} or none")
    return benchmark_validation_callback(cfg, name, data_root, split)
