"""Self-Masking Projection: keyword spans (spaCy, cached), the masking strategies and their fallbacks."""
import time
from types import SimpleNamespace

import numpy as np
import open_clip
import pytest

import lincir.data.keywords as keywords
from lincir.core.masking import (RANDOM_WORD_FALLBACK, STRATEGIES, TEMPLATE, TEMPLATE_FALLBACK, KeywordSpans,
    keyword_runs, placeholder_survives, replace_spans)
from lincir.data.keywords import extract_keyword_spans, mask_captions, mask_captions_with_info
from lincir.errors import LincirError
from lincir.storage import cache_dir

TOK = open_clip.get_tokenizer("ViT-B-32")
DOLLAR = TOK.encoder["$</w>"]
CHECK = dict(tokenize=TOK, placeholder_id=DOLLAR, context_length=77)

# A dozen cleaned, real-looking captions (CC3M-like and Stable Diffusion prompt-like) and their SMP masks.
EXPECTED = {
    "a man riding a horse on the beach at sunset": "$ riding $ on $ at $",
    "actor attends the premiere of the film in london": "$ attends $ of $ in $",
    "young woman in a red dress holding an umbrella while walking down the street.":
        "$ in $ holding $ while walking down $ .",
    "close-up of a dog's nose": "close- $ of $ 's $",  # the placeholder never touches punctuation
    "illustration of a cartoon cat (black and white)": "$ of $ ( $ and $ )",
    "the view from the top of the eiffel tower, paris": "$ from $ of $ , $",
    "a vintage car parked in front of an old house": "$ parked in $ of $",
    "portrait of a beautiful girl with long hair, digital art, trending on artstation":
        "$ of $ with $ , $ , trending on $",
    "2 people sitting on a bench": "2 $ sitting on $",
}
NO_KEYWORD = ["running fast", "she is smiling happily", "we did it!"]  # fallback: one random word


def test_placeholder_is_one_token():
    assert DOLLAR == 259
    assert TOK.encode("a photo of $")[-1] == DOLLAR


def test_keyword_runs_are_maximal():
    pos = ["DET", "ADJ", "NOUN", "VERB", "PROPN", "PUNCT", "DET", "NOUN"]
    starts = [0, 2, 6, 10, 16, 22, 24, 28]
    ends = [1, 5, 9, 15, 21, 23, 27, 33]
    assert keyword_runs(pos, starts, ends) == [(0, 9), (16, 21), (24, 33)]
    assert keyword_runs(pos, starts, ends, keep=["VERB"]) == [(10, 15)]
    assert keyword_runs([], [], []) == []


def test_replace_spans_keeps_placeholder_a_word():
    assert replace_spans("a dog's nose.", [(0, 5), (8, 12)]) == "$ 's $ ."
    assert replace_spans("red car", [(0, 7)]) == "$"
    assert replace_spans("(cat)", [(1, 4)]) == "( $ )"
    # Without the spaces CLIP's BPE merges "$" with punctuation and the placeholder is lost.
    assert DOLLAR not in TOK.encode("$'s $.")
    assert TOK.encode("$ 's $ .").count(DOLLAR) == 2


def test_smp_on_real_captions_and_fallbacks():
    caps = list(EXPECTED) + NO_KEYWORD
    res = mask_captions_with_info(caps, seed=0, **CHECK)
    assert res.texts[: len(EXPECTED)] == list(EXPECTED.values())
    assert res.how.tolist() == [0] * len(EXPECTED) + [RANDOM_WORD_FALLBACK] * len(NO_KEYWORD)
    for cap, text in zip(NO_KEYWORD, res.texts[len(EXPECTED):]):
        words, masked = cap.split(), text.split()
        assert len(words) == len(masked) and masked.count("$") == 1
        assert [w for w, m in zip(words, masked) if m != "$"] == [m for m in masked if m != "$"]
    # Deterministic for a seed; the random word varies with the seed.
    assert mask_captions(caps, seed=0, **CHECK) == res.texts
    picks = {mask_captions(["she is smiling happily"], seed=s, **CHECK)[0] for s in range(20)}
    assert len(picks) > 1
    assert mask_captions(caps, seed=np.random.default_rng(3), **CHECK) == mask_captions(caps, seed=3, **CHECK)


