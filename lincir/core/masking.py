"""Self-Masking Projection (SMP): which part of a caption the pseudo-word "$" replaces during training.

Strategies (the registry `STRATEGIES`):
- "keywords" (SMP, the default): every maximal run of tokens whose spaCy part of speech is NOUN, PROPN, ADJ or
  DET becomes "$" (all runs share the one placeholder); a caption without such a run gets one random word
  replaced instead.
- "keywords-authors": the same spans applied as the authors' released code applies them, bug for bug: each span's
  words joined by single spaces and `str.replace`d on the whole caption, in order, so every occurrence is hit,
  substrings of other words included ("a" inside "large", "the rain" inside "the rainbow"); a caption left
  without a "$" (no span, or no hit) gets one random word replaced, as with "keywords".
- "template": always "a photo of $".
- "random_word": one random word replaced by "$".
- "whole_caption": "$" alone.
Whatever the strategy, a masked caption whose placeholder does not survive tokenisation (cut off at the context
length) becomes "a photo of $".

Pure: the strategies take keyword spans as given (character offsets); `lincir.data.keywords` finds them with
spaCy and caches them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from lincir.errors import LincirError

PLACEHOLDER = "$"
TEMPLATE = "a photo of $"
KEYWORD_POS = ("NOUN", "PROPN", "ADJ", "DET")


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


def mask_keywords_authors(caption: str, spans: np.ndarray | Sequence[tuple[int, int]], rng: np.random.Generator) -> str:
    """The authors' form of SMP: `str.replace` of each span's text on the whole (already partly masked) caption.

    Their spans are spaCy tokens joined by spaces; ours are character runs, so a run's words are joined by
    single spaces (identical for whitespace-separated tokens; a hyphenated word keeps its hyphen here)."""
    out = _masked_for(caption, spans)
    return out if PLACEHOLDER in out else mask_random_word(caption, rng)


def mask_template(caption: str, rng: np.random.Generator | None = None) -> str:
    """Ablation: the caption is ignored, "a photo of $"."""
    return TEMPLATE


def mask_whole_caption(caption: str, rng: np.random.Generator | None = None) -> str:
    """Ablation: the whole caption becomes the pseudo-word."""
    return PLACEHOLDER


STRATEGIES: dict[str, Callable[..., str]] = {
    "keywords": mask_keywords,
    "keywords-authors": mask_keywords_authors,
    "template": mask_template,
    "random_word": mask_random_word,
    "whole_caption": mask_whole_caption,
}


DEFAULT_STRATEGY = "keywords"
SPAN_STRATEGIES = ("keywords", "keywords-authors")  # the strategies that need keyword spans


def _masked_for(caption: str, spans) -> str:
    """The authors' replacement alone (no fallback): for telling which captions fell back."""
    out = caption
    for s, e in spans:
        phrase = " ".join(caption[int(s):int(e)].split())
        if phrase:
            out = out.replace(phrase, PLACEHOLDER)
    return out


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


def check_no_placeholder(captions: Sequence[str]) -> None:
    """A caption holding "$" would be masked ambiguously: refuse it (clean it with lincir.data.corpus)."""
    for i, c in enumerate(captions):
        if PLACEHOLDER in c:
            raise LincirError(f"caption {i}: contains the placeholder {PLACEHOLDER!r}; clean it first "
                              f"(lincir.data.corpus.clean_caption)")


def apply_masking(captions: Sequence[str], strategy: str, rng: np.random.Generator,
                  tokenize: Callable[[list[str]], "object"], placeholder_id: int, context_length: int,
                  spans: KeywordSpans | None = None) -> MaskResult:
    """Mask every caption with `strategy` (keyword spans given for "keywords"), draws taken in caption order.

    A text whose placeholder does not survive tokenisation (cut off at the context length) becomes the template.
    """
    how = np.zeros(len(captions), dtype=np.int8)
    if strategy in SPAN_STRATEGIES:
        if spans is None or len(spans) != len(captions):
            raise LincirError(f"spans: {0 if spans is None else len(spans)} span lists for {len(captions)} captions")
        fn = STRATEGIES[strategy]
        texts = [fn(c, spans[i], rng) for i, c in enumerate(captions)]
        if strategy == "keywords":
            how[np.diff(spans.indptr) == 0] = RANDOM_WORD_FALLBACK
        else:  # no span, or no hit
            how[[PLACEHOLDER not in _masked_for(c, spans[i]) for i, c in enumerate(captions)]] = RANDOM_WORD_FALLBACK
    else:
        fn = STRATEGIES[strategy]
        texts = [fn(c, rng) for c in captions]
    if strategy in SPAN_STRATEGIES + ("random_word",):
        lost = ~placeholder_survives(texts, tokenize, placeholder_id, context_length)
        for i in np.flatnonzero(lost):
            texts[i] = TEMPLATE
        how[lost] = TEMPLATE_FALLBACK
    return MaskResult(texts, how)
