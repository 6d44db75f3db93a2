"""Loaders on the real formats (tiny invented fixtures), scoring ranking files with hand-computed metrics,
and one-line errors naming the file and record at fault."""
import json

import bench_fixtures as F
import pytest

from lincir.cli import main
from lincir.errors import LincirError
from lincir.eval.benchmarks import load_benchmark


def score(capsys, bench, root, ranking, tmp_path, split="val"):
    path = tmp_path / "ranking.json"
    path.write_text(json.dumps(ranking))
    out = tmp_path / "metrics.json"
    assert main(["score", "--benchmark", bench, "--data-root", str(root), "--split", split, str(path),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    metrics = json.loads(out.read_text())["metrics"]
    assert all(k in printed.out for k in metrics)
    score.err = printed.err
    return metrics


# -- loaders ----------------------------------------------------------------------------------------------

def test_fashioniq_loader(tmp_path):
    F.make_fashioniq(tmp_path)
    for root in (tmp_path, tmp_path / "FashionIQ"):  # the folder itself or its parent
        b = load_benchmark("fashioniq", root, "val")
        assert [p.name for p in b.parts] == ["dress", "shirt", "toptee"]
        dress = b.part("dress")
        assert len(dress.gallery) == 12 and len(dress.queries) == 3
        q = dress.queries[1]
        assert q.texts == ("is longer and is darker", "is darker and is longer")  # stripped, both orders
        assert dress.gallery[q.targets[0]].key == F.fiq_name("dress", 3)
        assert q.exclude == ()  # the reference stays in the ranking
        assert dress.queries[2].reference.key == F.fiq_name("dress", 100)  # a reference outside the split
    test = load_benchmark("fashioniq", tmp_path, "test")
    assert not test.has_ground_truth and test.part("dress").queries[0].targets == ()
    assert test.part("dress").queries[0].texts[0] == "is red and is short"


def test_cirr_loader(tmp_path):
    root = F.make_cirr(tmp_path)
    b = load_benchmark("cirr", root, "val")
    part = b.parts[0]
    assert len(part.gallery) == 8 and [q.qid for q in part.queries] == ["100", "101", "102"]
    q = part.queries[1]
    assert part.gallery[q.exclude[0]].key == F.cirr_name("val", 2)
    assert part.gallery[q.targets[0]].key == F.cirr_name("val", 5)
    assert sorted(q.subset) == [0, 1, 5, 6, 7]  # members without the reference
    assert part.gallery[0].path == root / "dev" / f"{F.cirr_name('val', 0)}.png"
    for split in ("test1", "test"):
        t = load_benchmark("cirr", root, split)
        assert t.split == "test1" and not t.has_ground_truth and len(t.parts[0].queries) == 2


def test_circo_loader(tmp_path):
    root = F.make_circo(tmp_path)
    b = load_benchmark("circo", root, "val")
    part = b.parts[0]
    assert len(part.gallery) == 12 and part.gallery[0].key == "101"
    assert part.gallery[0].path.name == "000000000101.jpg"
    assert [part.gallery[i].key for i in part.queries[0].targets] == ["102", "103", "104"]
    assert part.queries[0].reference.key == "101" and part.queries[0].exclude == ()
    t = load_benchmark("circo", root, "test")
    assert [q.qid for q in t.parts[0].queries] == ["0", "1", "2"] and not t.has_ground_truth


def test_genecis_loader(tmp_path):
    root = F.make_genecis(tmp_path)
    b = load_benchmark("genecis", root, "val")
    assert [p.name for p in b.parts] == ["focus_attribute", "change_attribute", "focus_object", "change_object"]
    obj = b.part("focus_object")
    q = obj.queries[1]
    assert q.texts == ("car",) and q.targets == (0,)  # each template's own condition
    assert [obj.gallery[i].key for i in q.candidates] == ["13", "11", "12", "14"]  # [target] + gallery
    assert [r.key for r in obj.gallery] == ["12", "13", "14", "15", "11"]  # each image once
    assert obj.gallery[0].path == root / "val2017" / "000000000012.jpg"
    attr = b.part("focus_attribute")
    ref = attr.queries[1].reference
    assert ref.path == root / "VG_100K_all" / "9.jpg" and ref.crop.box == (1.5, 2.5, 30.0, 20.0)
    assert ref.crop.dilate == 0.7
    # a crop shared by two templates is encoded once
    keys = [r.key for r in attr.gallery]
    assert len(keys) == len(set(keys))
    with pytest.raises(LincirError, match="single split"):
        load_benchmark("genecis", root, "test")


def test_genecis_image_folders_elsewhere(tmp_path):
    root = F.make_genecis(tmp_path)
    (root / "val2017").rename(tmp_path / "coco_val")
    with pytest.raises(LincirError, match="missing"):
        load_benchmark("genecis", root, "val").check_images()
    b = load_benchmark("genecis", root, "val", coco_dir=tmp_path / "coco_val")
    assert b.check_images() == 9


# -- scoring with hand-computed metrics ---------------------------------------------------------------------

def test_score_cirr_reference_removed_and_subset(tmp_path, capsys):
    root = F.make_cirr(tmp_path)
    n = lambda *idx: [F.cirr_name("val", i) for i in idx]
    ranking = {
        "version": "rc2", "metric": "recall",
        "100": n(0, 1, 6, 2),  # reference 0 removed -> target 1 first: R@1 hit; subset [1, 2]: Rs@1 hit
        "101": n(6, 5, 2),  # target 5 second; subset (0, 1, 5, 6, 7) -> [6, 5]: Rs@1 miss, Rs@2 hit
        "102": n(0, 1, 2, 4, 5, 6, 3),  # no reference listed; target 3 seventh: R@5 miss, R@10 hit
    }                                   # subset (0, 3, 4, 5, 6) -> [0, 4, 5, 6, 3]: Rs@3 miss
    m = score(capsys, "cirr", root, ranking, tmp_path)
    assert m["R@1"] == pytest.approx(100 / 3)
    assert m["R@5"] == pytest.approx(200 / 3)
    assert m["R@10"] == pytest.approx(100) and m["R@50"] == pytest.approx(100)
    assert m["R_subset@1"] == pytest.approx(100 / 3)
    assert m["R_subset@2"] == pytest.approx(200 / 3) and m["R_subset@3"] == pytest.approx(200 / 3)
    assert m["avg(R@5,R_subset@1)"] == pytest.approx(50)
    assert "2 lists lack some img_set members" in score.err


def test_score_circo_map_and_recall(tmp_path, capsys):
    root = F.make_circo(tmp_path)
    ranking = {"0": [102, 110, 103, 111, 112, 104, 105],  # gts at 1, 3, 6 of 3
               "1": ["101", "107", "108", "109", "110", "106"]}  # ids as strings are accepted (server casts)
    m = score(capsys, "circo", root, ranking, tmp_path)
    ap0_5, ap0_10 = (1 + 2 / 3) / 3, (1 + 2 / 3 + 0.5) / 3
    assert m["mAP@5"] == pytest.approx(100 * ap0_5 / 2)
    for k in (10, 25, 50):
        assert m[f"mAP@{k}"] == pytest.approx(100 * (ap0_10 + 1 / 6) / 2)
    assert m["R@5"] == pytest.approx(50) and m["R@10"] == pytest.approx(100)
    assert m["mAP@10/cardinality"] == pytest.approx(100 * (ap0_10 + 1 / 6) / 2)
    assert m["mAP@10/addition"] == pytest.approx(100 / 6)


def test_score_fashioniq_per_category_and_mean(tmp_path, capsys):
    root = F.make_fashioniq(tmp_path)
    g = lambda cat, *idx: [F.fiq_name(cat, i) for i in idx]
    ranking = {
        "dress": [g("dress", 1, 0),  # target first
                  g("dress", 2, 0, 1, 4, 5, 6, 7, 8, 9, 10, 11, 3),  # reference kept: target at rank 12
                  g("dress", 0, 1)],  # target absent: a miss
        "shirt": [g("shirt", 0, 2, 3, 1), g("shirt", 0, 1, 2, 4)],  # both at rank 4
        "toptee": [g("toptee", 0, 1, 3, 4, 5, 6, 7, 8, 9, 2),  # rank 10: R@10 hit
                   g("toptee", 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 5)],  # rank 11: R@10 miss, R@50 hit
    }
    m = score(capsys, "fashioniq", root, ranking, tmp_path)
    assert m["dress/R@10"] == pytest.approx(100 / 3) and m["dress/R@50"] == pytest.approx(200 / 3)
    assert m["shirt/R@10"] == pytest.approx(100) and m["shirt/R@50"] == pytest.approx(100)
    assert m["toptee/R@10"] == pytest.approx(50) and m["toptee/R@50"] == pytest.approx(100)
    assert m["average/R@10"] == pytest.approx((100 / 3 + 100 + 50) / 3)
    assert m["average/R@50"] == pytest.approx((200 / 3 + 100 + 100) / 3)


def test_score_genecis_per_task_and_mean(tmp_path, capsys):
    root = F.make_genecis(tmp_path)
    ranking = {"focus_attribute": [[0, 1, 2, 3], [2, 0, 1, 3]],
               "change_attribute": [[3, 2, 1, 0], [0, 1, 2, 3]],
               "focus_object": [[1, 2, 0, 3], [0, 3, 2, 1]],
               "change_object": [[0, 1, 2, 3], [0, 2, 1, 3]]}
    m = score(capsys, "genecis", root, ranking, tmp_path)
    assert (m["focus_attribute/R@1"], m["focus_attribute/R@2"], m["focus_attribute/R@3"]) == (50, 100, 100)
    assert (m["change_attribute/R@1"], m["change_attribute/R@3"]) == (50, 50)
    assert (m["focus_object/R@1"], m["focus_object/R@2"], m["focus_object/R@3"]) == (50, 50, 100)
    assert m["change_object/R@1"] == 100
    assert (m["average/R@1"], m["average/R@2"], m["average/R@3"]) == (62.5, 75, 87.5)


@pytest.mark.parametrize("bench,ranking,match", [
    ("circo", {"0": [102, 102], "1": [106]}, "listed twice"),
    ("circo", {"0": [102, 999], "1": [106]}, "999"),
    ("circo", {"0": [102]}, "1 of 2 CIRCO val query ids missing"),
    ("cirr", {"version": "rc2", "metric": "recall", "100": ["nope"], "101": [], "102": []}, "pairid 100"),
    ("genecis", {"focus_attribute": [[0, 7], [0]], "change_attribute": [[0], [0]], "focus_object": [[0], [0]],
                 "change_object": [[0], [0]]}, r"focus_attribute\[0\]"),
    ("fashioniq", {"dress": [], "shirt": [], "toptee": []}, "expected 3 ranked lists"),
])
def test_score_rejects_bad_files_with_one_line(tmp_path, capsys, bench, ranking, match):
    root = F.MAKERS[bench](tmp_path)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(ranking))
    assert main(["score", "--benchmark", bench, "--data-root", str(root), "--split", "val", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err
    assert __import__("re").search(match, err)


def test_score_does_not_need_images(tmp_path, capsys):
    root = F.make_circo(tmp_path)
    for img in (root / "COCO2017_unlabeled" / "unlabeled2017").iterdir():
        img.unlink()
    m = score(capsys, "circo", root, {"0": [102], "1": [106]}, tmp_path)
    assert m["R@5"] == 100


def test_score_test_split_has_no_ground_truth(tmp_path, capsys):
    root = F.make_circo(tmp_path)
    path = tmp_path / "r.json"
    path.write_text("{}")
    assert main(["score", "--benchmark", "circo", "--data-root", str(root), "--split", "test", str(path)]) == 2
    assert "no public ground truth" in capsys.readouterr().err


# -- errors: data root, layout, malformed records, missing images --------------------------------------------

def test_missing_data_root(tmp_path):
    with pytest.raises(LincirError, match=f"{tmp_path / 'nowhere'}: no such folder"):
        load_benchmark("cirr", tmp_path / "nowhere", "val")


@pytest.mark.parametrize("bench", ["fashioniq", "cirr", "circo", "genecis"])
def test_wrong_layout_names_expected_file(tmp_path, bench):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LincirError, match="not a .* folder .*expected"):
        load_benchmark(bench, tmp_path / "empty", "val")


def test_unknown_benchmark_and_split(tmp_path):
    with pytest.raises(LincirError, match="--benchmark"):
        load_benchmark("imagenet", tmp_path, "val")
    F.make_cirr(tmp_path)
    with pytest.raises(LincirError, match="--split"):
        load_benchmark("cirr", tmp_path, "dev")


def _edit_json(path, edit):
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("bench,rel,edit,match", [
    ("cirr", "CIRR/cirr/captions/cap.rc2.val.json", lambda d: d[1].pop("caption"),
     r"cap\.rc2\.val\.json: record 1 \(pairid 101\): missing key 'caption'"),
    ("cirr", "CIRR/cirr/captions/cap.rc2.val.json", lambda d: d[2].update(target_hard="dev-99"),
     r"record 2 \(pairid 102\): target_hard 'dev-99' is not in split\.rc2\.val\.json"),
    ("cirr", "CIRR/cirr/captions/cap.rc2.val.json", lambda d: d[0]["img_set"].update(members="x"),
     r"record 0 \(pairid 100\): 'members' must be a list of strings"),
    ("fashioniq", "FashionIQ/captions/cap.shirt.val.json", lambda d: d[1].update(captions=["only one"]),
     r"cap\.shirt\.val\.json: record 1: 'captions' must hold 2 captions"),
    ("fashioniq", "FashionIQ/captions/cap.dress.val.json", lambda d: d[0].update(target="B00NOTHERE"),
     r"cap\.dress\.val\.json: record 0: target 'B00NOTHERE' is not in split\.dress\.val\.json"),
    ("circo", "CIRCO/annotations/val.json", lambda d: d[1].update(gt_img_ids=[999]),
     r"val\.json: record 1: gt_img_ids must start with target_img_id 106"),
    ("circo", "CIRCO/annotations/val.json", lambda d: d[0].update(reference_img_id="101"),
     r"val\.json: record 0: 'reference_img_id' must be an integer"),
    ("circo", "CIRCO/annotations/val.json", lambda d: d[1].update(id=7),
     r"val\.json: record 1: 'id' is 7"),
    ("genecis", "GeneCIS/genecis/focus_attribute.json", lambda d: d[1]["target"].update(instance_bbox=[1, 2]),
     r"focus_attribute\.json: record 1 target: 'instance_bbox' must be \[x, y, w, h\]"),
    ("genecis", "GeneCIS/genecis/change_object.json", lambda d: d[0].pop("condition"),
     r"change_object\.json: record 0: missing key 'condition'"),
])
def test_malformed_record_names_file_and_record(tmp_path, bench, rel, edit, match):
    F.MAKERS[bench](tmp_path)
    _edit_json(tmp_path / rel, edit)
    with pytest.raises(LincirError, match=match):
        load_benchmark(bench, tmp_path, "val")


def test_malformed_json_names_file(tmp_path):
    root = F.make_circo(tmp_path)
    (root / "annotations" / "val.json").write_text('[{"id": 0,}]')
    with pytest.raises(LincirError, match=r"val\.json: malformed JSON at line 1"):
        load_benchmark("circo", root, "val")


def test_missing_images_counted_and_named(tmp_path):
    root = F.make_cirr(tmp_path)
    for i in (3, 6):
        (root / "dev" / f"{F.cirr_name('val', i)}.png").unlink()
    b = load_benchmark("cirr", root, "val")  # loading needs no images; evaluation checks them all
    with pytest.raises(LincirError) as e:
        b.check_images()
    msg = str(e.value)
    assert "\n" not in msg and str(root / "dev") in msg and "2 of 8" in msg
    assert F.cirr_name("val", 3) in msg and F.cirr_name("val", 6) in msg


def test_missing_reference_image_outside_gallery_is_reported(tmp_path):
    root = F.make_fashioniq(tmp_path)
    (root / "images" / f"{F.fiq_name('dress', 100)}.jpg").unlink()
    with pytest.raises(LincirError, match=f"1 of 31 .*{F.fiq_name('dress', 100)}"):
        load_benchmark("fashioniq", root, "val").check_images()
