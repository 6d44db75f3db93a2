"""Composed-query methods under one harness, selectable by name, and the loop that ranks a whole benchmark.

Methods (the query feature for a reference image and a modification text):
    image       the reference image's feature
    text        the modification text's feature
    image+text  normalised image feature + normalised text feature
    slerp       spherical interpolation from the normalised image to the normalised text feature, weight w on the
                text (Jang et al., ECCV 2024, "Spherical Linear Interpolation and Text-Anchoring"; default 0.5)
    lincir      E_T(template with $ <- phi(image feature)); phi from a LinCIR checkpoint (text-trained)
    pic2word    the same with a phi trained on images (Pic2Word-style)
    searle      the same with a phi distilled from per-image textual inversion (SEARLE-style)
A query with several texts (FashionIQ's two caption orders) gets the normalised mean of their normalised
query features. Every query feature is L2-normalised; rankings use cosine similarity.
"""
from __future__ import annotations

from dataclasses import dataclass

from lincir.errors import LincirError

DEFAULT_TEMPLATE = "a photo of $ that {text}"
DEFAULT_SLERP_WEIGHT = 0.5


@dataclass(frozen=True)
class MethodSpec:
    name: str
    needs_phi: bool
    description: str


METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec("image", False, "reference image feature only"),
    MethodSpec("text", False, "modification text only"),
    MethodSpec("image+text", False, "sum of the normalised image and text features"),
    MethodSpec("slerp", False, "spherical interpolation of the normalised image and text features"),
    MethodSpec("lincir", True, "pseudo-word from a text-trained phi (LinCIR)"),
    MethodSpec("pic2word", True, "pseudo-word from an image-trained phi (Pic2Word-style)"),
    MethodSpec("searle", True, "pseudo-word from a phi distilled from textual inversion (SEARLE-style)"),
]}


def check_template(template: str) -> str:
    """A query template must hold the placeholder $ once and {text} once."""
    if template.count("$") != 1 or template.count("{text}") != 1:
        raise LincirError(f"--template: {template!r} must contain '$' once and '{{text}}' once")
    return template
