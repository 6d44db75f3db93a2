"""The notebooks render as written: no markdown cell holds two bare "$", which JupyterLab, nbconvert and GitHub
would typeset as math (the placeholder belongs in a code span)."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def bare_dollars(markdown: str) -> int:
    """Dollar signs outside code spans, fences and display-math blocks (a line opening with `$$` up to the
    closing `$$`: real math, typeset on purpose) that are not escaped."""
    text = re.sub(r"```.*?```|<code>.*?</code>|`[^`]*`", "", markdown, flags=re.S)
    text = re.sub(r"^[ \t]*\$\$.+?\$\$[ \t]*$", "", text, flags=re.DOTALL | re.MULTILINE)
    return len(re.findall(r"(?<!\\)\$", text))


def test_the_check_sees_a_bare_pair():
    assert bare_dollars('masked by "$", as in "a photo of $"') == 2
    assert bare_dollars("masked by `$`, as in `a photo of $`, or \\$") == 0
    assert bare_dollars("the split:\n$$\n|x - y|^2 = a^2\n$$\nand no more") == 0  # display math is real math
    assert bare_dollars("$$ a $$ then a photo of $ and $") >= 2  # not a display block: typeset


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_markdown_cell_typesets_the_placeholder(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    bad = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown" and bare_dollars("".join(c["source"])) >= 2]
    assert not bad, f"{path.name}: markdown cells {bad} hold two bare '$'"


def html_bare_dollars(html_text: str) -> int:
    """Dollar signs in an HTML output that MathJax would see: outside <code>/<pre> and outside a container marked
    tex2jax_ignore / mathjax_ignore (lincir.report.display.no_math)."""
    text = re.sub(r"<div class='tex2jax_ignore mathjax_ignore'>.*</div>", "", html_text, flags=re.S)
    text = re.sub(r"<(code|pre)\b.*?</\1>", "", text, flags=re.S)
    return len(re.findall(r"(?<!\\)\$", text))


def test_the_html_check_sees_a_bare_pair_and_the_fix_hides_it():
    import pandas as pd

    from lincir.report.display import highlight_html, table_html

    frame = pd.DataFrame({"masked text": ["a $ on the $", "$"]})
    assert html_bare_dollars(frame.to_html()) == 3
    assert html_bare_dollars(table_html(frame)) == 0
    rows = [{"caption": "a red cube", "spans": [(0, 10)], "masked": "$", "how": "keywords ($)"}]
    assert html_bare_dollars(highlight_html(rows)) == 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_output_typesets_the_placeholder(path):
    """Displayed tables and generated markdown are typeset too: none may show two bare "$"."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    bad = []
    for i, c in enumerate(cells):
        for out in c.get("outputs", []):
            data = out.get("data", {})
            if html_bare_dollars("".join(data.get("text/html", ""))) >= 2 or \
                    bare_dollars("".join(data.get("text/markdown", ""))) >= 2:
                bad.append(i)
    assert not bad, f"{path.name}: outputs of cells {bad} show two bare '$' (use lincir.report.display.no_math)"
