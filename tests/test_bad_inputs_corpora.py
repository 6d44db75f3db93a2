"""Caption corpora as scraped, exported or mangled: no caption lost or merged without a count, encodings
named, pathological files bounded. Hypothesis checks the readers against reference readings."""
from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_inputs import _write, one_line_error, train_on

from lincir.data.batches import BatchSampler, _epoch_order
from lincir.data.corpus import TokenCounter, clean_caption, read_captions, truncate_caption
from lincir.errors import LincirError

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def test_cr_only_line_ends_are_lines(tmp_path):
    corpus = read_captions(_write(tmp_path / "mac.txt", b"a red cube\ra blue ball\r\na green cone\rlast"))
    assert corpus.captions == ["a red cube", "a blue ball", "a green cone", "last"]


def test_tsv_quotes_are_text(tmp_path):
    """A headed TSV never processes quotes: a caption starting with one keeps every later row."""
    rows = "".join(f"caption {i}\thttp://x/{i}\n" for i in range(1000))
    path = _write(tmp_path / "c.tsv", ('caption\turl\n"a quote that never closes\thttp://x\n' + rows).encode())
    corpus = read_captions(path, column="caption")
    assert len(corpus) == 1001 and corpus.captions[0] == '"a quote that never closes'


def test_csv_unbalanced_quote_names_its_row(tmp_path):
    rows = "".join(f"caption {i},http://x/{i}\n" for i in range(1000))
    path = _write(tmp_path / "c.csv", ('caption,url\nfine,http://a\n"opens here,http://x\n' + rows).encode())
    with pytest.raises(LincirError, match=r"c\.csv:3: a quoted field runs over") as e:
        read_captions(path)
    assert "\n" not in str(e.value)


def test_csv_multi_line_records_are_counted(tmp_path, capsys):
    path = _write(tmp_path / "c" / "m.csv", b'caption,url\n"a red\ncube",http://x\na ball,http://y\n')
    corpus = read_captions(path)
    assert corpus.captions == ["a red cube", "a ball"] and corpus.n_merged == 1
    assert "1 multi-line CSV records joined" in corpus.summary()


@pytest.mark.parametrize("encoding,needle", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"),
                                             ("utf-16-be", "UTF-16BE"), ("utf-32", "UTF-32")])
def test_utf16_and_utf32_are_named(tmp_path, capsys, encoding, needle):
    corpus = _write(tmp_path / "c" / "wide.txt", "a red cube\na blue ball\n".encode(encoding))
    one_line_error(train_on(corpus, tmp_path / "out"), capsys, "wide.txt", needle, "iconv")


def test_latin1_gets_a_hint(tmp_path):
    path = _write(tmp_path / "l.txt", "un caf\u00e9\n".encode("cp1252"))
    with pytest.raises(LincirError, match="not UTF-8 text.*Windows-1252"):
        read_captions(path)


