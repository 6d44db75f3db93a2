"""`lincir bench keywords`: keyword extraction (SMP's spans) with spaCy against reading them from the cache.

spaCy side: `extract_keyword_spans(use_cache=False)`, i.e. batched `nlp.pipe` with the pipeline components
part-of-speech tagging does not need excluded. Cache side: the same call reading the on-disk cache (hashing
the captions to find their chunk files, then loading them). Optionally a naive side: the full pipeline, one
`nlp(caption)` call per caption, to show what batching and excluding components buy.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from lincir.core.masking import keyword_runs
from lincir.data.keywords import SPACY_MODEL, extract_keyword_spans, load_spacy
from lincir.speed.timing import Timing, interleaved


@dataclass
class KeywordsBench:
    spacy: Timing
    cache: Timing
    naive: Timing | None
    pipeline: list[str]  # the spaCy components the spaCy side runs
    agree: bool  # the cache returns exactly the spans spaCy computes

    @property
    def ratio(self) -> float:
        """Captions/s of the cache over captions/s of spaCy."""
        return self.cache.rate / self.spacy.rate


@contextmanager
def _scratch_cache() -> Iterator[str]:
    """LINCIR_CACHE pointed at a temporary folder, so the bench neither reads nor fills the user's cache."""
    before = os.environ.get("LINCIR_CACHE")
    with tempfile.TemporaryDirectory(prefix="lincir-bench-") as tmp:
        os.environ["LINCIR_CACHE"] = tmp
        try:
            yield tmp
        finally:
            if before is None:
                os.environ.pop("LINCIR_CACHE", None)
            else:
                os.environ["LINCIR_CACHE"] = before


def bench_keywords(captions: list[str], rounds: int = 3, warmup: int = 1, naive: int = 0,
                   model: str = SPACY_MODEL) -> KeywordsBench:
    """Time keyword extraction over `captions` with spaCy and from the cache, interleaved.

    naive: also time the full pipeline, caption by caption, on the first `naive` captions (0: not at all).
    """
    nlp = load_spacy(model)  # loading the model once is not part of either side
    with _scratch_cache():
        fresh = extract_keyword_spans(captions, model=model, use_cache=True)  # fills the scratch cache
        sides = {"spacy": lambda r: extract_keyword_spans(captions, model=model, use_cache=False),
                 "cache": lambda r: extract_keyword_spans(captions, model=model, use_cache=True)}
        items = {"spacy": len(captions), "cache": len(captions)}
        if naive:
            import spacy

            full = spacy.load(model)
            subset = captions[:naive]

            def naive_side(r: int) -> None:
                for c in subset:
                    doc = full(c)
                    keyword_runs([t.pos_ for t in doc], [t.idx for t in doc], [t.idx + len(t) for t in doc])

            sides["naive"], items["naive"] = naive_side, len(subset)
        times = interleaved(sides, rounds, warmup, items)
        cached = extract_keyword_spans(captions, model=model, use_cache=True)
    agree = bool(np.array_equal(fresh.indptr, cached.indptr) and np.array_equal(fresh.offsets, cached.offsets))
    return KeywordsBench(times["spacy"], times["cache"], times.get("naive"), list(nlp.pipe_names), agree)
