"""Every numeric and device option is checked when the command line is parsed: one line, before any work.
And a pretrained tag that is not cached fails at once offline, in one line."""
from __future__ import annotations

import pytest
from test_bad_inputs import TRAIN, one_line_error

CIRCO = ["--benchmark", "circo", "--data-root", "nowhere"]
EVAL = ["evaluate", *CIRCO, "--backbone", "shapes-clip", "--out", "never-written"]

CASES = [  # (argv, needle): each must end in argparse's one line naming the option
    (["train", "--out", "o", "--seed", "-1"], "--seed"),
    (["train", "--out", "o", "--threads-not-an-option", "1"], "--threads-not-an-option"),
    (["train", "--out", "o", "--device", "meta"], "--device"),
    (["train", "--out", "o", "--device", "cuda:x"], "--device"),
    (["train", "--out", "o", "--world-captions", "-5"], "--world-captions"),
    (["train", "--out", "o", "--world-images", "0"], "--world-images"),
    (["train", "--out", "o", "--warmup-steps", "-1"], "--warmup-steps"),
    (["train", "--out", "o", "--val-every", "-1"], "--val-every"),
    (["train", "--out", "o", "--log-every", "0"], "--log-every"),
    (["train", "--out", "o", "--weight-decay", "inf"], "--weight-decay"),
    (["train", "--out", "o", "--noise-scale", "nan"], "--noise-scale"),
    (["train", "--out", "o", "--dropout", "1"], "--dropout"),
    (["train", "--out", "o", "--max-seconds", "0"], "--max-seconds"),
    (["train", "--out", "o", "--batch-size", "1e9999"], "--batch-size"),
    (["world-main", "--seeds", "0", "-2"], "--seeds"),
    (["world-main", "--steps", "0"], "--steps"),
    (["world", "train-clip", "--preset", "smoke", "--out", "o", "--seed", "-1"], "--seed"),
    (["world", "train-clip", "--preset", "smoke", "--out", "o", "--threads", "0"], "--threads"),
    (["world", "train-clip", "--preset", "smoke", "--out", "o", "--eval-every", "0"], "--eval-every"),
    (["world", "train-clip", "--preset", "smoke", "--out", "o", "--stop-at", "-3"], "--stop-at"),
    (["world", "eval-clip", "--pairs", "0"], "--pairs"),
    (["world", "eval-clip", "--pairs", "-10"], "--pairs"),
    (["world", "sample", "--out", "o", "-n", "-1"], "-n"),
    (["bench", "retrieval", "--threads", "0"], "--threads"),
    (["bench", "retrieval", "--queries", "0"], "--queries"),
    (["bench", "retrieval", "--k", "0"], "--k"),
    (["bench", "keywords", "--n-captions", "-1"], "--n-captions"),
    (["bench", "train-step", "--batch-size", "0"], "--batch-size"),
    (["bench", "train-step", "--device", "meta"], "--device"),
    (["bench", "encoders", "--rounds", "0"], "--rounds"),
    ([*EVAL, "--batch-size", "-4"], "--batch-size"),
    ([*EVAL, "--workers", "-1"], "--workers"),
    ([*EVAL, "--device", "meta"], "--device"),
    (["submit", *CIRCO, "--backbone", "shapes-clip", "--device", "tpu"], "--device"),
]


@pytest.mark.parametrize("argv,needle", CASES, ids=[" ".join(a[:2] + a[-2:]) for a, _ in CASES])
def test_numeric_and_device_flags_are_checked_at_parse_time(capsys, argv, needle):
    line = one_line_error(argv, capsys, needle)
    assert "must be at least" in line or "out of range" in line or "not a" in line or "unrecognized" in line


def test_the_library_checks_the_same_ranges():
    from lincir.errors import LincirError
    from lincir.train.config import TrainConfig

    for bad in ({"seed": -1}, {"device": "meta"}, {"weight_decay": float("inf")}):
        with pytest.raises(LincirError):
            TrainConfig(**bad).validate()


def test_an_uncached_pretrained_tag_fails_at_once_offline(tmp_path, capsys, monkeypatch):
    """HF_HUB_OFFLINE and a tag not in the (empty) cache: one line, no hub retries, no warnings."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    import huggingface_hub.constants as C

    monkeypatch.setattr(C, "HF_HUB_CACHE", str(tmp_path / "hub"))
    argv = [a if a != "random" else "pretrained" for a in TRAIN]
    argv[argv.index("shapes-clip")] = "ViT-B-32"
    one_line_error(argv + ["--corpus", "world", "--world-captions", "20", "--out", tmp_path / "o"], capsys,
                   "ViT-B-32/openai", "not in", "HF_HUB_OFFLINE", "--weights PATH")
    assert not (tmp_path / "o" / "checkpoint.safetensors").exists()
