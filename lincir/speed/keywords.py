"""`lincir bench keywords`: keyword extraction (SMP's spans) with spaCy against reading them from the cache.

spaCy side: `extract_keyword_spans(use_cache=False)`, i.e. batched `nlp.pipe` through the attribute_ruler,
parser included (the model's own tags). A second spaCy side runs without the parser, as this project did
before: faster, but its tags differ (it counts the captions whose spans change). Cache side: the same call reading the on-disk cache (hashing
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
    no_parser: Timing | None = None  # the pipeline without its parser (the old, wrong tags)
    no_parser_differ: int = 0  # captions whose keyword spans the parser-less pipeline gets wrong
    full_agree: bool | None = None  # the naive side's full pipeline gives the same spans (on its captions)

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
        import spacy

        reduced = spacy.load(model, exclude=["parser", "ner", "lemmatizer", "senter"])
        reduced_spans: list = []

        def no_parser_side(r: int) -> None:
            reduced_spans[:] = [keyword_runs([t.pos_ for t in d], [t.idx for t in d], [t.idx + len(t) for t in d])
                                for d in reduced.pipe(captions, batch_size=256)]

        sides["no_parser"], items["no_parser"] = no_parser_side, len(captions)
        full_spans: list = []
        if naive:
            full = spacy.load(model)
            subset = captions[:naive]

            def naive_side(r: int) -> None:
                full_spans[:] = []
                for c in subset:
                    doc = full(c)
                    full_spans.append(keyword_runs([t.pos_ for t in doc], [t.idx for t in doc],
                                                   [t.idx + len(t) for t in doc]))

            sides["naive"], items["naive"] = naive_side, len(subset)
        times = interleaved(sides, rounds, warmup, items)
        cached = extract_keyword_spans(captions, model=model, use_cache=True)
    agree = bool(np.array_equal(fresh.indptr, cached.indptr) and np.array_equal(fresh.offsets, cached.offsets))
    ours = [[tuple(map(int, se)) for se in fresh[i]] for i in range(len(captions))]
    differ = sum(a != [tuple(se) for se in b] for a, b in zip(ours, reduced_spans))
    full_agree = ours[:len(full_spans)] == [[tuple(se) for se in f] for f in full_spans] if naive else None
    return KeywordsBench(times["spacy"], times["cache"], times.get("naive"), list(nlp.pipe_names), agree,
                         times["no_parser"], differ, full_agree)
