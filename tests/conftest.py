import os

import pytest
import torch

# Tests never touch the user's cache; every test is CPU-only and single-threaded enough for 2 cores.
os.environ.setdefault("LINCIR_CACHE", os.path.join(os.path.dirname(__file__), ".." , ".pytest_cache", "lincir"))
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "lincir-cache"))
