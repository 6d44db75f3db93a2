"""What notebooks display besides figures: the SMP highlight table, rows for image grids, the query widget."""
from __future__ import annotations

import html
from typing import Sequence

from lincir.experiments.examples import QuerySpec, SearchResult


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


def describe(attrs: dict | None) -> str:
    """A combination in words, in attribute order: "heart green small left black"."""
    return " ".join(attrs.values()) if attrs else ""


def search_rows(result: SearchResult, images, labels=None) -> list[dict]:
    """Rows for plotting.image_rows, one per method (images: gallery images by index, uint8 (H, W, 3)); a result
    with ground truth marks which retrieved images are ground truth ("hits")."""
    rows = []
    for m, idx in result.ranked.items():
        rows.append({"reference": result.reference, "name": m, "text": "",
                     "results": [images[i] for i in idx], "hits": result.hits(m),
                     "labels": [labels[i] for i in idx] if labels is not None else None})
    return rows


def query_title(spec: QuerySpec, n_gallery: int) -> str:
    """The figure title of a query: its text, and the target with its ground truths, or that none is known."""
    head = f"{spec.label}: \u201ca photo of \\$ that {spec.text}\u201d"  # \\$: a dollar sign, not mathtext
    if spec.has_ground_truth:
        n = len(spec.ground_truth)
        which = "its only ground truth" if n == 1 else f"one of its {n} ground truths"
        return f"{head}\ntarget: {describe(spec.target)} \u2014 green frame: {which} in {n_gallery:,} gallery images"
    return f"{head}\nno ground truth known (a custom text): no frame marks a correct result"


METHOD_WORDS = {"image": "the reference image alone", "text": "the text alone", "image+text": "image + text",
                "lincir": "LinCIR"}


def query_summary(spec: QuerySpec, result: SearchResult, k: int, n_gallery: int) -> str:
    """Markdown written from a query's results: what it changes, and where each method ranks its first ground
    truth (or, without ground truth, what LinCIR ranks first)."""
    if not spec.has_ground_truth:
        top = result.ranked.get("lincir", next(iter(result.ranked.values())))
        return ("No ground truth is known for a custom text, so nothing is marked: judge the rows by eye. "
                f"LinCIR's top result is gallery image {top[0]}.")
    changed = " and ".join(spec.changed)
    ranks = result.first_hit
    parts = [f"{METHOD_WORDS.get(m, m)} at rank {r:,}" for m, r in ranks.items()]
    inside = [METHOD_WORDS.get(m, m) for m, r in ranks.items() if r <= k]
    best = min(ranks.values())
    winners = [METHOD_WORDS.get(m, m) for m, r in ranks.items() if r == best]
    n = len(spec.ground_truth)
    text = (f"This query changes the {changed} (from {describe(spec.reference_attrs)} to {describe(spec.target)}; "
            f"{n} ground truth{'s' if n != 1 else ''} among {n_gallery:,} gallery images). The first ground truth "
            f"comes at: {'; '.join(parts)}. ")
    text += (f"Within the top {k}: {', '.join(inside)}. " if inside else f"No method has one in its top {k}. ")
    text += f"Best: {' and '.join(winners)} (rank {best:,}); one query, one run: an example, not a measurement."
    return text


def explorer_state(spec: QuerySpec | None, n_references: int, preset_names=()) -> dict:
    """The explorer's initial values, from the notebook's parameters: {"preset": a preset name or "custom",
    "reference": a query index, "text": str, "message": str or None}."""
    if spec is None:
        return {"preset": "custom", "reference": 0, "text": "is green instead", "message": None}
    preset = spec.preset if spec.preset in preset_names else "custom"
    if isinstance(spec.reference, int) and 0 <= spec.reference < n_references:
        return {"preset": preset, "reference": spec.reference, "text": spec.text, "message": None}
    return {"preset": "custom", "reference": 0, "text": spec.text,
            "message": "the panel searches the benchmark's references; your file reference is in the figure above"}


def explorer(run_search, n_references: int, state: dict, presets: dict | None = None):
    """An ipywidgets panel (preset menu, reference slider, text box, button) calling run_search(index, text) ->
    a figure, starting from state (explorer_state); None when ipywidgets is not installed."""
    try:
        import ipywidgets as w
    except ImportError:
        return None
    import matplotlib.pyplot as plt
    from IPython.display import display

    presets = presets or {}
    choice = w.Dropdown(options=["custom", *presets], value=state["preset"], description="preset")
    ref = w.IntSlider(value=state["reference"], min=0, max=n_references - 1, description="reference")
    text = w.Text(value=state["text"], description="modify:", layout=w.Layout(width="50%"))
    button, out = w.Button(description="search"), w.Output()
    note = w.HTML(state["message"] or "")

    def on_preset(change):
        if change["new"] in presets:
            ref.value, text.value = presets[change["new"]].reference, presets[change["new"]].text

    def on_click(_):
        with out:
            out.clear_output(wait=True)
            fig = run_search(ref.value, text.value)
            display(fig)
            plt.close(fig)

    choice.observe(on_preset, names="value")
    button.on_click(on_click)
    return w.VBox([w.HBox([choice, ref]), w.HBox([text, button]), note, out])
