"""Interrupted training loses nothing: a `lincir train` process killed with SIGKILL (or stopped with Ctrl-C)
mid-run and restarted with `--resume` ends with exactly the phi (bit for bit on CPU) of an uninterrupted run."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from lincir.cli import main
from lincir.storage import atomic_write

REPO = Path(__file__).resolve().parents[1]
STEPS = 60
TINY = ["--backbone", "shapes-clip", "--weights", "random", "--world-captions", "400", "--batch-size", "16",
        "--steps", str(STEPS), "--save-every", "5", "--log-every", "1", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory) -> Path:
    """The uninterrupted run, in-process (its own cache folder)."""
    out = tmp_path_factory.mktemp("whole") / "run"
    old = os.environ.get("LINCIR_CACHE")
    os.environ["LINCIR_CACHE"] = str(out.parent / "cache")
    try:
        torch.set_num_threads(1)
        assert main(["train", *TINY, "--out", str(out)]) == 0
    finally:
        if old is None:
            del os.environ["LINCIR_CACHE"]
        else:
            os.environ["LINCIR_CACHE"] = old
    return out


def start_training(out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "lincir", "train", *TINY, "--out", str(out)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def checkpoint_step(path: Path) -> int:
    with safe_open(str(path), "pt") as fh:
        return int(fh.metadata()["step"])


def wait_past_a_checkpoint(proc: subprocess.Popen, out: Path, more_steps: int = 3, timeout: float = 240) -> int:
    """Block until a checkpoint exists and the log shows `more_steps` steps beyond it; return the logged step."""
    deadline = time.monotonic() + timeout
    ckpt, log = out / "checkpoint.safetensors", out / "log.jsonl"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"training ended (exit {proc.returncode}) before it could be interrupted: {err[-2000:]}")
        if ckpt.exists() and log.exists():
            rows = [json.loads(line) for line in log.read_text().splitlines() if line.endswith("}")]
            if rows and rows[-1]["step"] >= checkpoint_step(ckpt) + more_steps:
                return rows[-1]["step"]
        time.sleep(0.005)
    proc.kill()
    pytest.fail("training made no progress in time")


def assert_same_run(a: Path, b: Path) -> None:
    assert (a / "phi.safetensors").read_bytes() == (b / "phi.safetensors").read_bytes()
    assert (a / "checkpoint.safetensors").read_bytes() == (b / "checkpoint.safetensors").read_bytes()
    assert json.loads((a / "phi.json").read_text()) == json.loads((b / "phi.json").read_text())
    steps = [json.loads(line)["step"] for line in (b / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))  # each step logged once, in order, across the interruption


@pytest.mark.slow  # a fresh `python -m lincir` process: about 12 s of imports
def test_sigkill_mid_run_then_resume_gives_the_same_phi(tmp_path, whole_run):
    out = tmp_path / "run"
    proc = start_training(out)
    seen = wait_past_a_checkpoint(proc, out)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: whatever was on disk is all there is
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = checkpoint_step(out / "checkpoint.safetensors")
    assert 5 <= saved < STEPS and saved % 5 == 0 and seen > saved, (saved, seen)
    assert not (out / "phi.safetensors").exists()
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    assert_same_run(whole_run, out)
    assert not list(out.glob(".*.tmp"))  # a write the kill cut short leaves nothing behind after the resume


@pytest.mark.slow  # a fresh `python -m lincir` process: about 12 s of imports
def test_sigint_saves_a_checkpoint_that_resumes(tmp_path, whole_run):
    out = tmp_path / "run"
    proc = start_training(out)
    seen = wait_past_a_checkpoint(proc, out)
    proc.send_signal(signal.SIGINT)  # Ctrl-C: stop at the next step boundary and save there
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1] == "lincir train: interrupted"
    saved = checkpoint_step(out / "checkpoint.safetensors")
    assert seen <= saved < STEPS, (seen, saved)  # saved where it stopped, not at the last periodic checkpoint
    assert f"checkpoint at step {saved} saved" in stdout and "--resume" in stdout
    assert not (out / "phi.safetensors").exists()
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    assert_same_run(whole_run, out)


@pytest.mark.parametrize("signals,saved_at", [
    ([signal.SIGTERM], 8),  # a scheduler's notice: the step in progress finishes and is saved
    ([signal.SIGINT, signal.SIGINT], 5),  # a second Ctrl-C stops inside the step: nothing half-updated is saved
])
def test_signal_during_a_step(tmp_path, whole_run, monkeypatch, capsys, signals, saved_at):
    from lincir.train import loop as training

    real, calls = training.smp_loss, []

    def loss_then_signal(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # inside step 8's computation
            for sig in signals:
                os.kill(os.getpid(), sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "smp_loss", loss_then_signal)
    out = tmp_path / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 130
    assert checkpoint_step(out / "checkpoint.safetensors") == saved_at
    assert not (out / "phi.safetensors").exists()
    if len(signals) > 1:
        assert "nothing saved; last checkpoint: step 5" in capsys.readouterr().out
    monkeypatch.setattr(training, "smp_loss", real)
    assert main(["train", *TINY, "--out", str(out), "--resume"]) == 0
    assert_same_run(whole_run, out)


class Killed(BaseException):
    """Stands for the process dying in the middle of a write."""


def test_a_write_cut_short_keeps_the_old_file(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    path.write_bytes(b"the last good checkpoint")

    def half_then_die(tmp):
        Path(tmp).write_bytes(b"the new one, half writ")
        raise Killed

    with pytest.raises(Killed):
        atomic_write(path, half_then_die)
    assert path.read_bytes() == b"the last good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.safetensors"]
