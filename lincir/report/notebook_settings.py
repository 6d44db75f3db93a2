"""What every numbered notebook does in its first cells: resolve the quick switch and the folders, set the one
plot style, and check the parameters so that a bad one fails there with a one-line LincirError.

    s = settings("01_modality_gap", quick)   # quick = quick or LINCIR_QUICK=1
    s.figures, s.runs, s.main_job_dir          # figures/ and runs/ (figures/quick/, runs/quick/ when quick)
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from lincir.errors import LincirError
from lincir.models.backbones import WORLD_BACKBONES
from lincir.report.plotting import figures_dir, is_quick, repo_root, save_figure, save_numbers, use_style


@dataclass
class Settings:
    """A notebook's mode and folders (all absolute)."""

    notebook: str
    quick: bool
    root: Path  # the repository
    figures: Path  # figures/ or figures/quick/ (or $LINCIR_FIGURES)
    runs: Path  # runs/ or runs/quick/: trained phis and the main job
    started: float = field(default_factory=time.perf_counter)

    @property
    def main_job_dir(self) -> Path:
        """Where the main job (and every phi that 02, 03, 04 and 06 share) lives."""
        return self.runs / "world-main"

    @property
    def scenes_job_dir(self) -> Path:
        """Where the scenes world's main job (notebooks 01, 03 and 04 read it) and its phis live."""
        return self.runs / "scenes-main"

    @property
    def phi_root(self) -> Path:
        """The run folders of trained phis: one per training config, shared by all notebooks."""
        return self.main_job_dir / "runs"

    def elapsed(self) -> float:
        """Seconds since settings() was called (the notebook's own run time, nearly)."""
        return time.perf_counter() - self.started

    def rel(self, path) -> str:
        """A path as shown in outputs: relative to the repository (outputs are committed)."""
        return os.path.relpath(path, self.root)

    def save_figure(self, fig, name: str) -> list[Path]:
        return save_figure(fig, self.notebook, name, self.quick)

    def save_numbers(self, numbers: dict) -> Path:
        return save_numbers(self.notebook, numbers, self.quick)

    def results(self, text: str):
        """Markdown of a paragraph written from the run's numbers; in quick mode it opens with the smoke-test
        banner, so no quick-mode number reads as a result."""
        from IPython.display import Markdown

        from lincir.report.claims import QUICK_BANNER

        return Markdown(f"{QUICK_BANNER}\n\n{text}" if self.quick else text)


def settings(notebook: str, quick: bool = False) -> Settings:
    """Resolve the quick switch (the parameter or LINCIR_QUICK=1), the folders, and set the plot style."""
    quick = is_quick(quick)
    if os.environ.get("LINCIR_PROGRESS") == "text":  # set by `lincir reproduce`
        import tqdm.auto
        import tqdm.std

        tqdm.auto.tqdm = tqdm.std.tqdm  # plain-text bars: a saved notebook shows their last state, not a widget
    root = repo_root()
    runs = root / "runs" / ("quick" if quick else "")
    runs.mkdir(parents=True, exist_ok=True)
    use_style()
    return Settings(notebook, quick, root, figures_dir(quick), runs)


def main_job_config(quick: bool, backbone: str = "shapes-clip", weights: str = "pretrained", **changes):
    """The main job's preset ("quick" or "full") for a world backbone: the trainings every notebook shares."""
    from lincir.experiments.main_job_config import PRESETS

    return dataclasses.replace(PRESETS["quick" if quick else "full"], backbone=backbone, weights=weights, **changes)


def scenes_results(s: Settings, log=print) -> dict:
    """The scenes world's main job for this mode (the "quick" or "full" preset): read back when it was already
    run for that preset, else run now (its phis are reused across notebooks); copied to figures/ as
    scenes_main_job.json (and its timings, when run now)."""
    from lincir.experiments.scenes_job_config import PRESETS
    from lincir.experiments.scenes_main_job import scenes_results as job_results
    from lincir.storage import atomic_write_json

    results = job_results(PRESETS["quick" if s.quick else "full"], s.scenes_job_dir, progress=False, log=log)
    # Beside the notebooks' figures, as every saved number is (the README's tables are drawn from this file).
    atomic_write_json(s.figures / "scenes_main_job.json", {k: v for k, v in results.items() if k != "timings"})
    if "timings" in results:
        atomic_write_json(s.figures / "scenes_main_job_timings.json", results["timings"])
    return results


# ---------------------------------------------------------------- parameter checks (one-line errors)


def check_backbone(name: str, weights: str = "pretrained", device: str = "cpu", option: str = "backbone"):
    """Load a backbone by name; an unknown name, or weights that cannot be found, fail here."""
    from lincir.models.backbones import BACKBONES, load_backbone

    if name not in BACKBONES:
        raise LincirError(f"{option}: unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    return load_backbone(name, weights, device)


def check_world_backbone(name: str, option: str = "backbone") -> str:
    """The embedded benchmark is 64x64 renders: only the world CLIPs can see it."""
    from lincir.models.backbones import BACKBONES

    if name not in BACKBONES:
        raise LincirError(f"{option}: unknown backbone {name!r}; choose from {', '.join(BACKBONES)}")
    if name not in WORLD_BACKBONES:
        raise LincirError(f"{option}: the embedded shapes world needs a world CLIP ({', '.join(WORLD_BACKBONES)}), "
                          f"not {name!r}; real backbones run on real data (set the data parameters)")
    return name


def check_path(option: str, path, kind: str = "file") -> Path:
    """An existing file or folder named by a parameter."""
    p = Path(os.path.expanduser(str(path)))
    ok = p.is_file() if kind == "file" else p.is_dir()
    if not ok:
        raise LincirError(f"{option}: {kind} not found: {p}")
    return p


def check_choice(option: str, value, choices: Iterable) -> None:
    choices = list(choices)
    if value not in choices:
        raise LincirError(f"{option}: {value!r} is not one of {', '.join(map(str, choices))}")


def check_positive(option: str, value, integer: bool = True) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else isinstance(value, (int, float))
    if not ok or value <= 0:
        raise LincirError(f"{option}: {value!r} must be a positive {'integer' if integer else 'number'}")
