import os

# Hugging Face libraries never reach the network from a test (their towers are built from local folders); set
# before anything imports huggingface_hub, which reads it once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Tests never touch the user's cache; every test is CPU-only. One thread: the tiny tensors of the tests gain
# nothing from two, and on a busy 2-core machine OpenMP's second thread costs several times over.
os.environ.setdefault("LINCIR_CACHE", os.path.join(os.path.dirname(__file__), ".." , ".pytest_cache", "lincir"))
# Cached features too (feature_cache.ENCODE_THREADS, read at import): one thread in each of make test's workers.
os.environ.setdefault("LINCIR_ENCODE_THREADS", "1")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test runs on one intra-op thread, whatever an earlier test set (same kernels, same bits)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    from lincir.train import loop

    monkeypatch.setenv("LINCIR_CACHE", str(tmp_path / "lincir-cache"))
    monkeypatch.setattr(loop, "_MASKED", {})  # the masked corpora kept in memory: every test starts cold


# Modules whose tests share one costly module fixture (the whole shapes main job: about 8 minutes on one thread).
# Under `make test`'s two xdist workers, each such module runs on one worker, so the fixture runs once while the
# other worker takes the rest of the suite. (xdist's own loadgroup relabels node ids, which pytest 9 ignores.)
_ONE_WORKER_MODULES = ("tests/test_world_targets.py",)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class _ModulesKeptTogether(LoadScopeScheduling):
        """One work unit per test, except one per module listed above; the largest units are handed out first."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in _ONE_WORKER_MODULES else nodeid

    return _ModulesKeptTogether(config, log)