def test_spans_match_a_direct_spacy_reference():
    caps = list(EXPECTED) + NO_KEYWORD
    spans = extract_keyword_spans(caps, use_cache=False)
    nlp = keywords.load_spacy()
    for i, doc in enumerate(nlp.pipe(caps)):
        ref, run = [], ""
        for tok in doc:  # reference: the authors' loop, joining with the caption's own whitespace
            if tok.pos_ in ("NOUN", "PROPN", "ADJ", "DET"):
                run += tok.text_with_ws
            elif run:
                ref.append(run.strip())
                run = ""
        if run:
            ref.append(run.strip())
        assert [caps[i][s:e] for s, e in spans[i]] == ref


# Sentences where the dependency parse changes the tag: the model's attribute_ruler turns a determiner that is
# not the `det` of a noun into PRON ("these are ...", "each of ...", "i like that"), so it is not masked.
PARSE_DEPENDENT = {
    "these are the best shoes": "these are $",
    "each of the cats sleeps on a mat": "each of $ sleeps on $",
    "i like that": "i like that",  # no keyword left: the caption takes the random-word fallback
    "all of them are here": "all of them are here",
    "a man holding this": "$ holding this",
    "both are smiling at the camera": "both are smiling at $",
    "that dog is brown": "$ is $",  # the same words as determiners stay keywords
    "these shoes are red and each lace is white": "$ are $ and $ is $",
}


def _full_pipeline_pos(captions):
    import spacy

    full = spacy.load(keywords.SPACY_MODEL)  # every component, as the model ships
    return [[(t.idx, t.pos_) for t in doc] for doc in full.pipe(captions)]


def test_tags_equal_the_full_pipeline_where_the_parse_matters():
    caps = list(PARSE_DEPENDENT)
    nlp = keywords.load_spacy()
    assert "parser" in nlp.pipe_names and "attribute_ruler" in nlp.pipe_names
    assert [[(t.idx, t.pos_) for t in doc] for doc in nlp.pipe(caps)] == _full_pipeline_pos(caps)
    spans = extract_keyword_spans(caps, use_cache=False)
    for i, (cap, want) in enumerate(PARSE_DEPENDENT.items()):
        if "$" in want:
            assert replace_spans(cap, spans[i]) == want, cap
        else:
            assert len(spans[i]) == 0, cap
    # Without the parser the tags differ on exactly these words (the bug this guards against).
    import spacy

    no_parser = spacy.load(keywords.SPACY_MODEL, exclude=["parser", "ner", "lemmatizer"])
    assert [[t.pos_ for t in d] for d in no_parser.pipe(caps[:2])] != [[p for _, p in d] for d in _full_pipeline_pos(caps[:2])]


def test_tags_equal_the_full_pipeline_on_a_varied_corpus():
    from lincir.speed.captions import realistic_captions
    from lincir.world.data import train_captions

    caps = list(EXPECTED) + NO_KEYWORD + list(PARSE_DEPENDENT) + realistic_captions(300, seed=5) + train_captions(100, seed=2)
    nlp = keywords.load_spacy()
    assert [[(t.idx, t.pos_) for t in doc] for doc in nlp.pipe(caps)] == _full_pipeline_pos(caps)


def test_cache_key_names_the_parsed_pipeline():
    assert keywords._CACHE_FORMAT == "keyword-spans-v3" and "parser" not in keywords._SPACY_EXCLUDE


def test_placeholder_lost_to_truncation_gives_template():
    caps = ["one two three four five", "we were running and jumping over the fence", "one two three big"]
    spans = KeywordSpans.from_lists([[(19, 23)], [(33, 42)], [(14, 17)]])
    short = dict(tokenize=lambda t: TOK(t, context_length=6), placeholder_id=DOLLAR, context_length=6)
    res = mask_captions_with_info(caps, spans=spans, **short)
    # [SOT one two three four $ EOT] is 7 tokens: cut to 6, "$" is overwritten by EOT.
    assert res.texts == [TEMPLATE, TEMPLATE, "one two three $"]
    assert res.how.tolist() == [TEMPLATE_FALLBACK, TEMPLATE_FALLBACK, 0]
    # The same check through a backbone-like object, with the context length cut outside the tokenizer.
    bb = SimpleNamespace(tokenize=TOK, placeholder_id=DOLLAR, context_length=4)
    assert mask_captions(caps, spans=spans, backbone=bb) == [TEMPLATE, TEMPLATE, TEMPLATE]


