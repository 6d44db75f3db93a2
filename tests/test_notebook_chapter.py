"""The notebooks read as one chapter (lincir.report.chapter): each opens with what it teaches and where it sits in
the paper, shows its measured runtime, and ends with takeaways, exercises, a try-it cell and links to its
neighbours; the README lists them all."""
import json
from pathlib import Path

import pytest

from lincir.report import chapter

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {p.stem: p for p in sorted((ROOT / "notebooks").glob("*.ipynb"))}
RUNTIME_CELL = "runtime = display(Markdown(runtime_line(s.notebook)), display_id=True)"
# After its numbers are saved, the notebook rewrites that first output with this run's own time.
RUNTIME_UPDATE = "runtime.update(Markdown(runtime_line(s.notebook)))"


def cells(stem: str) -> list[dict]:
    return json.loads(NOTEBOOKS[stem].read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def test_the_chapter_registry_is_the_notebooks_folder():
    assert tuple(NOTEBOOKS) == chapter.STEMS


@pytest.mark.parametrize("stem", chapter.STEMS)
def test_each_notebook_opens_with_what_it_teaches_and_its_place_in_the_paper(stem):
    first = text(cells(stem)[0])
    assert first.startswith(f"# {stem[:2]} · ")
    assert "**What you will learn**" in first and first.count("\n- ") >= 3
    assert f"**Where this sits in the paper**: {chapter.notebook(stem).paper}." in first


@pytest.mark.parametrize("stem", chapter.STEMS)
def test_each_notebook_shows_its_measured_runtime_after_its_settings(stem):
    cs = cells(stem)
    at = [i for i, c in enumerate(cs) if c["cell_type"] == "code" and text(c).strip() == RUNTIME_CELL]
    assert len(at) == 1, f"{stem}: one runtime cell"
    assert "settings(" in text(cs[at[0] - 1]), f"{stem}: the runtime cell follows the settings cell"
    saves = [i for i, c in enumerate(cs) if "s.save_numbers(" in text(c)]
    assert saves and RUNTIME_UPDATE in text(cs[saves[-1]]).split("s.save_numbers(", 1)[1], \
        f"{stem}: the runtime line is updated after the numbers are saved"


@pytest.mark.parametrize("stem", chapter.STEMS)
def test_each_notebook_ends_with_takeaways_exercises_a_try_it_cell_and_links(stem):
    cs = cells(stem)
    assert cs[-2]["cell_type"] == "markdown" and text(cs[-2]).startswith("Checks"), f"{stem}: the checks stay last"
    nav = cs[-3]
    assert nav["cell_type"] == "markdown" and text(nav).strip() == chapter.navigation(stem)
    assert cs[-4]["cell_type"] == "code" and text(cs[-4]).strip(), f"{stem}: a try-it cell before the links"
    assert text(cs[-5]).startswith("## Exercises") and text(cs[-5]).count("\n1. ") + text(cs[-5]).count("\n2. ") >= 2
    heads = [text(c).splitlines()[0] for c in cs if c["cell_type"] == "markdown" and text(c)]
    assert "## Key takeaways" in heads, f"{stem}: a takeaways section"


def test_links_point_at_the_neighbours_and_they_exist():
    for i, stem in enumerate(chapter.STEMS):
        nav = chapter.navigation(stem)
        if i > 0:
            assert f"({chapter.STEMS[i - 1]}.ipynb)" in nav and nav.startswith("Previous:")
        else:
            assert "Previous" not in nav
        if i + 1 < len(chapter.STEMS):
            assert f"({chapter.STEMS[i + 1]}.ipynb)" in nav
        else:
            assert "Next" not in nav
    for target in chapter.STEMS:
        assert (ROOT / "notebooks" / f"{target}.ipynb").is_file()


def test_runtime_line_reads_the_saved_runs(tmp_path):
    (tmp_path / "figures" / "quick").mkdir(parents=True)
    assert "not measured yet" in chapter.runtime_line("03_ablations", tmp_path)
    (tmp_path / "figures" / "03_ablations.json").write_text(json.dumps({"seconds": 512.0}))
    (tmp_path / "figures" / "quick" / "03_ablations.json").write_text(json.dumps({"seconds": 41.4}))
    line = chapter.runtime_line("03_ablations", tmp_path)
    assert "full run 9 min" in line and "quick run 41 s" in line
    (tmp_path / "figures" / "03_ablations.json").write_text("{broken")
    assert "full run not measured yet" in chapter.runtime_line("03_ablations", tmp_path)


def test_the_readme_lists_the_chapter():
    assert chapter.index_table() in (ROOT / "README.md").read_text(encoding="utf-8")