def test_dictionary_encoded_parquet_is_text(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    values = pa.array(["a red cube", "a blue ball", "a red cube", None]).dictionary_encode()
    pq.write_table(pa.table({"caption": values}), tmp_path / "d.parquet")
    corpus = read_captions(tmp_path / "d.parquet")
    assert corpus.captions == ["a red cube", "a blue ball", "a red cube"] and corpus.n_skipped_empty == 1


def test_missing_parquet_column_names_the_option(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    (tmp_path / "c").mkdir()
    pq.write_table(pa.table({"caption": ["a red cube"]}), tmp_path / "c" / "p.parquet")
    one_line_error(train_on(tmp_path / "c" / "p.parquet", tmp_path / "out", "--corpus-column", "txt"), capsys,
                   "p.parquet", "--corpus-column", "'txt'")


def test_a_line_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    import lincir.data.corpus as C

    monkeypatch.setattr(C, "MAX_LINE_BYTES", 1000)
    with pytest.raises(LincirError, match="a line longer than"):
        read_captions(_write(tmp_path / "one.txt", b"x" * 5000))


# ------------------------------------------------------------------------------ bounded work

@pytest.fixture(scope="module")
def counter():
    return TokenCounter()


def test_a_one_megabyte_token_is_cut_like_a_short_one(tmp_path):
    corpus = read_captions(_write(tmp_path / "big.txt", b"x" * 1_000_000 + b" tail\nnormal caption\n"))
    assert corpus.n_truncated == 1 and corpus.captions[1] == "normal caption"
    assert len(corpus.captions[0]) < 2000 and set(corpus.captions[0]) == {"x"}


@SETTINGS
@given(words=st.lists(st.text(alphabet=st.sampled_from("abcxyz!é1 "), min_size=1, max_size=400), min_size=1,
                      max_size=6), max_tokens=st.integers(1, 12))
def test_bounding_never_changes_truncation(counter, words, max_tokens):
    """Parity: truncating the bounded caption gives exactly what truncating the whole caption gives."""
    caption = clean_caption(" ".join(words))
    if not caption:
        return
    whole = truncate_caption(caption, max_tokens, counter)
    assert truncate_caption(counter.bound(caption, max_tokens), max_tokens, counter) == whole


def test_many_duplicates_are_tagged_once(monkeypatch):
    """spaCy sees each distinct caption once; the spans of duplicates equal those of their first copy."""
    import lincir.data.keywords as K

    seen = []

    class FakeToken:
        def __init__(self, text, idx):
            self.text, self.idx, self.pos_ = text, idx, "NOUN"

        def __len__(self):
            return len(self.text)

    class FakeNlp:
        def pipe(self, texts, batch_size, n_process):
            for t in texts:
                seen.append(t)
                yield [FakeToken(m.group(), m.start()) for m in re.finditer(r"\S+", t)]

    captions = ["a red cube", "blue ball"] * 50_000
    spans = K._tag_spans(captions, FakeNlp(), ("NOUN",), 256, 1, None)
    assert seen == ["a red cube", "blue ball"]
    assert len(spans) == 100_000 and spans[2].tolist() == spans[0].tolist() == [[0, 10]]


def _reference_positions(first, count, n, seed):
    """The sampler's stream as first written (a mask per epoch): the reference for its linear rewrite."""
    import torch

    pos = torch.arange(first, first + count)
    out = torch.empty(count, dtype=torch.long)
    for epoch in torch.unique(pos // n).tolist():
        sel = (pos // n) == epoch
        out[sel] = _epoch_order(n, seed, epoch)[pos[sel] % n]
    return out


@pytest.mark.parametrize("n,batch", [(1, 64), (3, 512), (1000, 64), (7, 7)])
def test_batch_sampler_is_linear_and_unchanged(n, batch):
    from lincir.data.batches import _positions

    for first in (0, 5 * batch, 123):
        assert _positions(first, batch, n, 3).tolist() == _reference_positions(first, batch, n, 3).tolist()
    sampler = BatchSampler(2, 4096, 0, lengths=None)  # a batch far larger than the corpus: fast, not a hang
    assert len(sampler.indices(0)) == 4096


# ------------------------------------------------------------------------------ property-based: the readers

LINE_TEXT = st.lists(st.sampled_from(list("ab $\t\"',é<>PERSON") + ["\r", "\n", "\r\n", "\u2028"]),
                     max_size=40).map("".join)


def reference_txt(text: str) -> list[str]:
    """Universal newlines (\\n, \\r\\n, \\r), one caption per line, cleaned, empty ones skipped."""
    lines = re.split(r"\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return [c for c in (clean_caption(line) for line in lines) if c]


def _read_or_refused(path, **kw):
    try:
        return read_captions(path, context_length=100_000, **kw).captions
    except LincirError as e:
        assert "\n" not in str(e) and path.name in str(e)
        return None


@SETTINGS
@given(text=LINE_TEXT)
def test_txt_reader_property(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("t") / "c.txt"
    path.write_bytes(text.encode("utf-8"))
    expected = reference_txt(text)
    assert _read_or_refused(path) == (expected or None)


FIELD = st.lists(st.sampled_from(list("ab ,\"'$é") + ["\n", "\r\n"]), max_size=20).map("".join)


@SETTINGS
@given(rows=st.lists(st.tuples(FIELD, st.text(alphabet="xyz", max_size=5)), max_size=8))
def test_csv_reader_property(tmp_path_factory, rows):
    """A CSV written by Python's csv module reads back as its captions (a field with line breaks counted)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["caption", "url"])
    w.writerows(rows)
    path = tmp_path_factory.mktemp("c") / "c.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    expected = [c for c in (clean_caption(r[0]) for r in rows) if c]
    got = _read_or_refused(path)
    if any(r[0].count("\n") >= 8 for r in rows):
        assert got is None
    else:
        assert got == (expected or None)


@SETTINGS
@given(rows=st.lists(st.text(alphabet=st.sampled_from(list("ab \"'$é,")), max_size=20), max_size=8))
def test_tsv_reader_property(tmp_path_factory, rows):
    """A headed TSV: fields split at tabs, quotes kept as text."""
    path = tmp_path_factory.mktemp("s") / "c.tsv"
    path.write_bytes(("caption\turl\n" + "".join(f"{r}\thttp://x\n" for r in rows)).encode("utf-8"))
    expected = [c for c in (clean_caption(r) for r in rows) if c]
    assert _read_or_refused(path, column="caption") == (expected or None)


def test_duplicated_corpus_targets_encode_each_caption_once(monkeypatch):
    import lincir.data.feature_cache as FC

    class Fake:
        def fingerprint(self):
            return "fake|0"

    encoded = []

    def fake_encode(backbone, captions, progress=False):
        encoded.append(len(captions))
        return np.array([[float(len(c)), 1.0] for c in captions], dtype=np.float32)

    monkeypatch.setattr(FC, "encode_captions", fake_encode)
    captions = ["a red cube", "a ball"] * 1000
    out = FC.caption_targets(Fake(), captions, "k", use_cache=False)
    assert encoded == [2] and out.shape == (2000, 2) and out[2].tolist() == out[0].tolist() == [10.0, 1.0]
    few = [f"caption {i}" for i in range(10)] + ["caption 0"]  # mostly distinct: encoded as before
    FC.caption_targets(Fake(), few, "k2", use_cache=False)
    assert encoded[-1] == 11


def test_distinct_tokenizer_gives_the_same_ids():
    import open_clip

    from lincir.models.backbones import _DistinctTokenizer

    raw = open_clip.get_tokenizer("ViT-B-32")
    texts = ["a red cube", "a ball", "a red cube", "", "a ball"]
    assert torch.equal(_DistinctTokenizer(raw)(texts), raw(texts))
    assert _DistinctTokenizer(raw).context_length == raw.context_length
    # Remembered texts: a later call mixing seen and new texts, and one after the memo restarts, are exact too.
    tok = _DistinctTokenizer(raw)
    tok.memo_texts = 4
    tok(texts)
    for later in (["a ball", "a blue sphere", "a red cube"], ["one", "two", "three", "a ball", "a ball"], [],
                  ["1", "2", "3", "4", "5", "1"]):  # the last: more distinct texts than the memo holds
        assert torch.equal(tok(later), raw(later))
        assert len(tok._memo) <= tok.memo_texts
    # A cache-key part with no memory address in it (the wrapped tokenizer's repr): the same in every process.
    from lincir.models.tokenizers import standin_tokenizer

    by_id = standin_tokenizer(100, 16)
    assert repr(_DistinctTokenizer(by_id)) == repr(by_id) == repr(_DistinctTokenizer(standin_tokenizer(100, 16)))
    assert "0x" not in repr(_DistinctTokenizer(by_id)) and "ByIdTokenizer" in repr(_DistinctTokenizer(by_id))