def test_survival_shortcut_matches_tokenizing_everything():
    texts = list(EXPECTED.values()) + [TEMPLATE, "$", "no placeholder here", "$5 off", "caf\u00e9 $", "a " * 40 + "$"]
    for ctx in (77, 8):
        tokenize = lambda t, ctx=ctx: TOK(t, context_length=ctx)  # noqa: E731
        ref = (tokenize(texts) == DOLLAR).any(1).numpy()
        assert placeholder_survives(texts, tokenize, DOLLAR, ctx, batch_size=3).tolist() == ref.tolist()
    assert not ref.all() and ref.any()


def test_ablation_strategies():
    caps = ["a red car on a road", "running fast"]
    assert set(STRATEGIES) == {"keywords", "keywords-authors", "template", "random_word", "whole_caption"}
    assert mask_captions(caps, "template", **CHECK) == [TEMPLATE, TEMPLATE]
    assert mask_captions(caps, "whole_caption", **CHECK) == ["$", "$"]
    rw = mask_captions(caps, "random_word", seed=1, **CHECK)
    assert [t.split().count("$") for t in rw] == [1, 1]
    assert rw == mask_captions(caps, "random_word", seed=1, **CHECK)


def test_bad_inputs():
    with pytest.raises(LincirError, match="strategy"):
        mask_captions(["a cat"], "nouns_only", **CHECK)
    with pytest.raises(LincirError, match="caption 1"):
        mask_captions(["a cat", "a $ sign"], "template", **CHECK)
    with pytest.raises(LincirError, match="spans"):
        mask_captions(["a cat", "a dog"], spans=KeywordSpans.from_lists([[(0, 5)]]), **CHECK)
    with pytest.raises(TypeError):
        mask_captions(["a cat"], "template")


def test_cache_roundtrip_chunks_and_key(monkeypatch):
    caps = list(EXPECTED) + NO_KEYWORD  # 12 captions
    monkeypatch.setattr(keywords, "CHUNK", 5)  # 3 chunk files: 5 + 5 + 2
    tagged = []
    real_tag = keywords._tag_spans
    monkeypatch.setattr(keywords, "_tag_spans", lambda c, *a: tagged.append(len(c)) or real_tag(c, *a))

    first = extract_keyword_spans(caps)
    files = sorted(cache_dir("keywords").glob("*.npz"))
    assert tagged == [5, 5, 2] and len(files) == 3
    ref = extract_keyword_spans(caps, use_cache=False)
    assert np.array_equal(first.indptr, ref.indptr) and np.array_equal(first.offsets, ref.offsets)

    tagged.clear()
    again = extract_keyword_spans(caps)
    assert tagged == []  # all from the cache
    assert np.array_equal(again.indptr, ref.indptr) and np.array_equal(again.offsets, ref.offsets)

    files[0].write_bytes(b"garbage")  # a broken chunk is recomputed, the others are reused
    extract_keyword_spans(caps)
    assert len(tagged) == 1

    tagged.clear()
    extract_keyword_spans(caps, keyword_pos=("NOUN",))  # other settings, other keys
    assert tagged == [5, 5, 2]
    tagged.clear()
    extract_keyword_spans(caps[:-1] + ["a changed caption"])  # only the changed chunk is recomputed
    assert tagged == [2]


def test_cache_read_is_much_faster_than_spacy():
    base = list(EXPECTED) + NO_KEYWORD
    caps = [f"{c} number {i}" for i in range(25) for c in base]  # 300 distinct captions
    t0 = time.perf_counter()
    extract_keyword_spans(caps)
    t_spacy = time.perf_counter() - t0
    t0 = time.perf_counter()
    extract_keyword_spans(caps)
    t_cache = time.perf_counter() - t0
    assert t_cache * 5 < t_spacy, (t_spacy, t_cache)
