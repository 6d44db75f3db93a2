"""Bad inputs through the real CLI: each ends in ONE stderr line naming the file or option at fault, a
non-zero exit status and no traceback; `--debug` (before or after the command) raises the error instead.

Each case builds its broken input in tmp_path, calls `lincir.cli.main` in-process and checks the line.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import bench_fixtures as F
import pytest
import torch

from lincir.cli import main
from lincir.core.phi import Phi
from lincir.errors import LincirError
from lincir.models.backbones import load_backbone
from lincir.models.phi_checkpoints import save_phi

TRAIN = ["train", "--backbone", "shapes-clip", "--weights", "random", "--steps", "2", "--batch-size", "4",
         "--no-progress", "--device", "cpu", "--log-every", "1"]


def one_line_error(argv: list[str], capsys, *needles: str) -> str:
    """Run the CLI; assert a non-zero exit, exactly one stderr line holding every needle, no traceback."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors exit
        code = e.code
    err = capsys.readouterr().err
    # What a terminal shows: a progress bar erased with "\r" before the error is not a line of its own.
    lines = [shown for line in err.split("\n") if (shown := line.split("\r")[-1].strip())]
    assert code not in (0, None), f"exit {code}; stderr: {err}"
    assert len(lines) == 1, f"expected one stderr line, got:\n{err}"
    assert "Traceback" not in err
    for needle in needles:
        assert str(needle) in lines[0], f"{needle!r} not in: {lines[0]}"
    return lines[0]


def train_on(corpus: Path, out: Path, *extra) -> list[str]:
    return TRAIN + ["--corpus", str(corpus), "--out", str(out), *extra]


# ------------------------------------------------------------------------------ caption corpora

def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


CORPORA = {  # name: (file name, bytes, what the error line must say besides the file name)
    "empty file": ("empty.txt", b"", "empty"),
    "binary file": ("binary.txt", b"a red cube\n\x00\x01\x02\xff\xfe\n", "binary"),
    "not UTF-8": ("latin1.txt", "a red cube\nun caf\u00e9 cr\u00e8me\n".encode("latin-1"), "UTF-8"),
    "TSV with 3 columns": ("cc3m.tsv", b"a red cube\thttp://x/1.jpg\na blue ball\thttp://x/2.jpg\textra\n",
                           "cc3m.tsv:2"),
    "every caption empty": ("blank.txt", b"\n   \n$ $\n\t\n", "every caption is empty"),
    "CSV without a caption column": ("two.csv", b"url,label\nhttp://x,cube\n", "which column"),
    "CSV row of the wrong width": ("rows.csv", b"caption,url\na red cube,http://x\na ball\n", "rows.csv:3"),
    "not Parquet": ("corpus.parquet", b"PAR1 this is not parquet", "not a Parquet file"),
    "not gzip": ("corpus.txt.gz", b"plain text, not gzip\n", "corpus.txt.gz"),
}


@pytest.mark.parametrize("case", list(CORPORA))
def test_bad_caption_corpus(tmp_path, capsys, case):
    name, data, needle = CORPORA[case]
    corpus = _write(tmp_path / "corpus" / name, data)
    one_line_error(train_on(corpus, tmp_path / "out"), capsys, corpus.name, needle)
    assert not (tmp_path / "out" / "checkpoint.safetensors").exists()


