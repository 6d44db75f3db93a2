"""Caption corpora: each format, cleaning, truncation to the context length, and one-line errors for bad files."""
import gzip

import open_clip
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lincir.data.corpus import TokenCounter, clean_caption, read_captions, truncate_caption
from lincir.errors import LincirError
from lincir.storage import sha256_text

TOK = open_clip.get_tokenizer("ViT-B-32")


def n_tokens(text: str) -> int:
    return len(TOK.encode(text))


def assert_one_line_error(excinfo, *needles):
    msg = str(excinfo.value)
    assert "\n" not in msg
    for needle in needles:
        assert needle in msg, msg


def test_clean_caption_as_authors():
    assert clean_caption("  A $5 Red\tCar <PERSON> at   the\r\nBeach  ") == "a 5 red car person at the beach"
    assert clean_caption("$$ $") == ""


def test_txt_skips_and_counts_empty(tmp_path):
    p = tmp_path / "caps.txt"
    p.write_bytes("\ufeffA Dog on the Beach\r\n\n   \n$$\nthe $ red car\n".encode("utf-8"))
    c = read_captions(p)
    assert c.captions == ["a dog on the beach", "the red car"]
    assert c.n_skipped_empty == 3
    assert c.source == p
    assert c.sha256 == sha256_text(*c.captions)
    assert len(c) == 2


def test_gzipped_txt(tmp_path):
    p = tmp_path / "caps.txt.gz"
    with gzip.open(p, "wt", encoding="utf-8") as fh:
        fh.write("one\ntwo\n")
    assert read_captions(p).captions == ["one", "two"]


def test_cc3m_tsv_and_header(tmp_path):
    p = tmp_path / "Train_GCC-training.tsv"
    p.write_text("caption\turl\nA Bird on a branch\thttp://x/1.jpg\n\nactor at the premiere\thttp://x/2.jpg\n")
    c = read_captions(p)
    assert c.captions == ["a bird on a branch", "actor at the premiere"]
    assert c.n_skipped_empty == 1


def test_tsv_wrong_column_count_names_line(tmp_path):
    p = tmp_path / "cc3m.tsv"
    p.write_text("a bird\thttp://x/1.jpg\na cat\thttp://x/2.jpg\textra\n")
    with pytest.raises(LincirError) as e:
        read_captions(p)
    assert_one_line_error(e, f"{p}:2", "found 3")


def test_headed_tsv_with_column(tmp_path):
    p = tmp_path / "cc12m.tsv"
    p.write_text("url\ttext\nhttp://x/1.jpg\tA Photo of <PERSON>\n")
    assert read_captions(p, column="text").captions == ["a photo of person"]


def test_csv_named_column_quotes_and_defaults(tmp_path):
    p = tmp_path / "prompts.csv"
    p.write_text('id,text,score\n1,"Castle, at night",0.5\n2,"two\nlines",0.1\n3,,0.2\n')
    c = read_captions(p)  # "text" found by default
    assert c.captions == ["castle, at night", "two lines"]
    assert c.n_skipped_empty == 1
    assert read_captions(p, column="score").captions == ["0.5", "0.1", "0.2"]


def test_csv_missing_column_and_bad_row(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("id,desc\n1,a cat\n")
    with pytest.raises(LincirError) as e:
        read_captions(p, column="caption")
    assert_one_line_error(e, str(p), "'caption'", "desc")
    with pytest.raises(LincirError) as e:
        read_captions(p)  # two columns, none of the default names
    assert_one_line_error(e, str(p), "column=")
    for name in ("prompt", "Prompt"):  # the prompt datasets' usual column names are found without column=
        r = tmp_path / f"{name}.csv"
        r.write_text(f"id,{name}\n1,A Cat\n")
        assert read_captions(r).captions == ["a cat"]
    q = tmp_path / "y.csv"
    q.write_text("caption,url\na cat,u1\na dog,u2,u3\n")
    with pytest.raises(LincirError) as e:
        read_captions(q)
    assert_one_line_error(e, f"{q}:3", "expected 2 fields")


def test_parquet(tmp_path):
    p = tmp_path / "sd.parquet"
    pq.write_table(pa.table({"text": ["A Castle", None, "", "$"], "n": [1, 2, 3, 4]}), p)
    c = read_captions(p)
    assert c.captions == ["a castle"] and c.n_skipped_empty == 3
    with pytest.raises(LincirError) as e:
        read_captions(p, column="prompt")
    assert_one_line_error(e, str(p), "'prompt'", "text")
    with pytest.raises(LincirError) as e:
        read_captions(p, column="n")
    assert_one_line_error(e, str(p), "not text")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"this is not parquet at all")
    with pytest.raises(LincirError) as e:
        read_captions(bad)
    assert_one_line_error(e, str(bad), "not a Parquet file")


