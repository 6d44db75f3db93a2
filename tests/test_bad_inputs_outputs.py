"""Where commands write: never inside an input (symlinks resolved), never over an input or another run's
results without --overwrite, one run per output folder at a time, names that stay in their folder."""
from __future__ import annotations

import json

import bench_fixtures as F
from test_bad_inputs import _tiny_world_run, _write, evaluate_args, one_line_error, score_args, train_on

from lincir.cli import main
from lincir.storage import LOCK_FILE, OutputLock


def test_evaluate_out_through_a_symlink_into_the_dataset(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    link = tmp_path / "link"
    link.symlink_to(root, target_is_directory=True)
    before = F.snapshot(root)
    one_line_error(evaluate_args("circo", root, link / "results"), capsys, "--out", "inside the dataset folder",
                   "resolving links")
    assert F.snapshot(root) == before


def test_train_out_inside_the_corpus_folder(tmp_path, capsys):
    corpus = _write(tmp_path / "corpus" / "c.txt", b"a red cube\na blue ball\n")
    before = F.snapshot(corpus.parent)
    one_line_error(train_on(corpus, corpus.parent / "run"), capsys, "--out", "inside the corpus folder")
    one_line_error(train_on(corpus, corpus), capsys, "--out", "is the corpus")
    assert F.snapshot(corpus.parent) == before


def test_cache_inside_the_dataset_is_refused(tmp_path, capsys, monkeypatch):
    root = F.make_circo(tmp_path / "data")
    monkeypatch.setenv("LINCIR_CACHE", str(root / "cache"))
    one_line_error(evaluate_args("circo", root, tmp_path / "out"), capsys, "LINCIR_CACHE", "inside the dataset")
    assert not (root / "cache").exists()


def _ranking(tmp_path, root):
    path = tmp_path / "ranks.json"
    path.write_text(json.dumps({"0": [102, 103, 104], "1": [106]}))
    return path


def test_score_out_never_replaces_its_input_or_another_file(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    ranks = _ranking(tmp_path, root)
    text = ranks.read_text()
    one_line_error(score_args("circo", root, file=ranks) + ["--out", ranks], capsys, "--out", "ranking file")
    assert ranks.read_text() == text
    other = _write(tmp_path / "notes.json", b'{"mine": true}')
    one_line_error(score_args("circo", root, file=ranks) + ["--out", other], capsys, "notes.json", "--overwrite")
    assert other.read_bytes() == b'{"mine": true}'
    out = tmp_path / "m.json"
    assert main([str(a) for a in score_args("circo", root, file=ranks) + ["--out", out]]) == 0
    assert main([str(a) for a in score_args("circo", root, file=ranks) + ["--out", out]]) == 0  # its own: replaced
    assert main([str(a) for a in score_args("circo", root, file=ranks) + ["--out", other, "--overwrite"]]) == 0
    assert json.loads(other.read_text())["benchmark"] == "circo"


def test_evaluate_over_another_evaluation(tmp_path, capsys):
    circo, cirr = F.make_circo(tmp_path / "data"), F.make_cirr(tmp_path / "data")
    out = tmp_path / "eval"
    assert main([str(a) for a in evaluate_args("circo", circo, out)]) == 0
    metrics = (out / "metrics.json").read_bytes()
    one_line_error(evaluate_args("cirr", cirr, out), capsys, "--out", "another evaluation", "benchmark circo",
                   "--overwrite")
    assert (out / "metrics.json").read_bytes() == metrics
    assert main([str(a) for a in evaluate_args("circo", circo, out)]) == 0  # the same evaluation again
    assert (out / "metrics.json").read_bytes() == metrics
    assert main([str(a) for a in evaluate_args("cirr", cirr, out, "image", "--overwrite")]) == 0
    assert json.loads((out / "metrics.json").read_text())["benchmark"] == "cirr"
    assert not (out / LOCK_FILE).exists()


def test_a_second_run_into_a_locked_folder_fails_at_once(tmp_path, capsys):
    out = tmp_path / "run"
    with OutputLock(out, "--out"):  # another run holds the folder
        one_line_error(_tiny_world_run(out), capsys, "another lincir run", "pid")
        root = F.make_circo(tmp_path / "data")
        one_line_error(evaluate_args("circo", root, out), capsys, "another lincir run")
    assert not (out / "log.jsonl").exists() and not (out / "config.json").exists()
    assert main(_tiny_world_run(out)) == 0  # released: the folder is free again
    assert not (out / LOCK_FILE).exists()


def test_submit_name_never_leaves_its_folder(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    before = F.snapshot(root)
    base = ["submit", "--benchmark", "circo", "--data-root", root, "--backbone", "shapes-clip", "--weights",
            "random", "--method", "image", "--quiet", "--no-cache", "--out", tmp_path / "subs"]
    for name in ["../../data/CIRCO/annotations/x", "a/b", "..", ".hidden", "x\\y"]:
        one_line_error(base + ["--name", name], capsys, "--name")
    assert F.snapshot(root) == before and not (tmp_path / "subs").exists()
    assert main([str(a) for a in base]) == 0
    one_line_error(base, capsys, "already holds", "--overwrite")
    assert main([str(a) for a in base + ["--overwrite"]]) == 0
