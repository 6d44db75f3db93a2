"""Distributed training: 2 processes with batch b end at the same phi as 1 process with batch 2b.

Everything random in a step is keyed by (seed, step, global slot), each rank takes its slots of the global
batch, and gradients are averaged, so the process count cannot change the result. Checked in process (two
simulated ranks, exact gradients) and end to end with `torchrun --nproc_per_node 2 -m lincir train` on gloo.
"""
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

import lincir.train.distributed as dist
from lincir.core.phi import Phi
from lincir.models.backbones import load_backbone
from lincir.train.config import RUNS, TrainConfig
from lincir.train.loop import _Data, train

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(backbone="shapes-clip", weights="random", world_captions=200, masking="random_word", device="cpu",
            steps=3, log_every=1, save_every=3, seed=5, lr=1e-4)


def _grads(data: _Data, backbone, phi: Phi, step: int) -> list[torch.Tensor]:
    phi.zero_grad(set_to_none=True)
    data.loss(backbone, phi, step).backward()
    return [p.grad.clone() for p in phi.parameters()]


def test_sharded_gradients_average_to_the_whole_batch(monkeypatch):
    """Two simulated ranks of batch 4 (their gradients averaged) against one process of batch 8: the same
    gradient, step after step, with dropout and noise on."""
    backbone = load_backbone("shapes-clip", "random")
    torch.manual_seed(0)
    phi = Phi.for_backbone(backbone).train()
    whole = _Data(TrainConfig(**{**TINY, "batch_size": 8}), backbone, progress=False)
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    sharded = _Data(TrainConfig(**{**TINY, "batch_size": 4}), backbone, progress=False)
    for step in (0, 1):
        per_rank = []
        for r in (0, 1):
            monkeypatch.setattr(dist, "rank", lambda r=r: r)
            per_rank.append(_grads(sharded, backbone, phi, step))
        monkeypatch.setattr(dist, "rank", lambda: 0)
        monkeypatch.setattr(dist, "world_size", lambda: 1)
        ref = _grads(whole, backbone, phi, step)
        monkeypatch.setattr(dist, "world_size", lambda: 2)
        for a, b, g in zip(per_rank[0], per_rank[1], ref):
            assert ((a + b) / 2 - g).abs().max().item() < 1e-6
        assert any((a - b).abs().max().item() > 1e-4 for a, b in zip(*per_rank))  # the ranks saw different data


def test_torchrun_two_processes_match_one_process(tmp_path):
    """`torchrun --nproc_per_node 2 -m lincir train` (gloo, CPU) with batch 2 per process against an
    in-process run with batch 4: phi within 1e-5; only rank 0 wrote the log and checkpoints."""
    out2 = tmp_path / "two"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "lincir", "train", "--out", str(out2), "--batch-size", "2", "--no-progress"]
    for k, v in TINY.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 3 steps") == 1  # rank 0 alone reports

    # The command's settings are the "world" preset's with the options above: the same here.
    train(dataclasses.replace(RUNS["world"], **TINY, batch_size=4), tmp_path / "one", progress=False)
    two, one = load_file(str(out2 / "phi.safetensors")), load_file(str(tmp_path / "one" / "phi.safetensors"))
    assert two.keys() == one.keys()
    assert max((two[k] - one[k]).abs().max().item() for k in one) < 1e-5
    steps = [json.loads(line)["step"] for line in (out2 / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # one writer: each step logged once
    assert json.loads((out2 / "config.json").read_text())["processes"] == 2
    assert not dist.active()  # the test process itself never joined a group
