"""Test-server files: `lincir submit` writes them (checked), `lincir check-submission` catches bad ones."""
import json

import bench_fixtures as F
import pytest

from lincir.cli import main
from lincir.eval.benchmarks import load_benchmark
from lincir.eval.submissions import check_submission, circo_submission, cirr_submission


def submit(root, bench, out):
    return main(["submit", "--benchmark", bench, "--data-root", str(root), "--backbone", "shapes-clip",
                 "--weights", "random", "--method", "image+text", "--out", str(out), "--quiet"])


def check(root, bench, path, capsys):
    rc = main(["check-submission", "--benchmark", bench, "--data-root", str(root), str(path)])
    return rc, capsys.readouterr()


def test_submit_cirr_writes_two_checked_files(tmp_path, capsys):
    root = F.make_cirr(tmp_path / "data")
    before = F.snapshot(root)
    assert submit(root, "cirr", tmp_path / "sub") == 0
    recall = json.loads((tmp_path / "sub" / "lincir_cirr_test1_recall.json").read_text())
    subset = json.loads((tmp_path / "sub" / "lincir_cirr_test1_recall_subset.json").read_text())
    assert (recall["version"], recall["metric"], subset["metric"]) == ("rc2", "recall", "recall_subset")
    names = [F.cirr_name("test1", i) for i in range(7)]
    for pairid, ref, _, members in F.CIRR_TEST:
        listed = recall[str(pairid)]
        assert len(listed) == 6 and names[ref] not in listed and set(listed) <= set(names)  # 7 images - ref
        top3 = subset[str(pairid)]
        assert len(top3) == 3 and set(top3) <= {names[m] for m in members} - {names[ref]}
        assert top3 == [n for n in listed if n in set(names[m] for m in members)][:3]  # global order kept
    for name in ("lincir_cirr_test1_recall.json", "lincir_cirr_test1_recall_subset.json"):
        rc, out = check(root, "cirr", tmp_path / "sub" / name, capsys)
        assert rc == 0 and "OK" in out.out
    assert F.snapshot(root) == before


def test_submit_circo_writes_a_checked_file(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    assert submit(root, "circo", tmp_path / "sub") == 0
    sub = json.loads((tmp_path / "sub" / "lincir_circo_test.json").read_text())
    assert sorted(sub) == ["0", "1", "2"]
    assert all(len(v) == 12 and len(set(v)) == 12 and all(isinstance(i, int) for i in v) for v in sub.values())
    rc, out = check(root, "circo", tmp_path / "sub" / "lincir_circo_test.json", capsys)
    assert rc == 0 and "OK" in out.out


def test_submission_writers_on_hand_rankings(tmp_path):
    root = F.make_cirr(tmp_path)
    b = load_benchmark("cirr", root, "test1")
    # query 200: reference 0, members 1..5; query 201: reference 6, members 1..5
    rankings = {"cirr": [[0, 6, 5, 1, 2, 3, 4], [2, 0, 1, 3, 4, 5]]}
    recall, subset = cirr_submission(b, rankings)
    n = lambda *i: [F.cirr_name("test1", j) for j in i]
    assert recall["200"] == n(6, 5, 1, 2, 3, 4) and subset["200"] == n(5, 1, 2)
    assert recall["201"] == n(2, 0, 1, 3, 4, 5) and subset["201"] == n(2, 1, 3)
    c = load_benchmark("circo", F.make_circo(tmp_path), "test")
    out = circo_submission(c, {"circo": [list(range(12)), list(range(11, -1, -1)), list(range(12))]})
    assert out["1"][:3] == [112, 111, 110]


def _valid(tmp_path):
    root = F.make_cirr(tmp_path / "data")
    b = load_benchmark("cirr", root, "test1")
    return root, b, cirr_submission(b, {"cirr": [[1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5]]})


@pytest.mark.parametrize("edit,problem", [
    (lambda r, s: r.pop("201"), "1 of 2 CIRR test1 pairids missing"),
    (lambda r, s: r.update({"999": r["200"]}), "keys are not CIRR test1 pairids"),
    (lambda r, s: r.update(version="rc1"), "'version' must be \"rc2\""),
    (lambda r, s: r["200"].pop(), "pairid 200: 5 entries, expected 6"),
    (lambda r, s: r["200"].__setitem__(1, r["200"][0]), "is listed twice"),
    (lambda r, s: r["200"].__setitem__(0, "dev-1-0-img1"), "'dev-1-0-img1' is not a CIRR test1 image name"),
])
def test_checker_catches_cirr_recall_problems(tmp_path, capsys, edit, problem):
    root, b, (recall, subset) = _valid(tmp_path)
    edit(recall, subset)
    path = tmp_path / "recall.json"
    path.write_text(json.dumps(recall))
    rc, out = check(root, "cirr", path, capsys)
    assert rc == 1 and problem in out.out and "FAILED" in out.out


def test_checker_catches_cirr_subset_problems(tmp_path, capsys):
    root, b, (recall, subset) = _valid(tmp_path)
    subset["200"] = [F.cirr_name("test1", 0)] + subset["200"][:2]  # the reference is not a candidate
    subset["201"] = subset["201"] + subset["201"][:1]  # 4 entries
    report = check_submission(b, subset)
    assert not report.ok and len(report.problems) == 3  # non-member, too long, duplicate
    assert "is not an img_set member" in report.problems[0]


def test_checker_warns_on_reference_in_recall_list(tmp_path):
    root, b, (recall, subset) = _valid(tmp_path)
    recall["200"] = [F.cirr_name("test1", 0)] + recall["200"][:5]
    report = check_submission(b, recall)
    assert report.ok and "own reference image" in report.warnings[0]


def test_checker_circo(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    good = {str(q): F.CIRCO_IDS[::-1] for q in range(3)}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({**good, "1": [str(i) for i in F.CIRCO_IDS]}))
    rc, out = check(root, "circo", path, capsys)
    assert rc == 0 and "as strings" in out.err  # the server casts with int(): a warning only
    bad = {**good, "0": F.CIRCO_IDS[:11] + [5], "2": F.CIRCO_IDS[:11] + [101], "x": []}
    path.write_text(json.dumps(bad))
    rc, out = check(root, "circo", path, capsys)
    assert rc == 1
    for problem in ("keys are not CIRCO test query ids", "query 0: 5 is not a COCO 2017 unlabeled image id",
                    "query 2: 101 is listed twice"):
        assert problem in out.out
    path.write_text("[1, 2]")
    rc, out = check(root, "circo", path, capsys)
    assert rc == 1 and "expected a JSON object" in out.out


def test_submit_refuses_other_benchmarks(tmp_path, capsys):
    root = F.make_genecis(tmp_path)
    assert submit(root, "genecis", tmp_path / "sub") == 2
    assert "cirr and circo" in capsys.readouterr().err
