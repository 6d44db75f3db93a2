"""Caption corpora: read a text-only training corpus from disk and clean it as LinCIR does.

Formats: a plain text file (one caption per line), the CC3M TSV (`caption<TAB>url`, no header), a TSV/CSV with a
header and a named column, and Parquet with a named column; `.gz` text files are read transparently.
Cleaning (the paper, and the authors' `clean_caption`): `<PERSON>` (CC12M's name mask) becomes "person",
the text is lower-cased, every "$" (the placeholder) is removed, whitespace runs collapse to one space, and the
caption is cut at a word boundary so that it fits the text encoder's context (start and end tokens included).
Captions that are empty after cleaning are skipped and counted.
"""
from __future__ import annotations

import csv
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from lincir.errors import LincirError
from lincir.storage import sha256_text, text_encoding_problem

FORMATS = ("txt", "tsv", "csv", "parquet")
# Tried in order when no column is named: captions (CC3M-style dumps), then the prompt datasets' usual names
# (DiffusionDB's metadata "prompt", Stable-Diffusion-Prompts' "Prompt", Midjourney dumps' "text").
DEFAULT_COLUMNS = ("caption", "text", "prompt", "Prompt")
MAX_LINE_BYTES = 16 << 20  # a longer line is refused: no caption file holds one (a binary file or one line?)
MAX_RECORD_LINES = 8  # a quoted CSV field running over more lines is an unbalanced quote, refused with its row
_SUFFIXES = {".txt": "txt", ".text": "txt", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class _Encoder(Protocol):
    def encode(self, text: str) -> list[int]: ...


@dataclass
class Corpus:
    """Cleaned captions of one file, in file order."""

    captions: list[str]
    n_skipped_empty: int  # records (lines, rows) whose caption was empty after cleaning
    source: Path
    sha256: str  # of the cleaned captions: the key of everything cached about this corpus
    n_truncated: int = 0  # captions cut to fit the context length
    n_merged: int = 0  # CSV records whose quoted caption spans several lines (joined, the line breaks as spaces)

    def summary(self) -> str:
        """What reading did to the file's records, for the run's summary: nothing is dropped unsaid."""
        return (f"{len(self.captions)} captions; {self.n_truncated} cut to the context; {self.n_skipped_empty} "
                f"empty skipped; {self.n_merged} multi-line CSV records joined")

    def __len__(self) -> int:
        return len(self.captions)


def clean_caption(text: str) -> str:
    """Lower-case, drop every "$", map "<PERSON>" to "person", collapse whitespace (no truncation)."""
    text = text.replace("<PERSON>", "person").lower().replace("$", "")
    return " ".join(text.split())


class TokenCounter:
    """BPE lengths (without start/end tokens) under a CLIP tokenizer; default open_clip's, shared by all our
    backbones. `per_word` is the fast path: one text normalisation per caption instead of one per word."""

    def __init__(self, tokenizer: _Encoder | None = None):
        if tokenizer is None:
            from open_clip.tokenizer import SimpleTokenizer

            tokenizer = SimpleTokenizer()
        self.tokenizer = tokenizer
        # open_clip's SimpleTokenizer: normalise (ftfy, html, whitespace, lower), split with a regex, BPE each piece.
        self._internals = all(hasattr(tokenizer, a) for a in ("clean_fn", "pat", "bpe", "byte_encoder"))
        self._bytes = getattr(tokenizer, "byte_encoder", None)
        self._word_cache: dict[str, int] = {}  # normalised word -> tokens
        vocab = getattr(tokenizer, "encoder", None)  # BPE piece -> id, pieces in byte-encoded characters
        self._longest = (max(len(k.removesuffix("</w>")) for k in vocab) if isinstance(vocab, dict) and vocab
                         else None)

    def count(self, text: str) -> int:
        return len(self.tokenizer.encode(text))

    def bound(self, caption: str, max_tokens: int) -> str:
        """`caption` cut to a prefix that truncation to max_tokens cannot get past, so a 1 MB word costs no more
        than a short one. A BPE token covers at most `_longest` bytes (hence characters) and every kept word
        has a token, so the kept prefix has at most max_tokens * (_longest + 1) characters; the cut drops the
        word it falls in (a partial word could be kept where the whole one is not), except a first word,
        whose prefixes truncation then searches exactly."""
        if self._longest is None:
            return caption
        limit = max_tokens * (self._longest + 1)
        if len(caption) <= limit:
            return caption
        space = caption.rfind(" ", 0, limit + 1)
        return caption[:space] if space > 0 else caption[:limit]

    def per_word(self, caption: str) -> list[int] | None:
        """Tokens of each space-separated word of `caption` (whitespace-collapsed); None when this tokenizer
        cannot say, or its normalisation changes the words (then use `count` on prefixes)."""
        if not self._internals:
            return None
        tok = self.tokenizer
        # Printable ASCII without "&" is left alone by ftfy and html.unescape: skip them (most of a corpus).
        plain = caption.isascii() and caption.isprintable() and "&" not in caption
        words = (caption.lower() if plain else tok.clean_fn(caption)).split(" ")
        if len(words) != caption.count(" ") + 1:
            return None
        cache = self._word_cache
        if len(cache) > 1_000_000:  # bounded: a corpus's vocabulary is Zipfian, the head stays hot
            cache.clear()
        out = []
        for w in words:
            n = cache.get(w)
            if n is None:
                # The BPE output of a regex piece is its tokens joined by single spaces.
                n = sum(tok.bpe("".join(self._bytes[b] for b in p.encode("utf-8"))).count(" ") + 1 for p in tok.pat.findall(w))
                cache[w] = n
            out.append(n)
        return out


def truncate_caption(caption: str, max_tokens: int, counter: TokenCounter, counts: list[int] | None = None) -> str:
    """Keep the longest prefix of whole words whose BPE length is <= max_tokens (a character prefix of the
    first word when even that word is too long). `caption` must be whitespace-collapsed; counts: per_word's."""
    words = caption.split(" ")
    if counts is None:
        counts = counter.per_word(caption)
    if counts is None:  # The CLIP tokenizer never merges across whitespace: a caption's length is its words' sum.
        counts = [counter.count(w) for w in words]
    total, keep = 0, 0
    for n in counts:
        total += n
        if total > max_tokens:
            break
        keep += 1
    cut = " ".join(words[:keep])
    # ftfy's fixes of non-ASCII text may reach across words: there, check the sum against the real tokenizer.
    while keep > 0 and not cut.isascii() and counter.count(cut) > max_tokens:
        keep -= 1
        cut = " ".join(words[:keep])
    if keep > 0:
        return cut
    lo, hi = 0, len(words[0])  # binary search on a character prefix of the first word
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if counter.count(words[0][:mid]) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    return words[0][:lo]


def detect_format(path: Path) -> str:
    """The format named by the file's suffix (`.gz` looked through)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise LincirError(f"{path}: cannot tell the caption format from the file name; pass --corpus-format (fmt=), one of {FORMATS}")
    return fmt


def read_captions(
    path: str | os.PathLike,
    fmt: str = "auto",
    column: str | None = None,
    context_length: int = 77,
    tokenizer: _Encoder | None = None,
) -> Corpus:
    """Read and clean a caption corpus.

    fmt: "auto" (by suffix), "txt" (one caption per line), "tsv" (CC3M `caption<TAB>url` without header, or a
    headed TSV when `column` is given), "csv" (header row; `column`, else the first of DEFAULT_COLUMNS present,
    else the only column), "parquet" (same column rule). context_length: the text encoder's, start and end tokens included;
    captions are cut to context_length - 2 BPE tokens at a word boundary. tokenizer: anything with
    `.encode(str) -> list[int]` (default open_clip's CLIP BPE, loaded only if a caption may be too long).
    Every problem the file can cause raises a one-line LincirError naming the file (and line or row).
    """
    path = Path(path)
    if not path.exists():
        raise LincirError(f"{path}: file not found")
    if not path.is_file():
        raise LincirError(f"{path}: not a file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt not in FORMATS:
        raise LincirError(f"fmt: unknown caption format {fmt!r}; expected auto or one of {FORMATS}")
    if fmt == "txt" and column is not None:
        raise LincirError(f"column: a plain text file ({path}) has no columns; use fmt=csv, tsv or parquet")
    if context_length < 3:
        raise LincirError(f"context_length: {context_length} leaves no room for a caption")
    if fmt == "parquet":
        raw = _parquet_records(path, column)
    elif fmt == "csv":
        raw = _CsvRecords(path, column, delimiter=",")
    elif fmt == "tsv" and column is not None:
        raw = _CsvRecords(path, column, delimiter="\t")
    elif fmt == "tsv":
        raw = _cc3m_records(path)
    else:
        raw = _txt_records(path)
    return _clean_all(path, raw, context_length - 2, tokenizer)


def _clean_all(path: Path, raw: Iterable[str | None], max_tokens: int, tokenizer: _Encoder | None) -> Corpus:
    """Clean, truncate and count: the shared tail of every reader."""
    captions: list[str] = []
    n_empty = n_truncated = n_records = 0
    counter: TokenCounter | None = None  # loaded on the first caption that may be too long
    for text in raw:
        n_records += 1
        caption = clean_caption(text) if text else ""
        if not caption:
            n_empty += 1
            continue
        # A BPE token covers at least one byte, so a short ASCII caption always fits: tokenize only long ones.
        if not (caption.isascii() and len(caption) <= max_tokens):
            if counter is None:
                counter = TokenCounter(tokenizer)
            caption = counter.bound(caption, max_tokens)
            counts = counter.per_word(caption)
            if (sum(counts) if counts is not None else counter.count(caption)) > max_tokens:
                caption = truncate_caption(caption, max_tokens, counter, counts)
                n_truncated += 1
                if not caption:
                    n_empty += 1
                    continue
        captions.append(caption)
    if n_records == 0:
        raise LincirError(f"{path}: empty file (no captions)")
    if not captions:
        raise LincirError(f"{path}: every caption is empty after cleaning ({n_empty} records)")
    return Corpus(captions, n_empty, path, sha256_text(*captions), n_truncated, getattr(raw, "merged", 0))


def _binary_lines(path: Path, block: int = 1 << 20) -> Iterator[bytes]:
    """Raw lines of a (possibly gzipped) file, without their endings, by universal newlines: \\n, \\r\\n and
    a lone \\r (old Mac files) all end a line. Read in blocks, so a file of one huge line is refused, not held."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            rest, first = b"", True
            while True:
                data = fh.read(block)
                if first:
                    named = text_encoding_problem(data[:4096])
                    if named:
                        raise LincirError(f"{path}: {named}")
                    first = False
                if not data:
                    break
                buf = rest + data
                # A \\r at the very end may be the first half of \\r\\n: keep it for the next block.
                keep_cr = buf.endswith(b"\r")
                lines = buf[:-1].splitlines() if keep_cr else buf.splitlines()
                ended = keep_cr or buf.endswith(b"\n")
                rest = b"\r" if keep_cr else b""
                if not ended and lines:
                    rest = lines.pop()
                if len(rest) > MAX_LINE_BYTES:
                    raise LincirError(f"{path}: a line longer than {MAX_LINE_BYTES >> 20} MiB (not a caption file?)")
                yield from lines
            if rest and rest != b"\r":
                yield rest
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError
        raise LincirError(f"{path}: cannot read ({e})") from None


def _text_lines(path: Path) -> Iterator[str]:
    """Decoded lines (without endings), with one-line errors for binary, UTF-16 and non-UTF-8 files."""
    for lineno, line in enumerate(_binary_lines(path), start=1):
        if len(line) > MAX_LINE_BYTES:
            raise LincirError(f"{path}:{lineno}: a line longer than {MAX_LINE_BYTES >> 20} MiB (not a caption file?)")
        if b"\x00" in line:
            raise LincirError(f"{path}:{lineno}: binary data (NUL byte), not a text file")
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            hint = ""
            try:
                line.decode("cp1252")
                hint = "; if it is Latin-1 or Windows-1252, convert it: iconv -f CP1252 -t UTF-8"
            except UnicodeDecodeError:
                pass
            raise LincirError(f"{path}:{lineno}: not UTF-8 text ({e.reason} at byte {e.start} of the line{hint})") \
                from None
        if lineno == 1 and text.startswith("\ufeff"):  # a byte-order mark some editors write
            text = text[1:]
        yield text


def _txt_records(path: Path) -> Iterator[str]:
    yield from _text_lines(path)


def _cc3m_records(path: Path) -> Iterator[str]:
    """CC3M's `caption<TAB>url` lines; a first line `caption<TAB>url` is taken as a header and skipped.
    No quote processing: TSV has none, so a caption starting with a quote is text."""
    for lineno, line in enumerate(_text_lines(path), start=1):
        if not line.strip():
            yield ""
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise LincirError(
                f"{path}:{lineno}: expected 2 tab-separated fields (caption<TAB>url), found {len(fields)}"
                " (for another layout pass --corpus-column, column=)"
            )
        if lineno == 1 and [f.strip().lower() for f in fields] == ["caption", "url"]:
            continue
        yield fields[0]


def _pick_column(path: Path, names: list[str], column: str | None) -> int:
    """Index of the caption column in a header."""
    if column is not None:
        if column not in names:
            raise LincirError(f"{path}: no column {column!r} (--corpus-column, column=); columns are {names}")
        return names.index(column)
    for name in DEFAULT_COLUMNS:
        if name in names:
            return names.index(name)
    if len(names) == 1:
        return 0
    raise LincirError(f"{path}: which column holds the captions? pass --corpus-column (column=), one of {names}")


class _CsvRecords:
    """Rows of a headed CSV/TSV; blank lines count as empty captions. TSV: no quote processing (quotes are
    text). CSV: a quoted field may hold line breaks (such records are counted in `merged`); one running over
    MAX_RECORD_LINES lines is an unbalanced quote, refused with the line it opened on."""

    def __init__(self, path: Path, column: str | None, delimiter: str):
        self.path, self.column, self.tsv = path, column, delimiter == "\t"
        self.merged = 0

    def __iter__(self) -> Iterator[str]:
        path, kind = self.path, "TSV" if self.tsv else "CSV"
        lines = (line + "\n" for line in _text_lines(path))
        reader = csv.reader(lines, delimiter="\t" if self.tsv else ",",
                            quoting=csv.QUOTE_NONE if self.tsv else csv.QUOTE_MINIMAL)
        start = 1
        try:
            header = next(reader, None)
            if header is None:
                return
            idx = _pick_column(path, [h.strip() for h in header], self.column)
            start = reader.line_num + 1
            for row in reader:
                spanned = reader.line_num - start + 1
                if spanned > MAX_RECORD_LINES:
                    raise LincirError(f"{path}:{start}: a quoted field runs over {spanned} lines, to line "
                                      f"{reader.line_num} (an unbalanced quote?); fix the quote, or use a TSV "
                                      f"file, where quotes are text")
                if row and len(row) != len(header):
                    raise LincirError(f"{path}:{start}: expected {len(header)} fields like the header, "
                                      f"found {len(row)}")
                self.merged += spanned > 1
                start = reader.line_num + 1
                yield row[idx] if row else ""
        except csv.Error as e:
            raise LincirError(f"{path}:{start}: malformed {kind} ({e}; a quote opened here and never closed?)") \
                from None


def _parquet_records(path: Path, column: str | None) -> Iterator[str | None]:
    """Values of one string column, read in batches (nulls count as empty captions)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as e:
        raise LincirError(f"{path}: not a Parquet file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    names = list(pf.schema_arrow.names)
    name = names[_pick_column(path, names, column)]
    kind = pf.schema_arrow.field(name).type
    if not _is_text(pa, kind):
        raise LincirError(f"{path}: column {name!r} holds {kind}, not text")
    try:
        for batch in pf.iter_batches(batch_size=65536, columns=[name]):
            column = batch.column(0)
            if pa.types.is_dictionary(column.type):  # dictionary-encoded text: decode to plain strings
                column = column.dictionary_decode()
            yield from column.to_pylist()
    except (pa.ArrowException, OSError) as e:
        raise LincirError(f"{path}: cannot read column {name!r} ({str(e).splitlines()[0]})") from None


def _is_text(pa, kind) -> bool:
    """A string column, plain, large, view or dictionary-encoded (as writers store repeated captions)."""
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    view = getattr(pa.types, "is_string_view", lambda _: False)
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or view(kind)
