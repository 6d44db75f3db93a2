"""The loop that ranks a whole benchmark with one composed-query method (every part, every query)."""
from __future__ import annotations

import torch

from lincir.data.images import image_features
from lincir.eval.benchmarks.base import Benchmark, Rankings
from lincir.eval.query_encoder import QueryEncoder
from lincir.eval.ranking import normalize, rank_among, require_finite, topk_chunked


def rank_benchmark(bench: Benchmark, backbone, encoder: QueryEncoder, batch_size: int = 64, workers: int = 0,
                   progress: bool = True, cache: bool = True) -> Rankings:
    """Rank every query of every part; rankings are positions (see `lincir.eval.benchmarks.base`).

    Whole-gallery queries keep the top `bench.top_k` after their exclusions, plus their `subset`
    positions merged in global order, so that every metric computed from the rankings is exact.
    """
    rankings: Rankings = {}
    for part in bench.parts:
        gallery = image_features(backbone, part.gallery, batch_size, workers, progress, cache,
                                   desc=f"{bench.name} {part.name} gallery")
        encoder.use_gallery(gallery)  # C3's test-time centering (a no-op otherwise)
        index = part.index()
        refs = [q.reference for q in part.queries]
        extra = list({r.key: r for r in refs if r.key not in index or part.gallery[index[r.key]] != r}.values())
        extra_feats = image_features(backbone, extra, batch_size, workers, progress, cache,
                                       desc=f"{bench.name} {part.name} references") if extra else None
        extra_index = {r.key: i for i, r in enumerate(extra)}
        ref_feats = torch.stack([extra_feats[extra_index[r.key]] if r.key in extra_index else gallery[index[r.key]]
                                 for r in refs]) if refs else torch.zeros(0, backbone.embed_dim)
        queries = encoder.encode(ref_feats, [q.texts for q in part.queries])
        require_finite(gallery, f"{bench.name} {part.name} gallery")
        require_finite(queries, f"{bench.name} {part.name} queries")
        gallery_n = normalize(gallery)
        ranked: list[list[int]] = []
        whole = [qi for qi, q in enumerate(part.queries) if q.candidates is None]
        if whole:
            k = bench.top_k or len(part.gallery)
            top = topk_chunked(queries[whole], gallery_n, k, [part.queries[qi].exclude for qi in whole])
            by_query = dict(zip(whole, top))
        for qi, q in enumerate(part.queries):
            if q.candidates is not None:
                ranked.append(rank_among(queries[qi], gallery_n, q.candidates))
                continue
            r = by_query[qi]
            listed = set(r)
            missing = [p for p in q.subset if p not in listed]
            if missing:  # CIRR members below the cut-off: rank the union again in one pass, same order
                union = r + missing
                r = [union[i] for i in rank_among(queries[qi], gallery_n, union)]
            ranked.append(r)
        rankings[part.name] = ranked
    return rankings
