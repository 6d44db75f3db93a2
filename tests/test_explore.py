"""Notebook 06's library functions: the preset queries, the ground-truth frames and the explorer's initial state.

A small shapes-world benchmark (rendered in well under a second); no backbone is loaded.
"""
import numpy as np
import pytest
import torch

from lincir.errors import LincirError
from lincir.eval.world_benchmark import WorldBench
from lincir.experiments import examples as E
from lincir.report import display as D
from lincir.world.data import gallery, queries


@pytest.fixture(scope="module")
def bench():
    g = gallery(400, 0)
    return WorldBench(g, queries(120, 0, g), 0)


def test_presets_are_deterministic_and_one_per_kind(bench):
    a, b = E.presets(bench, 0), E.presets(bench, 0)
    assert list(a) == list(E.PRESET_KINDS)
    assert a == b
    assert [q.reference for q in E.presets(bench, 1).values()] != [q.reference for q in a.values()]


def test_each_preset_changes_exactly_its_attributes(bench):
    for kind, spec in E.presets(bench, 0).items():
        q = bench.queries[spec.reference]
        assert spec.text == q.text and spec.has_ground_truth
        assert q.target.differs_in(q.reference) == spec.changed  # the target differs in exactly these
        assert (len(spec.changed) == 2) if kind == "two attributes" else (spec.changed == (kind,))
        changed = {n for n in spec.target if spec.reference_attrs[n] != spec.target[n]}
        assert changed == set(spec.changed)
        # the ground truth is every gallery image showing the target
        assert list(spec.ground_truth) == [i for i, a in enumerate(bench.gallery.attrs) if a == q.target]


def test_first_hit_rank_counts_the_better_scores():
    scores = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.3])
    assert E.first_hit_rank(scores, [2]) == 3
    assert E.first_hit_rank(scores, [1, 3]) == 2
    assert E.first_hit_rank(scores, [0]) == 1


def test_ground_truth_frames_match_the_benchmark(bench):
    spec = E.presets(bench, 0)["colour"]
    gt = set(bench.queries[spec.reference].ground_truth.tolist())
    others = [i for i in range(len(bench.gallery)) if i not in gt][:3]
    ranked = {"image": others + sorted(gt)[:1], "lincir": sorted(gt)[:1] + others}
    result = E.SearchResult(spec.text, np.zeros((4, 4, 3), np.uint8), ranked,
                            {m: [1.0, 0.5, 0.2, 0.1] for m in ranked}, spec.ground_truth, {"image": 4, "lincir": 1})
    rows = D.search_rows(result, bench.gallery.images)
    assert [r["name"] for r in rows] == ["image", "lincir"]
    for r, (m, idx) in zip(rows, ranked.items()):
        assert r["hits"] == [i in gt for i in idx]
    assert rows[0]["hits"] == [False, False, False, True] and rows[1]["hits"][0]
    assert "ground truth" in D.query_title(spec, len(bench.gallery)) and D.describe(spec.target) in \
        D.query_title(spec, len(bench.gallery))
    text = D.query_summary(spec, result, 3, len(bench.gallery))
    assert "image alone at rank 4" in text and "LinCIR at rank 1" in text
    # a custom text: no ground truth, nothing framed, and the title says so
    custom = E.choose_query(bench, None, spec.reference, "is a heart instead and has a cyan colour")
    plain = E.SearchResult(custom.text, result.reference, ranked, result.scores)
    assert not custom.has_ground_truth and all(not any(r["hits"]) for r in D.search_rows(plain, bench.gallery.images))
    assert "no ground truth known" in D.query_title(custom, len(bench.gallery))
    assert "No ground truth is known" in D.query_summary(custom, plain, 3, len(bench.gallery))


def test_choose_query_from_the_parameters(bench):
    assert E.choose_query(bench, "size") == E.presets(bench)["size"]
    assert E.choose_query(bench, 1) == E.presets(bench)["colour"]
    own = E.choose_query(bench, None, 7)
    assert own.text == bench.queries[7].text and own.has_ground_truth
    assert E.choose_query(bench, None, 7, bench.queries[7].text).has_ground_truth
    f = E.choose_query(None, None, "/some/image.png", "is red")
    assert f.reference == "/some/image.png" and not f.has_ground_truth


@pytest.mark.parametrize("args, message", [
    (("nope",), "preset: 'nope' is not one of"), ((9,), "preset: index 9 out of range"),
    (("colour", 3), "preset: set preset = None"), ((None,), "reference: with preset = None"),
    ((None, 10_000), "reference: index 10000 out of range"), ((None, 3, "  "), "text: the modification text is empty"),
    ((None, "/x.png"), "text: an image-file reference needs"),
])
def test_choose_query_rejects_bad_parameters_in_one_line(bench, args, message):
    with pytest.raises(LincirError) as e:
        E.choose_query(bench, *args)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_explorer_starts_from_the_parameters(bench):
    names = E.presets(bench)
    preset = E.choose_query(bench, "position")
    assert D.explorer_state(preset, len(bench.queries), names) == {
        "preset": "position", "reference": preset.reference, "text": preset.text, "message": None}
    custom = E.choose_query(bench, None, 42, "is moved to the left")
    assert D.explorer_state(custom, len(bench.queries), names) == {
        "preset": "custom", "reference": 42, "text": "is moved to the left", "message": None}
    f = D.explorer_state(E.choose_query(None, None, "/x.png", "is red"), len(bench.queries), names)
    assert f["reference"] == 0 and f["text"] == "is red" and f["message"]


def test_explorer_widget_takes_its_initial_values_from_the_state(bench):
    pytest.importorskip("ipywidgets")
    names = E.presets(bench)
    state = D.explorer_state(E.choose_query(bench, "background"), len(bench.queries), names)
    panel = D.explorer(lambda r, t: None, len(bench.queries), state, names)
    (choice, ref), (text, _button) = panel.children[0].children, panel.children[1].children
    assert (choice.value, ref.value, text.value) == ("background", state["reference"], state["text"])
    choice.value = "shape"  # choosing a preset moves the slider and the text to it
    assert (ref.value, text.value) == (names["shape"].reference, names["shape"].text)
