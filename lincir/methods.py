"""Composed-query methods under one harness, selectable by name, and the loop that ranks a whole benchmark.

Methods (the query feature for a reference image and a modification text):
    image       the reference image's feature
    text        the modification text's feature
    image+text  normalised image feature + normalised text feature
    lincir      E_T(template with $ <- phi(image feature)); phi from a LinCIR checkpoint (text-trained)
    pic2word    the same with a phi trained on images (Pic2Word-style)
A query with several texts (FashionIQ's two caption orders) gets the normalised mean of their normalised
query features. Every query feature is L2-normalised; rankings use cosine similarity.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import torch

from .benchmarks.base import Benchmark, Rankings
from .errors import LincirError
from . import retrieval as R

DEFAULT_TEMPLATE = "a photo of $ that {text}"


@dataclass(frozen=True)
class MethodSpec:
    name: str
    needs_phi: bool
    description: str


METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec("image", False, "reference image feature only"),
    MethodSpec("text", False, "modification text only"),
    MethodSpec("image+text", False, "sum of the normalised image and text features"),
    MethodSpec("lincir", True, "pseudo-word from a text-trained phi (LinCIR)"),
    MethodSpec("pic2word", True, "pseudo-word from an image-trained phi (Pic2Word-style)"),
]}


def check_template(template: str) -> str:
    """A query template must hold the placeholder $ once and {text} once."""
    if template.count("$") != 1 or template.count("{text}") != 1:
        raise LincirError(f"--template: {template!r} must contain '$' once and '{{text}}' once")
    return template


def load_phi_checkpoint(path, backbone):
    """A Phi in eval mode on the backbone's device, from our phi.safetensors (+ phi.json) or from the authors'
    torch file ({"Phi": state_dict}, read with weights_only=True); its sizes must fit the backbone."""
    from .checkpoints import check_phi_fits, load_phi

    phi, meta = load_phi(path)
    check_phi_fits(phi, backbone, str(path))
    trained_for = (meta or {}).get("backbone")
    if trained_for and trained_for != backbone.name:
        warnings.warn(f"{path}: phi was made for backbone {trained_for}, evaluating it on {backbone.name}")
    return phi.to(backbone.device).eval()


class QueryEncoder:
    """Turns (reference image features, texts) into normalised query features for one method."""

    def __init__(self, backbone, method: str, phi: torch.nn.Module | None = None,
                 template: str = DEFAULT_TEMPLATE, batch_size: int = 64):
        if method not in METHODS:
            raise LincirError(f"--method: unknown method {method!r}; choose from {', '.join(METHODS)}")
        if METHODS[method].needs_phi and phi is None:
            raise LincirError(f"--phi: method {method} needs a phi checkpoint")
        self.backbone, self.method, self.phi, self.batch_size = backbone, method, phi, batch_size
        self.template = check_template(template)

    @torch.no_grad()
    def encode(self, ref_feats: torch.Tensor, texts: Sequence[Sequence[str]]) -> torch.Tensor:
        """ref_feats (Q, d) unnormalised image features, texts[q] the query's alternative texts -> (Q, d)."""
        if len(texts) != ref_feats.shape[0]:
            raise ValueError(f"{ref_feats.shape[0]} reference features for {len(texts)} queries")
        image = R.normalize(ref_feats)
        if self.method == "image":
            return image
        owner = [q for q, alts in enumerate(texts) for _ in alts]  # (T,) query of each flattened text
        flat = [t for alts in texts for t in alts]
        if self.method in ("text", "image+text"):
            feats = self._text(flat, None)
            if self.method == "image+text":
                feats = R.normalize(feats) + image[owner]
        else:
            pseudo = self.phi(ref_feats.to(self.backbone.device).float()).float()  # (Q, w)
            prompts = [self.template.replace("{text}", t) for t in flat]
            feats = self._text(prompts, pseudo[owner])
        # Mean of the normalised features of each query's alternatives, normalised again (FashionIQ).
        summed = torch.zeros(len(texts), feats.shape[1])
        summed.index_add_(0, torch.tensor(owner, dtype=torch.long), R.normalize(feats))
        return R.normalize(summed)

    def _text(self, texts: list[str], pseudo: torch.Tensor | None) -> torch.Tensor:
        """(T, d) unnormalised text features, in batches; with `pseudo` (T, w) the placeholder is replaced."""
        out = []
        for s in range(0, len(texts), self.batch_size):
            tokens = self.backbone.tokenize(texts[s:s + self.batch_size])
            if pseudo is None:
                f = self.backbone.encode_text(tokens)
            else:
                self._check_placeholder(tokens, texts[s:s + self.batch_size])
                f = self.backbone.encode_with_pseudo(tokens, pseudo[s:s + self.batch_size].to(self.backbone.device))
            out.append(f.float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.backbone.embed_dim)

    def _check_placeholder(self, tokens: torch.Tensor, texts: list[str]) -> None:
        """A prompt whose $ was cut off by the context would silently ignore phi: refuse it instead."""
        kept = (tokens == self.backbone.placeholder_id).any(dim=1)  # (B,)
        if not bool(kept.all()):
            text = texts[int((~kept).nonzero()[0])]
            shown = text if len(text) <= 50 else text[:47] + "..."
            raise LincirError(f"--template: in the query {shown!r} ({len(text.split())} words) the placeholder $ "
                              f"falls beyond the {self.backbone.context_length}-token context; put $ before "
                              f"{{text}} in the template")


