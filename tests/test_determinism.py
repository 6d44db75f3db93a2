"""Determinism on CPU: the same command with the same seed writes byte-identical result files, whether its
caches are cold or warm (the main job's results.json, training checkpoints, evaluation metrics and rankings)."""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import bench_fixtures as F
import pytest

from lincir.cli import main

TRAIN = ["train", "--backbone", "shapes-clip", "--weights", "random", "--world-captions", "400", "--batch-size", "16",
         "--steps", "12", "--save-every", "5", "--no-progress", "--device", "cpu"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hashes(folder: Path, names) -> dict[str, str]:
    return {n: sha(folder / n) for n in names}


def test_train_twice_same_bytes(tmp_path, monkeypatch):
    files = ["phi.safetensors", "phi.json", "checkpoint.safetensors", "config.json"]
    got = []
    for run, cache in [("a", "cache-1"), ("b", "cache-2"), ("c", "cache-1")]:  # cold, cold, warm caches
        monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / cache))
        out = tmp_path / run
        assert main([*TRAIN, "--out", str(out)]) == 0
        got.append(hashes(out, files[:3]))
    assert got[0] == got[1] == got[2]
    other = tmp_path / "seed1"
    assert main([*TRAIN, "--out", str(other), "--seed", "1"]) == 0
    assert sha(other / "phi.safetensors") != got[0]["phi.safetensors"]  # the comparison can fail


@pytest.fixture
def tiny_main_job(monkeypatch):
    """The quick preset made smaller still (the CLI's `--preset` choices are read when the parser is built)."""
    from lincir.eval import world_benchmark as W
    from lincir.experiments import main_job_config

    monkeypatch.setitem(W.SIZES, "tiny", (60, 20))
    monkeypatch.setitem(main_job_config.PRESETS, "tiny", dataclasses.replace(
        main_job_config.PRESETS["quick"], world_captions=300, world_images=200, size="tiny", batch_size=32))
    features = W.features
    monkeypatch.setattr(W, "features", lambda backbone, bench, gap_pairs=200: features(backbone, bench, gap_pairs))


@pytest.mark.slow  # the main job (tiny), three times
def test_main_job_twice_same_results(tmp_path, monkeypatch, tiny_main_job, capsys):
    got = []
    for run, cache in [("a", "cache-1"), ("b", "cache-2"), ("c", "cache-1")]:  # cold, cold, warm caches
        monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / cache))
        out = tmp_path / run
        assert main(["world-main", "--preset", "tiny", "--weights", "random", "--seeds", "0", "--steps", "3",
                     "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
        phis = sorted((out / "runs").rglob("phi.safetensors"))
        assert len(phis) == 7  # LinCIR x 2 noises, CapDec and C3 noise, template masking, Pic2Word, SEARLE
        got.append({"results.json": sha(out / "results.json"),
                    **{str(p.relative_to(out)): sha(p) for p in phis},
                    **{str(p.relative_to(out)): sha(p) for p in (out / "runs").rglob("checkpoint.safetensors")}})
    assert got[0] == got[1] == got[2]


def test_evaluate_twice_same_files(tmp_path, monkeypatch):
    root = F.make_cirr(tmp_path / "data")
    got = []
    for run, cache in [("a", "cache-1"), ("b", "cache-2"), ("c", "cache-1")]:
        monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / cache))
        out = tmp_path / run
        assert main(["evaluate", "--benchmark", "cirr", "--data-root", str(root), "--split", "val", "--backbone",
                     "shapes-clip", "--weights", "random", "--method", "image+text", "--out", str(out),
                     "--quiet"]) == 0
        got.append(hashes(out, ["metrics.json", "rankings.json"]))
    assert got[0] == got[1] == got[2]
