"""What notebooks display besides figures: the SMP highlight table, rows for image grids, the query widget."""
from __future__ import annotations

import html
from typing import Sequence

from lincir.experiments.examples import SearchResult


# JupyterLab, nbconvert's HTML and Jupyter Book typeset text between two "$" as math, in HTML outputs too; the
# placeholder is "$", so every table that shows masked texts is marked for MathJax (2 and 3) to skip.
NO_MATH_CLASS = "tex2jax_ignore mathjax_ignore"


def no_math(html_text: str) -> str:
    """html_text in a container that MathJax leaves alone (the placeholder "$" stays a dollar sign)."""
    return f"<div class='{NO_MATH_CLASS}'>{html_text}</div>"


def table_html(frame) -> str:
    """A pandas DataFrame as HTML that is never typeset as math."""
    return no_math(frame.to_html(escape=True))


def highlight_html(rows: Sequence[dict]) -> str:
    """An HTML table: captions with keyword spans highlighted, the masked text, and the fallback taken."""
    def marked(c: str, spans) -> str:
        out, pos = [], 0
        for s, e in spans:
            out += [html.escape(c[pos:s]), f"<mark style='background:#fdd49e'>{html.escape(c[s:e])}</mark>"]
            pos = e
        return "".join(out + [html.escape(c[pos:])])

    cells = "".join(f"<tr><td style='text-align:left'>{marked(r['caption'], r['spans'])}</td>"
                    f"<td style='text-align:left'><code>{html.escape(r['masked'])}</code></td>"
                    f"<td style='text-align:left'>{html.escape(r['how'])}</td></tr>" for r in rows)
    return no_math("<table><tr><th>caption (keyword spans highlighted)</th><th>masked text (training input)</th>"
                   f"<th>how</th></tr>{cells}</table>")


def search_rows(result: SearchResult, images, labels=None) -> list[dict]:
    """Rows for plotting.image_rows, one per method (images: gallery images by index, uint8 (H, W, 3))."""
    rows = []
    for m, idx in result.ranked.items():
        rows.append({"reference": result.reference, "text": f"[{m}] {result.text}",
                     "results": [images[i] for i in idx], "hits": [False] * len(idx),
                     "labels": [labels[i] for i in idx] if labels is not None else None})
    return rows


def explorer(run_search, n_references: int, default_text: str):
    """An ipywidgets panel (reference slider, text box, button) calling run_search(index, text) -> a figure;
    None when ipywidgets is not installed (then call run_search directly)."""
    try:
        import ipywidgets as w
    except ImportError:
        return None
    import matplotlib.pyplot as plt
    from IPython.display import display

    ref = w.IntSlider(value=0, min=0, max=n_references - 1, description="reference")
    text = w.Text(value=default_text, description="modify:", layout=w.Layout(width="60%"))
    button, out = w.Button(description="search"), w.Output()

    def on_click(_):
        with out:
            out.clear_output(wait=True)
            fig = run_search(ref.value, text.value)
            display(fig)
            plt.close(fig)

    button.on_click(on_click)
    return w.VBox([w.HBox([ref, text, button]), out])