def rank_benchmark(bench: Benchmark, backbone, encoder: QueryEncoder, batch_size: int = 64, workers: int = 0,
                   progress: bool = True, cache: bool = True) -> Rankings:
    """Rank every query of every part; rankings are positions (see `lincir.benchmarks.base`).

    Whole-gallery queries keep the top `bench.top_k` after their exclusions, plus their `subset`
    positions merged in global order, so that every metric computed from the rankings is exact.
    """
    rankings: Rankings = {}
    for part in bench.parts:
        gallery = R.image_features(backbone, part.gallery, batch_size, workers, progress, cache,
                                   desc=f"{bench.name} {part.name} gallery")
        index = part.index()
        refs = [q.reference for q in part.queries]
        extra = list({r.key: r for r in refs if r.key not in index or part.gallery[index[r.key]] != r}.values())
        extra_feats = R.image_features(backbone, extra, batch_size, workers, progress, cache,
                                       desc=f"{bench.name} {part.name} references") if extra else None
        extra_index = {r.key: i for i, r in enumerate(extra)}
        ref_feats = torch.stack([extra_feats[extra_index[r.key]] if r.key in extra_index else gallery[index[r.key]]
                                 for r in refs]) if refs else torch.zeros(0, backbone.embed_dim)
        queries = encoder.encode(ref_feats, [q.texts for q in part.queries])
        gallery_n = R.normalize(gallery)
        ranked: list[list[int]] = []
        whole = [qi for qi, q in enumerate(part.queries) if q.candidates is None]
        if whole:
            k = bench.top_k or len(part.gallery)
            top = R.topk_chunked(queries[whole], gallery_n, k, [part.queries[qi].exclude for qi in whole])
            by_query = dict(zip(whole, top))
        for qi, q in enumerate(part.queries):
            if q.candidates is not None:
                ranked.append(R.rank_among(queries[qi], gallery_n, q.candidates))
                continue
            r = by_query[qi]
            listed = set(r)
            missing = [p for p in q.subset if p not in listed]
            if missing:  # CIRR members below the cut-off: rank the union again in one pass, same order
                union = r + missing
                r = [union[i] for i in R.rank_among(queries[qi], gallery_n, union)]
            ranked.append(r)
        rankings[part.name] = ranked
    return rankings
