"""Benchmarks by name: each loader reads a dataset folder as downloaded and returns a `Benchmark`.

Another benchmark (the shapes world) plugs in with `register_benchmark(name, loader)`, where
`loader(data_root, split, **options) -> Benchmark`.
"""
from __future__ import annotations

from typing import Callable

from lincir.data.image_refs import Crop, ImageRef
from lincir.errors import LincirError
from lincir.eval.benchmarks.base import Benchmark, Part, Query, Rankings
from lincir.eval.benchmarks.circo import load_circo, multi_target_metrics
from lincir.eval.benchmarks.cirr import load_cirr
from lincir.eval.benchmarks.fashioniq import load_fashioniq
from lincir.eval.benchmarks.genecis import load_genecis

BENCHMARKS: dict[str, Callable[..., Benchmark]] = {
    "fashioniq": load_fashioniq,
    "cirr": load_cirr,
    "circo": load_circo,
    "genecis": load_genecis,
}


def register_benchmark(name: str, loader: Callable[..., Benchmark]) -> None:
    """Add a benchmark loader under `name` (e.g. the shapes world)."""
    BENCHMARKS[name] = loader


def load_benchmark(name: str, data_root, split: str = "val", **options) -> Benchmark:
    """Load benchmark `name` from `data_root`; options go to its loader (None values are dropped)."""
    if name not in BENCHMARKS:
        raise LincirError(f"--benchmark: unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name](data_root, split, **{k: v for k, v in options.items() if v is not None})


__all__ = ["BENCHMARKS", "Benchmark", "Crop", "ImageRef", "Part", "Query", "Rankings", "load_benchmark",
           "multi_target_metrics", "register_benchmark"]
