"""Re-execute the numbered notebooks in order with papermill: the project's main command (`lincir reproduce`).

A full run executes each notebook IN PLACE (kernel python3, working directory notebooks/), so the committed
notebooks hold exactly the outputs of this command, and writes figures/ and its JSON. A quick run
(`--quick`, LINCIR_QUICK=1 in the kernels) writes its executed copies to runs/quick/notebooks/ and its figures to
figures/quick/, and never touches the committed notebooks or the full results. A notebook is replaced only
when it ran to the end; a failed run leaves its partial copy in runs/failed/.
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Callable, Sequence

from lincir.errors import LincirError
from lincir.storage import atomic_write_json
from lincir.report.plotting import repo_root

NOTEBOOK_PATTERN = re.compile(r"^(\d\d)_[A-Za-z0-9_]+\.ipynb$")
KERNEL = "python3"


def notebooks(root: Path, only: Sequence[str] = ()) -> list[Path]:
    """The numbered notebooks in order; `only` keeps those whose number or name is listed ("03", "03_ablations")."""
    found = sorted(p for p in (root / "notebooks").glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not found:
        raise LincirError(f"{root / 'notebooks'}: no numbered notebooks (NN_name.ipynb)")
    if not only:
        return found
    wanted = [w.strip().removesuffix(".ipynb") for item in only for w in item.split(",") if w.strip()]
    picked = [p for p in found if p.stem[:2] in wanted or p.stem in wanted]
    unknown = [w for w in wanted if not any(p.stem[:2] == w or p.stem == w for p in found)]
    if unknown:
        raise LincirError(f"--only: no notebook {unknown[0]!r}; choose from {', '.join(p.stem for p in found)}")
    return picked


def kernel_env(root: Path, quick: bool) -> dict[str, str]:
    """The environment the kernels inherit: the quick switch set or cleared, and the repository importable."""
    env = dict(os.environ)
    if quick:
        env["LINCIR_QUICK"] = "1"
    else:
        env.pop("LINCIR_QUICK", None)  # a full run must never write quick outputs into the notebooks
    env["LINCIR_PROGRESS"] = "text"  # progress bars as text, updated every few seconds (see notebook.settings)
    env.setdefault("TQDM_MININTERVAL", "3")
    paths = [str(root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(root)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def execute(path: Path, out: Path, root: Path, progress: bool = True) -> None:
    """Run one notebook with papermill (cwd notebooks/) into `out`, written only on success; a failure raises
    LincirError and leaves the partial copy in runs/failed/."""
    import papermill

    cwd = root / "notebooks"
    partial = root / "runs" / "running" / path.name  # never inside notebooks/ (nbval would collect it)
    partial.parent.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(str(path), str(partial), kernel_name=KERNEL, cwd=str(cwd),
                                   progress_bar=progress, log_output=False)
    except Exception as e:
        failed = root / "runs" / "failed" / path.name
        failed.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            os.replace(partial, failed)
        detail = str(e).strip().splitlines()
        reason = next((l for l in reversed(detail) if l.strip()), type(e).__name__)[:300]
        raise LincirError(f"{path.name}: failed ({reason}); the executed copy is in {failed}") from None
    _relative_paths(partial, root, path, out)
    os.replace(partial, out)


def _relative_paths(executed: Path, root: Path, source: Path, out: Path) -> None:
    """papermill records absolute paths in the notebook's metadata: keep them relative to the repository,
    so the committed notebooks do not carry the machine they ran on."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    meta = nb.metadata.get("papermill", {})
    for key, p in (("input_path", source), ("output_path", out)):
        if key in meta:
            meta[key] = str(Path(p).resolve().relative_to(root.resolve()))
    nbformat.write(nb, executed)


def reproduce(quick: bool = False, only: Sequence[str] = (), root: Path | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict:
    """Execute the notebooks in order; returns {notebook: seconds} (also written beside the figures)."""
    root = root or repo_root()
    todo = notebooks(root, only)
    env_before, env_kernel = dict(os.environ), kernel_env(root, quick)
    os.environ.clear()
    os.environ.update(env_kernel)  # papermill starts each kernel with this process's environment
    timings: dict[str, float] = {}
    try:
        for path in todo:
            out = root / "runs" / "quick" / "notebooks" / path.name if quick else path
            log(f"[{len(timings) + 1}/{len(todo)}] {path.name} -> {out.relative_to(root)}")
            t = time.perf_counter()
            execute(path, out, root, progress)
            timings[path.stem] = round(time.perf_counter() - t, 1)
            log(f"    {timings[path.stem]:.0f} s")
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    figures = root / "figures" / ("quick" if quick else "")
    record = {"quick": quick, "seconds": timings, "total_seconds": round(sum(timings.values()), 1),
              "notebooks": [p.name for p in todo]}
    if not only:
        atomic_write_json(figures / "reproduce.json", record)
    return record
