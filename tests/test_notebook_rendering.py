"""The notebooks render as written: no markdown cell holds two bare "$", which JupyterLab, nbconvert and GitHub
would typeset as math (the placeholder belongs in a code span)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def bare_dollars(markdown: str) -> int:
    """Dollar signs outside code spans and fences that are not escaped."""
    text = re.sub(r"```.*?```|<code>.*?</code>|`[^`]*`", "", markdown, flags=re.S)
    return len(re.findall(r"(?<!\\)\$", text))


def test_the_check_sees_a_bare_pair():
    assert bare_dollars('masked by "$", as in "a photo of $"') == 2
    assert bare_dollars("masked by `$`, as in `a photo of $`, or \\$") == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_markdown_cell_typesets_the_placeholder(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    bad = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and bare_dollars("".join(c["source"])) >= 2]
    assert not bad, f"{path.name}: markdown cells {bad} hold two bare '$'"
