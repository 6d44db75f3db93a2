"""Ranking files, submissions and benchmark annotations a hostile user could write: every one either reads as a
reference reading says, or ends in one line naming the file; never a traceback. Hypothesis generates the inputs.
"""
from __future__ import annotations

import json
from pathlib import Path

import bench_fixtures as F
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_bad_inputs import one_line_error, score_args

from lincir.errors import LincirError
from lincir.eval.benchmarks import load_benchmark
from lincir.eval.submissions import check_submission
from lincir.storage import MAX_JSON_DEPTH, read_json

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("data")
    return {name: make(base) for name, make in F.MAKERS.items()}


def check_submission_args(bench: str, root: Path, file: Path, split: str) -> list:
    return ["check-submission", "--benchmark", bench, "--data-root", root, "--split", split, file]


# ------------------------------------------------------------------------------ JSON beyond our limits

HOSTILE_JSON = {  # name: (the file's text, what the line must say)
    "5,000-digit integer": ('{"0": [' + "9" * 5000 + '], "1": [103]}', "5000 digits"),
    "deeply nested array": ('{"0": ' + "[" * 100_000 + "]" * 100_000 + ', "1": [103]}', "nested deeper"),
    "moderately nested array": ('{"0": ' + "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5) + "}",
                                "nested deeper"),
    "unicode digit as an id": ('{"0": ["\u00b2", 103], "1": [103]}', "'\u00b2'"),
    "superscript digits as an id": ('{"0": ["1\u00b2\u00b3"], "1": [103]}', "image ids"),
    "nested lists where ids belong": ('{"0": [[102, 103], [104]], "1": [103]}', "[102, 103]"),
    "an object where an id belongs": ('{"0": [{"id": 102}], "1": [103]}', "image ids"),
    "a float id": ('{"0": [102.0], "1": [103]}', "102.0"),
    "a boolean id": ('{"0": [true], "1": [103]}', "True"),
    "an id beyond 64 bits": ('{"0": [99999999999999999999], "1": [103]}', "image ids"),
    "UTF-16 file": (None, "UTF-16"),
    "NaN literal": ('{"0": [NaN], "1": [103]}', "NaN"),
}


@pytest.mark.parametrize("case", list(HOSTILE_JSON))
def test_hostile_ranking_json(tmp_path, capsys, roots, case):
    text, needle = HOSTILE_JSON[case]
    path = tmp_path / "ranks.json"
    if text is None:
        path.write_bytes('{"0": [102], "1": [103]}'.encode("utf-16"))
    else:
        path.write_text(text, encoding="utf-8")
    one_line_error(score_args("circo", roots["circo"], file=path), capsys, "ranks.json", needle)


@pytest.mark.parametrize("case", ["5,000-digit integer", "deeply nested array", "unicode digit as an id",
                                  "nested lists where ids belong"])
def test_hostile_submission_json(tmp_path, capsys, roots, case):
    """check-submission: the JSON layer refuses in one line, or the checker lists the problem (exit 1)."""
    text, _ = HOSTILE_JSON[case]
    path = tmp_path / "sub.json"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    from lincir.cli import main

    code = main([str(a) for a in check_submission_args("circo", roots["circo"], path, "test")])
    out = capsys.readouterr()
    assert code in (1, 2) and "Traceback" not in out.err + out.out
    if code == 2:
        assert len(out.err.strip().splitlines()) == 1 and "sub.json" in out.err


def test_cirr_submission_with_nested_lists(tmp_path, capsys, roots):
    path = tmp_path / "recall.json"
    path.write_text(json.dumps({"version": "rc2", "metric": "recall", "200": [["a"]], "201": [{"x": 1}]}))
    from lincir.cli import main

    capsys.readouterr()
    assert main([str(a) for a in check_submission_args("cirr", roots["cirr"], path, "test1")]) == 1
    out = capsys.readouterr().out
    assert "['a']" in out and "FAILED" in out


# ------------------------------------------------------------------------------ annotations

ANNOTATION_CASES = {  # (benchmark, file, edit of the first record, needle)
    "circo aspects a number": ("circo", "annotations/val.json", {"semantic_aspects": 3}, "semantic_aspects"),
    "circo aspects a string": ("circo", "annotations/val.json", {"semantic_aspects": "cardinality"},
                               "semantic_aspects"),
    "circo aspects a list of lists": ("circo", "annotations/val.json", {"semantic_aspects": [["a"]]},
                                      "semantic_aspects"),
    "genecis box of zero width": ("genecis", "genecis/focus_attribute.json",
                                  {"reference": {"image_id": 7, "instance_bbox": [1, 1, 0, 5]}}, "instance_bbox"),
    "genecis box with a negative corner": ("genecis", "genecis/change_attribute.json",
                                           {"target": {"image_id": 8, "instance_bbox": [-4, 0, 5, 5]}},
                                           "instance_bbox"),
    "genecis box of three numbers": ("genecis", "genecis/change_attribute.json",
                                     {"target": {"image_id": 8, "instance_bbox": [0, 0, 5]}}, "instance_bbox"),
    "circo huge id": ("circo", "annotations/val.json", {"reference_img_id": 10 ** 30}, "digits"),
}