def test_truncated_gzip_corpus(tmp_path, capsys):
    whole = gzip.compress(b"".join(b"caption number %d of a corpus\n" % i for i in range(2000)))
    corpus = _write(tmp_path / "c" / "cut.txt.gz", whole[: len(whole) // 2])
    one_line_error(train_on(corpus, tmp_path / "out"), capsys, "cut.txt.gz")


def test_overlong_captions_are_cut_not_refused(tmp_path, capsys):
    """Captions longer than the context are cut at a word boundary (the method's rule), and the run says so."""
    corpus = _write(tmp_path / "c" / "long.txt", b"a red cube\n" + b"a very " + b"long " * 100 + b"caption\n\n")
    assert main(train_on(corpus, tmp_path / "out")) == 0
    source = json.loads((tmp_path / "out" / "config.json").read_text())["corpus"]
    assert "2 captions; 1 cut to the 32-token context; 1 empty skipped" in source


def test_missing_corpus_and_folder_as_corpus(tmp_path, capsys):
    one_line_error(train_on(tmp_path / "nope.txt", tmp_path / "out"), capsys, "nope.txt", "not found")
    (tmp_path / "dir.txt").mkdir()
    one_line_error(train_on(tmp_path / "dir.txt", tmp_path / "out"), capsys, "dir.txt", "not a file")


def test_corpus_options_out_of_range(tmp_path, capsys):
    corpus = _write(tmp_path / "c" / "c.txt", b"a red cube\n")  # its own folder: --out may not be inside it
    one_line_error(train_on(corpus, tmp_path / "out", "--corpus-format", "xml"), capsys, "--corpus-format", "xml")
    one_line_error(train_on(corpus, tmp_path / "out", "--corpus-column", "text"), capsys, "c.txt", "column")


# ------------------------------------------------------------------------------ training options and run folders

@pytest.mark.parametrize("extra,needle", [
    (["--steps", "0"], "--steps"),
    (["--batch-size", "0"], "--batch-size"),
    (["--dropout", "1.5"], "--dropout"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--noise", "loud"], "--noise"),
    (["--noise-scale", "-2"], "--noise-scale"),
    (["--masking", "everything"], "--masking"),
    (["--objective", "magic"], "--objective"),
    (["--precision", "fp8"], "--precision"),
    (["--save-every", "0"], "--save-every"),
    (["--backbone", "ViT-Z-99"], "--backbone"),
    (["--device", "banana"], "--device"),
    (["--steps", "ten"], "--steps"),  # argparse's type error, also one line
    (["--frobnicate"], "--frobnicate"),
])
def test_train_option_out_of_range(tmp_path, capsys, extra, needle):
    one_line_error(TRAIN + ["--corpus", "world", "--world-captions", "50", "--out", tmp_path / "o", *extra],
                   capsys, needle)
    assert not (tmp_path / "o" / "checkpoint.safetensors").exists()


def _tiny_world_run(out: Path, *extra) -> list[str]:
    return TRAIN + ["--corpus", "world", "--world-captions", "40", "--out", str(out), *extra]


def test_run_folder_rules(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny_world_run(out)) == 0
    before = (out / "phi.safetensors").read_bytes()
    one_line_error(_tiny_world_run(out), capsys, str(out), "already holds a run", "--resume", "--overwrite")
    one_line_error(_tiny_world_run(out, "--resume", "--overwrite"), capsys, "--resume and --overwrite")
    one_line_error(_tiny_world_run(out, "--resume", "--lr", "0.5"), capsys, "--lr", "checkpoint.safetensors")
    assert (out / "phi.safetensors").read_bytes() == before  # nothing of the refused runs was written
    one_line_error(_tiny_world_run(tmp_path / "fresh", "--resume"), capsys, "fresh", "no checkpoint")


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = _write(tmp_path / "a-file", b"x")
    one_line_error(_tiny_world_run(blocker), capsys, "a-file", "not a folder")
    one_line_error(_tiny_world_run(blocker / "run"), capsys, "a-file", "not writable")
    if os.geteuid() != 0:  # root writes anywhere: the permission case needs an ordinary user
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        one_line_error(_tiny_world_run(locked / "run"), capsys, "locked", "not writable")
    if Path("/sys/kernel").is_dir():  # sysfs refuses new folders even to root
        one_line_error(_tiny_world_run("/sys/lincir-run"), capsys, "/sys/lincir-run", "not writable")
        one_line_error(evaluate_args("circo", F.make_circo(tmp_path / "data"), "/sys/kernel/lincir-eval"), capsys,
                       "/sys/kernel/lincir-eval", "not writable")


def test_corrupted_checkpoint_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_tiny_world_run(out)) == 0
    ckpt = out / "checkpoint.safetensors"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # a copy cut short
    one_line_error(_tiny_world_run(out, "--resume", "--steps", "4"), capsys, "checkpoint.safetensors",
                   "cannot resume")


def test_non_finite_loss_names_step_and_checkpoint(tmp_path, capsys):
    # A learning rate of 1e30 blows phi's weights up after the first step: the next loss is not finite.
    line = one_line_error(_tiny_world_run(tmp_path / "run", "--lr", "1e30", "--save-every", "1", "--steps", "6"),
                          capsys, "not finite", "step ", "checkpoint.safetensors")
    assert "none" not in line
    assert not (tmp_path / "run" / "phi.safetensors").exists()  # no final phi from a diverged run


class Payload:
    """Any pickled object: unpickling it could run code, so weights_only=True must refuse it."""


def test_bad_backbone_weights(tmp_path, capsys):
    junk = _write(tmp_path / "w" / "clip.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    one_line_error(_tiny_world_run(tmp_path / "o", "--weights", junk), capsys, "clip.safetensors")
    evil = tmp_path / "w" / "clip.pt"
    torch.save({"state_dict": Payload()}, evil)
    one_line_error(_tiny_world_run(tmp_path / "o", "--weights", evil), capsys, "clip.pt", "weights_only")
    one_line_error(_tiny_world_run(tmp_path / "o", "--weights", tmp_path / "missing.pt"), capsys, "missing.pt")


def test_pic2word_options(tmp_path, capsys):
    args = TRAIN + ["--objective", "pic2word", "--noise", "none", "--out", tmp_path / "o"]
    one_line_error(args + ["--images", tmp_path / "no-such-folder"], capsys, "--images", "no-such-folder")
    one_line_error(args + ["--template", "a photo"], capsys, "--template")
    long = "a photo of a very " + "long " * 80 + "$"  # the placeholder falls beyond the context
    one_line_error(args + ["--template", long, "--images", "world", "--world-images", "8"], capsys, "--template",
                   "context")
    folder = tmp_path / "imgs"
    F.write_image(folder / "ok.png", __import__("numpy").random.default_rng(0))
    _write(folder / "fake.jpg", b"this is text, not a JPEG")
    one_line_error(args + ["--images", folder], capsys, "fake.jpg")


# ------------------------------------------------------------------------------ benchmark folders

def score_args(bench: str, root: Path, split: str = "val", file: Path | None = None) -> list:
    return ["score", "--benchmark", bench, "--data-root", root, "--split", split, file or root / "none.json"]


JSON_CASES = {  # (benchmark, file under the benchmark folder, edit of the parsed JSON or raw bytes, needle)
    "fashioniq captions malformed": ("fashioniq", "captions/cap.dress.val.json", b'[{"candidate": ', "malformed JSON"),
    "fashioniq captions not UTF-8": ("fashioniq", "captions/cap.shirt.val.json", b'["\xff\xfe"]', "UTF-8"),
    "fashioniq split not a list": ("fashioniq", "image_splits/split.dress.val.json", {"a": 1}, "list"),
    "fashioniq record without target": ("fashioniq", "captions/cap.toptee.val.json",
                                        lambda d: [{k: v for k, v in d[0].items() if k != "target"}], "'target'"),
    "fashioniq captions wrong type": ("fashioniq", "captions/cap.dress.val.json",
                                      lambda d: [{**d[0], "captions": "is red"}], "'captions'"),
    "cirr captions malformed": ("cirr", "cirr/captions/cap.rc2.val.json", b"[{]", "malformed JSON"),
    "cirr split not an object": ("cirr", "cirr/image_splits/split.rc2.val.json", ["dev-0-0-img0"], "split.rc2.val"),
    "cirr record without reference": ("cirr", "cirr/captions/cap.rc2.val.json",
                                      lambda d: [{k: v for k, v in d[0].items() if k != "reference"}], "'reference'"),
    "cirr pairid wrong type": ("cirr", "cirr/captions/cap.rc2.val.json",
                               lambda d: [{**d[0], "pairid": "one hundred"}], "'pairid'"),
    "cirr members wrong type": ("cirr", "cirr/captions/cap.rc2.val.json",
                                lambda d: [{**d[0], "img_set": {"members": "dev-0-0-img0"}}], "members"),
    "circo annotations malformed": ("circo", "annotations/val.json", b"", "malformed JSON"),
    "circo gt ids wrong type": ("circo", "annotations/val.json",
                                lambda d: [{**d[0], "gt_img_ids": "102"}], "'gt_img_ids'"),
    "circo reference missing": ("circo", "annotations/val.json",
                                lambda d: [{k: v for k, v in d[0].items() if k != "reference_img_id"}],
                                "'reference_img_id'"),
    "fashioniq split malformed": ("fashioniq", "image_splits/split.toptee.val.json", b'["B00T000000", ', "malformed"),
    "cirr split malformed": ("cirr", "cirr/image_splits/split.rc2.val.json", b'{"dev-0-0-img0": }', "malformed"),
    "cirr split path wrong type": ("cirr", "cirr/image_splits/split.rc2.val.json", {"dev-0-0-img0": 5},
                                   "split.rc2.val"),
    "circo image info malformed": ("circo", "COCO2017_unlabeled/annotations/image_info_unlabeled2017.json",
                                   b'{"images": [{"id": 101, "file_name": ', "malformed"),
    "circo image info without images": ("circo", "COCO2017_unlabeled/annotations/image_info_unlabeled2017.json",
                                        {"info": {}}, "'images'"),
    "genecis task malformed": ("genecis", "genecis/focus_object.json", b'[{"condition": "dog",', "malformed JSON"),
    "genecis gallery wrong type": ("genecis", "genecis/change_object.json",
                                   lambda d: [{**d[0], "gallery": {"val_image_id": 13}}], "'gallery'"),
    "genecis target missing": ("genecis", "genecis/focus_attribute.json",
                               lambda d: [{k: v for k, v in d[0].items() if k != "target"}], "'target'"),
    "genecis box wrong type": ("genecis", "genecis/change_attribute.json",
                               lambda d: [{**d[0], "reference": {"image_id": 7, "instance_bbox": "0 0 1 1"}}],
                               "instance_bbox"),
}


@pytest.mark.parametrize("case", list(JSON_CASES))
def test_bad_benchmark_json(tmp_path, capsys, case):
    bench, rel, edit, needle = JSON_CASES[case]
    root = F.MAKERS[bench](tmp_path / "data")
    path = root / rel
    if isinstance(edit, bytes):
        path.write_bytes(edit)
    elif callable(edit):
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    else:
        path.write_text(json.dumps(edit))
    one_line_error(score_args(bench, root), capsys, path.name, needle)


def test_data_root_of_another_benchmark(tmp_path, capsys):
    cirr = F.make_cirr(tmp_path / "data")
    one_line_error(score_args("circo", cirr), capsys, "--data-root", "not a CIRCO folder")
    one_line_error(score_args("fashioniq", tmp_path / "nowhere"), capsys, "--data-root", "nowhere")
    one_line_error(score_args("imagenet", cirr), capsys, "--benchmark", "imagenet")
    one_line_error(score_args("circo", F.make_circo(tmp_path / "data"), split="train"), capsys, "train")


def test_bad_ranking_files(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    bad = _write(tmp_path / "ranks.json", b'{"0": [102, 103')
    one_line_error(score_args("circo", root, file=bad), capsys, "ranks.json", "malformed JSON")
    _write(bad, json.dumps({"0": [102]}).encode())
    one_line_error(score_args("circo", root, file=bad), capsys, "ranks.json", "missing")
    _write(bad, json.dumps({"0": [102, 102], "1": [103]}).encode())
    one_line_error(score_args("circo", root, file=bad), capsys, "ranks.json", "twice")
    one_line_error(score_args("circo", root, file=tmp_path / "absent.json"), capsys, "absent.json", "not found")


# ------------------------------------------------------------------------------ images and phi checkpoints

def evaluate_args(bench: str, root: Path, out: Path, method: str = "image", *extra) -> list:
    return ["evaluate", "--benchmark", bench, "--data-root", root, "--split", "val", "--backbone", "shapes-clip",
            "--weights", "random", "--method", method, "--out", out, "--quiet", "--no-cache", *extra]


@pytest.mark.parametrize("damage", ["missing", "truncated", "not an image", "truncated, worker process"])
def test_bad_image_files(tmp_path, capsys, damage):
    root = F.make_circo(tmp_path / "data")
    image = root / "COCO2017_unlabeled" / "unlabeled2017" / f"{F.CIRCO_IDS[3]:012d}.jpg"
    extra = []
    if damage == "missing":
        image.unlink()
    elif damage.startswith("truncated"):
        image.write_bytes(image.read_bytes()[:200])
        extra = ["--workers", "1"] if "worker" in damage else []
    else:
        image.write_text("<html>404 not found</html>")
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "image", *extra), capsys, image.name)
    assert not (tmp_path / "out" / "metrics.json").exists()


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("shapes-clip", weights="random")


def test_bad_phi_checkpoints(tmp_path, capsys, backbone):
    root = F.make_circo(tmp_path / "data")

    def fails(phi, *needles):
        one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", phi), capsys, *needles)

    save_phi(tmp_path / "vitl", Phi(768, 768), {"backbone": "ViT-L-14"})  # made for another backbone
    fails(tmp_path / "vitl", "768", str(backbone.embed_dim), "shapes-clip")
    good = tmp_path / "good"
    save_phi(good, Phi.for_backbone(backbone), {"backbone": "shapes-clip"})
    data = (good / "phi.safetensors").read_bytes()
    cut = _write(tmp_path / "cut" / "phi.safetensors", data[: len(data) // 3])  # a half-finished download
    fails(cut, "cut/phi.safetensors", "corrupted")
    garbage = _write(tmp_path / "garbage" / "phi.safetensors", os.urandom(4096))
    fails(garbage, "garbage/phi.safetensors")
    (tmp_path / "cut" / "phi.safetensors").write_bytes(data)
    (tmp_path / "cut" / "phi.json").write_text('{"backbone": ')
    fails(tmp_path / "cut", "phi.json", "malformed JSON")
    evil = tmp_path / "evil.pt"
    torch.save({"Phi": Payload()}, evil)
    fails(evil, "evil.pt", "weights_only")
    fails(_write(tmp_path / "zip.pt", b"PK\x03\x04 not really a zip"), "zip.pt")
    fails(tmp_path / "absent.safetensors", "absent.safetensors", "not found")
    torch.save({"Phi": {"layers.0.weight": torch.zeros(3, 3)}}, tmp_path / "partial.pt")
    fails(tmp_path / "partial.pt", "partial.pt", "layers.6.weight")


def test_placeholder_cut_off_by_a_long_query(tmp_path, capsys, backbone):
    root = F.make_circo(tmp_path / "data")
    ann = root / "annotations" / "val.json"
    records = json.loads(ann.read_text())
    records[1]["relative_caption"] = "has " + "many more things " * 40  # longer than the context
    ann.write_text(json.dumps(records))
    save_phi(tmp_path / "phi", Phi.for_backbone(backbone), {"backbone": "shapes-clip"})
    one_line_error(evaluate_args("circo", root, tmp_path / "out", "lincir", "--phi", tmp_path / "phi",
                                 "--template", "{text} and $"), capsys, "--template", "context")


def test_evaluate_options_and_outputs(tmp_path, capsys):
    root = F.make_circo(tmp_path / "data")
    out = tmp_path / "out"
    one_line_error(evaluate_args("circo", root, out, "image", "--batch-size", "0"), capsys, "--batch-size")
    one_line_error(evaluate_args("circo", root, out, "image", "--workers", "-1"), capsys, "--workers")
    one_line_error(evaluate_args("circo", root, root / "results"), capsys, "--out", "inside the dataset")
    blocker = _write(tmp_path / "file", b"x")
    one_line_error(evaluate_args("circo", root, blocker / "sub"), capsys, "file", "not a folder")
    one_line_error(["world-main", "--steps", "0", "--out", tmp_path / "wm"], capsys, "--steps")


# ------------------------------------------------------------------------------ --debug

@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, capsys, where):
    argv = [str(a) for a in train_on(tmp_path / "absent.txt", tmp_path / "out")]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(LincirError, match="absent.txt"):
        main(argv)


def test_debug_shows_os_errors(tmp_path, monkeypatch):
    import lincir.cli.score as score

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.json"))

    monkeypatch.setattr(score, "run", denied)
    assert main(["score", "--benchmark", "circo", "--data-root", str(tmp_path), "f.json"]) == 2
    with pytest.raises(PermissionError):
        main(["score", "--benchmark", "circo", "--data-root", str(tmp_path), "f.json", "--debug"])


def test_os_error_is_one_line(tmp_path, capsys, monkeypatch):
    import lincir.cli.score as score

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.json"))

    monkeypatch.setattr(score, "run", denied)
    one_line_error(["score", "--benchmark", "circo", "--data-root", tmp_path, "f.json"], capsys, "x.json",
                   "Permission denied")
