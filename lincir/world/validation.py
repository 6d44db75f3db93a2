"""Validation on the shapes world during training (`lincir train --validate-world`)."""
from __future__ import annotations

from typing import Callable

from . import benchmark as W


def world_validation_callback(cfg, size: str = "quick", seed: int = 1) -> Callable:
    """A callback (step, phi) -> {"world_R@10", "world_mAP@10"} on a world benchmark of its own seed."""
    state: dict = {}

    def callback(step: int, phi) -> dict:
        if not state:
            from ..backbones import load_backbone

            state["backbone"] = bb = load_backbone(cfg.backbone, cfg.weights, "cpu")
            state["bench"] = bench = W.build(size, seed)
            state["features"] = W.features(bb, bench)
        was = next(phi.parameters()).device
        m = W.evaluate(state["backbone"], state["bench"], state["features"], "lincir", phi.cpu())
        phi.to(was)
        return {"world_R@10": m["R@10"], "world_mAP@10": m["mAP@10"]}

    return callback