@pytest.mark.parametrize("case", list(ANNOTATION_CASES))
def test_hostile_annotations(tmp_path, capsys, case):
    bench, rel, edit, needle = ANNOTATION_CASES[case]
    root = F.MAKERS[bench](tmp_path / "data")
    path = root / rel
    records = json.loads(path.read_text())
    records[0].update(edit)
    path.write_text(json.dumps(records))
    one_line_error(score_args(bench, root), capsys, path.name, needle)


def test_circo_aspects_are_names_not_letters(tmp_path):
    """A list of aspects scores each aspect once; the per-aspect keys are the names the file gives."""
    bench = load_benchmark("circo", F.make_circo(tmp_path / "data"), "val")
    ranked = {"circo": [[0, 1], [4, 5]]}
    keys = {k for k in bench.metrics(ranked) if k.startswith("mAP@10/")}
    assert keys == {"mAP@10/cardinality", "mAP@10/addition"}


# ------------------------------------------------------------------------------ property-based: the parsers

SCALARS = st.one_of(st.integers(-10, 200), st.integers(), st.booleans(), st.none(),
                    st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from(["102", " 103 ", "\u00b2", "1e2", "", "104", "0x66", "dev-0-0-img0",
                                     "dev-1-0-img1", "dev-5-0-img1"]),
                    st.text(max_size=6))
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=3), inner, max_size=3), max_leaves=12)


def _id(x):
    """The reference reading of a CIRCO id: JSON integers and ASCII decimal strings, within 64 bits."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x if abs(x) < 2 ** 63 else None
    if isinstance(x, str) and x.strip() and all("0" <= c <= "9" for c in x.strip()) and len(x.strip()) <= 19:
        return int(x.strip())
    return None


def reference_circo(obj, bench):
    """What a CIRCO ranking file means, written independently of the reader; None: it must be refused."""
    part = bench.parts[0]
    if not isinstance(obj, dict) or any(q.qid not in obj for q in part.queries):
        return None
    index = {ref.key: i for i, ref in enumerate(part.gallery)}
    out = []
    for q in part.queries:
        value = obj[q.qid]
        if not isinstance(value, list):
            return None
        ids = [_id(x) for x in value]
        if any(i is None for i in ids) or any(str(i) not in index for i in ids) or len(set(ids)) != len(ids):
            return None
        out.append([index[str(i)] for i in ids])
    return {part.name: out}


def _write(tmp_path: Path, obj) -> Path:
    path = tmp_path / "gen.json"
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _json_refuses(obj) -> bool:
    """What the JSON layer refuses, by its stated limits: integers of more than 20 digits."""
    if isinstance(obj, bool):
        return False
    if isinstance(obj, int):
        return len(str(abs(obj))) > 20
    if isinstance(obj, dict):
        return any(_json_refuses(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_json_refuses(v) for v in obj)
    return False


def _agrees(read, expected, path: Path):
    """The reader's result equals the reference, or it raised one LincirError line naming the file."""
    try:
        got = read()
    except LincirError as e:
        assert expected is None, f"refused a valid input: {e}"
        assert "\n" not in str(e) and path.name in str(e)
        return
    assert got == expected


ID_LISTS = st.lists(st.one_of(st.sampled_from(F.CIRCO_IDS), st.sampled_from([str(i) for i in F.CIRCO_IDS]),
                              JSON_VALUES), max_size=6)


@SETTINGS
@given(lists=st.dictionaries(st.sampled_from(["0", "1", "2", "x"]), ID_LISTS, max_size=4))
def test_circo_ranking_parser_property(tmp_path_factory, roots, lists):
    tmp = tmp_path_factory.mktemp("p")
    bench = load_benchmark("circo", roots["circo"], "val")
    path = _write(tmp, lists)
    expected = None if _json_refuses(lists) else reference_circo(lists, bench)
    _agrees(lambda: bench.read_ranking_file(read_json(path), str(path)), expected, path)


def reference_cirr(obj, bench):
    part = bench.parts[0]
    if not isinstance(obj, dict) or any(q.qid not in obj for q in part.queries):
        return None
    if obj.get("version", "rc2") != "rc2" or obj.get("metric", "recall") != "recall":
        return None
    index = {ref.key: i for i, ref in enumerate(part.gallery)}
    out = []
    for q in part.queries:
        value = obj[q.qid]
        if not isinstance(value, list) or not all(isinstance(x, str) and x in index for x in value):
            return None
        if len(set(value)) != len(value):
            return None
        out.append([index[x] for x in value])
    return {part.name: out}


