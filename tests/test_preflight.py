"""The cheap inputs of the commands that load a model are checked before torch is imported: a bad corpus,
weights or phi file fails in a fraction of a second, with one line."""
import subprocess
import sys

import pytest

import bench_fixtures as F


def run_without_torch(argv, cwd):
    code = (f"import sys\nfrom lincir.cli import main\nrc = main({argv!r})\n"
            "print('RC', rc, 'TORCH', 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=cwd)
    return done.stdout.strip().splitlines()[-1], done.stderr.strip().splitlines()


@pytest.mark.parametrize("content,expected", [
    (b"\xff\xfea\x00b\x00\n\x00", "UTF-16"),
    (b"caption\x00\x01\x02 binary", "binary data"),
])
def test_a_bad_corpus_fails_before_torch(tmp_path, content, expected):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "caps.txt").write_bytes(content)
    last, err = run_without_torch(["train", "--corpus", "c/caps.txt", "--out", "run"], tmp_path)
    assert last == "RC 2 TORCH False" and len(err) == 1 and expected in err[0] and "c/caps.txt" in err[0], err


def test_a_missing_weights_file_fails_before_torch(tmp_path):
    last, err = run_without_torch(["train", "--weights", "nope.safetensors", "--out", "run"], tmp_path)
    assert last == "RC 2 TORCH False" and err == ["lincir train: error: nope.safetensors: weights file not found"]


@pytest.mark.parametrize("content", [b'{"x":1}', b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\": {\"shape\": [2]}}"])
def test_a_corrupt_phi_fails_before_torch(tmp_path, content):
    root = F.make_circo(tmp_path / "data")
    (tmp_path / "bad.safetensors").write_bytes(content)
    last, err = run_without_torch(["evaluate", "--benchmark", "circo", "--data-root", str(root), "--split", "val",
                                   "--backbone", "shapes-clip", "--method", "lincir", "--phi", "bad.safetensors",
                                   "--out", "ev"], tmp_path)
    assert last == "RC 2 TORCH False" and len(err) == 1 and "corrupted or truncated phi checkpoint" in err[0], err


def test_a_good_phi_passes_the_cheap_check(tmp_path):
    from lincir.cli.preflight import check_phi_option
    from lincir.core.phi import Phi
    from lincir.models.phi_checkpoints import save_phi

    save_phi(tmp_path / "run", Phi(8, 6), {"backbone": "shapes-clip"})
    check_phi_option(tmp_path / "run")  # a run folder
    check_phi_option(tmp_path / "run" / "phi.safetensors")