@pytest.mark.parametrize(
    "name, data, needles",
    [
        ("empty.txt", b"", ["empty file"]),
        ("empty.csv", b"", ["empty file"]),
        ("bin.txt", b"a cat\n\x89PNG\x00\x01\x02\n", [":2", "binary"]),
        ("latin1.txt", "a caf\u00e9\nna\u00efve\n".encode("latin-1"), [":1", "not UTF-8"]),
        ("blank.txt", b"\n  \n$\n", ["every caption is empty", "3 records"]),
        ("onefield.tsv", b"a cat\n", [":1", "found 1"]),
        ("noext", b"a cat\n", ["fmt="]),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, name, data, needles):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LincirError) as e:
        read_captions(p)
    assert_one_line_error(e, str(p), *needles)


def test_missing_file_and_bad_options(tmp_path):
    with pytest.raises(LincirError) as e:
        read_captions(tmp_path / "nope.txt")
    assert_one_line_error(e, "not found")
    p = tmp_path / "a.txt"
    p.write_text("a cat\n")
    with pytest.raises(LincirError) as e:
        read_captions(p, fmt="json")
    assert_one_line_error(e, "fmt")
    with pytest.raises(LincirError) as e:
        read_captions(p, column="caption")
    assert_one_line_error(e, "column", str(p))


def test_truncation_fits_the_context_and_keeps_whole_words(tmp_path):
    words = [f"w{i}ord{'x' * (i % 5)}" for i in range(200)]  # multi-token words
    long = " ".join(words)
    p = tmp_path / "long.txt"
    p.write_text(f"a short one\n{long}\nnaïve café 😀\n")
    for ctx in (77, 16):
        c = read_captions(p, context_length=ctx)
        assert c.n_truncated == 1
        cut = c.captions[1]
        kept = cut.split(" ")
        assert kept == words[: len(kept)]  # a prefix of whole words
        assert n_tokens(cut) <= ctx - 2 < n_tokens(cut + " " + words[len(kept)])  # the longest that fits
        assert TOK([cut], context_length=ctx)[0, -1] in (0, TOK.eot_token_id)  # nothing cut by the tokenizer
        assert c.captions[0] == "a short one" and c.captions[2] == "naïve café 😀"


def test_truncation_of_one_overlong_word():
    counter = TokenCounter(TOK)
    word = "qzx" * 60
    cut = truncate_caption(word + " cat", 10, counter)
    assert word.startswith(cut) and counter.count(cut) <= 10 < counter.count(word[: len(cut) + 1])
    assert truncate_caption("a red car", 10, counter) == "a red car"


class _PlainEncoder:
    """A tokenizer with only `.encode`: the slow path must give the same answers."""

    def encode(self, text):
        return TOK.encode(text)


def test_per_word_counts_match_the_tokenizer():
    counter = TokenCounter(TOK)
    caps = ["a dog's nose, 8k (octane render)!!", "naïve café 😀 at 10:30pm", "rock&amp;roll <start_of_text> ok",
            "don't stop... the u.s.a. flag", "x", "bell\x07 ring\x1b[31m red", "Upper Case WORDS"]
    for cap in caps:
        counts = counter.per_word(cap)
        assert counts is not None and len(counts) == len(cap.split(" "))
        assert counts == [n_tokens(w) for w in cap.split(" ")] and sum(counts) == n_tokens(cap)
    assert counter.per_word("a&nbsp;b c") is None  # normalisation adds a word: no per-word answer
    slow = TokenCounter(_PlainEncoder())
    long = " ".join(caps * 6)
    assert truncate_caption(long, 20, slow) == truncate_caption(long, 20, counter)
    assert n_tokens(truncate_caption(long, 20, counter)) <= 20