NAMES = st.lists(st.one_of(st.sampled_from([F.cirr_name("val", i) for i in range(8)]), JSON_VALUES), max_size=5)


@SETTINGS
@given(lists=st.dictionaries(st.sampled_from(["100", "101", "102", "version", "metric"]),
                             st.one_of(NAMES, st.sampled_from(["rc2", "recall", "rc1"])), max_size=5))
def test_cirr_ranking_parser_property(tmp_path_factory, roots, lists):
    tmp = tmp_path_factory.mktemp("p")
    bench = load_benchmark("cirr", roots["cirr"], "val")
    path = _write(tmp, lists)
    expected = None if _json_refuses(lists) else reference_cirr(lists, bench)
    _agrees(lambda: bench.read_ranking_file(read_json(path), str(path)), expected, path)


def reference_circo_submission_ok(obj, bench) -> bool:
    part = bench.parts[0]
    qids = [q.qid for q in part.queries]
    if not isinstance(obj, dict) or set(obj) != set(qids):
        return False
    n = min(50, len(part.gallery))
    for q in qids:
        value = obj[q]
        if not isinstance(value, list) or len(value) != n:
            return False
        ids = [_id(x) for x in value]
        if any(i is None or str(i) not in part.index() for i in ids) or len(set(ids)) != len(ids):
            return False
    return True


@SETTINGS
@given(obj=st.one_of(
    JSON_VALUES,
    st.dictionaries(st.sampled_from(["0", "1", "2", "3"]),
                    st.one_of(st.permutations(F.CIRCO_IDS), st.permutations([str(i) for i in F.CIRCO_IDS]),
                              ID_LISTS), max_size=4)))
def test_circo_submission_checker_property(tmp_path_factory, roots, obj):
    """The checker never raises; it passes exactly the files a reference check passes."""
    bench = load_benchmark("circo", roots["circo"], "test")
    report = check_submission(bench, obj)
    assert report.ok == reference_circo_submission_ok(obj, bench), report.problems


RECORD_FIELDS = {
    "id": st.one_of(st.just(0), JSON_VALUES),
    "reference_img_id": st.one_of(st.sampled_from(F.CIRCO_IDS), JSON_VALUES),
    "relative_caption": st.one_of(st.just("has more"), JSON_VALUES),
    "target_img_id": st.one_of(st.just(102), JSON_VALUES),
    "gt_img_ids": st.one_of(st.just([102, 103]), st.lists(st.sampled_from(F.CIRCO_IDS), max_size=3), JSON_VALUES),
    "semantic_aspects": st.one_of(st.just(["cardinality"]), st.none(), JSON_VALUES),
}


def reference_circo_record(rec, ids):
    """(targets as image ids, aspects) of one val record, or None where the loader must refuse it."""
    def is_int(v):
        return isinstance(v, int) and not isinstance(v, bool)

    if not isinstance(rec, dict) or not all(k in rec for k in RECORD_FIELDS if k != "semantic_aspects"):
        return None
    if not is_int(rec["id"]) or rec["id"] != 0 or not is_int(rec["reference_img_id"]):
        return None
    if rec["reference_img_id"] not in ids or not isinstance(rec["relative_caption"], str):
        return None
    gt, target = rec["gt_img_ids"], rec["target_img_id"]
    if not is_int(target) or not isinstance(gt, list) or not all(is_int(g) for g in gt):
        return None
    if not gt or gt[0] != target or any(g not in ids for g in gt):
        return None
    aspects = rec.get("semantic_aspects")
    if aspects is None:
        aspects = []
    elif not isinstance(aspects, list) or not all(isinstance(a, str) and a for a in aspects):
        return None
    return tuple(gt), aspects


@SETTINGS
@given(record=st.one_of(st.fixed_dictionaries(RECORD_FIELDS), JSON_VALUES))
def test_circo_annotation_parser_property(tmp_path_factory, record):
    root = F.make_circo(tmp_path_factory.mktemp("circo"))
    path = root / "annotations" / "val.json"
    path.write_text(json.dumps([record]))
    expected = None if _json_refuses(record) else reference_circo_record(record, set(F.CIRCO_IDS))
    try:
        bench = load_benchmark("circo", root, "val")
    except LincirError as e:
        assert expected is None, f"refused a valid record: {e}"
        assert "\n" not in str(e) and "val.json" in str(e)
        return
    assert expected is not None, f"accepted {record!r}"
    part = bench.parts[0]
    gts, aspects = expected
    assert tuple(int(part.gallery[t].key) for t in part.queries[0].targets) == gts
    assert bench.aspects == [aspects]
