"""torch.distributed for `lincir train` under torchrun: one process per GPU (or CPU process with gloo).

Without torchrun every function degrades to the single-process case, so the trainer has one code path.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
import torch.distributed as td

from lincir.models.backbones import resolve_device


def _launched() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> None:
    """Join the process group torchrun describes in the environment (NCCL on CUDA, else gloo)."""
    if _launched() and not td.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        td.init_process_group(backend=backend)


def active() -> bool:
    return td.is_available() and td.is_initialized()


def rank() -> int:
    return td.get_rank() if active() else 0


def world_size() -> int:
    return td.get_world_size() if active() else 1


def barrier() -> None:
    if active():
        td.barrier()


def local_rank() -> int:
    """This process's index on its machine (torchrun's LOCAL_RANK; 0 without torchrun)."""
    return int(os.environ.get("LOCAL_RANK", "0")) if active() else 0


@contextmanager
def local_main_first() -> Iterator[None]:
    """Run the block on each machine's first process before the others: what it writes to the machine's
    cache (keyword spans, target features) is then read, not recomputed, by the other processes there.

    Every process calls barrier() exactly once, so the pattern holds on any number of machines.
    """
    first = local_rank() == 0
    if not first:
        barrier()
    try:
        yield
    finally:
        if first:
            barrier()


def device_for_rank(device: str) -> torch.device:
    """--device auto under torchrun: this process's GPU (LOCAL_RANK), else the CPU."""
    if active() and device == "auto" and torch.cuda.is_available():
        local = local_rank()
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return resolve_device(device)


def average_gradients(module: torch.nn.Module) -> None:
    """Mean of every gradient over processes: with equal per-process batches, the gradient of the global
    batch's mean loss, the same as one process with the whole batch."""
    if not active():
        return
    n = world_size()
    for p in module.parameters():
        if p.grad is not None:
            td.all_reduce(p.grad, op=td.ReduceOp.SUM)
            p.grad.div_(n)


def mean_scalar(x: torch.Tensor) -> float:
    if active():
        x = x.clone()
        td.all_reduce(x, op=td.ReduceOp.SUM)
        x /= world_size()
    return float(x)


def shutdown() -> None:
    if active():
        td.destroy_process_group()
