"""The method at a glance: LinCIR's training (text only) against its inference (an image), as one figure."""
from __future__ import annotations

# Box colours: frozen CLIP towers, the one trained module, data.
FROZEN, TRAINED, DATA = "#d9d9d9", "#fdd49e", "#ffffff"

TRAINING = (  # (label, kind) left to right
    ('caption\n"a red star on\na black background"', DATA),
    ("CLIP text\nencoder (frozen)", FROZEN),
    ("z + noise\n(caption feature)", DATA),
    ("phi\n(trained)", TRAINED),
    ('token w fills the\nkeyword spans:\n"\\$ on \\$"', DATA),
    ("CLIP text\nencoder (frozen)", FROZEN),
    ("ẑ  ->  loss ||ẑ - z||²", DATA),
)
INFERENCE = (
    ("reference\nimage", DATA),
    ("CLIP image\nencoder (frozen)", FROZEN),
    ("v\n(image feature)", DATA),
    ("phi\n(the same)", TRAINED),
    ('token w in\n"a photo of \\$ that\nis blue instead"', DATA),
    ("CLIP text\nencoder (frozen)", FROZEN),
    ("query -> rank the\ngallery's images", DATA),
)


def method_diagram():
    """Two rows of boxes and arrows: training on a caption (top), a composed query at test time (bottom)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(13, 3.9))
    ax.set_xlim(0, 14)
    ax.set_ylim(0, 4.2)
    ax.axis("off")
    for y, title, boxes in ((3.0, "training: text only", TRAINING), (0.9, "inference: a composed query", INFERENCE)):
        ax.text(0.05, y + 0.82, title, fontsize=11, fontweight="bold", va="bottom")
        for i, (label, colour) in enumerate(boxes):
            x = 0.1 + i * 2.0
            ax.add_patch(FancyBboxPatch((x, y - 0.55), 1.75, 1.1, boxstyle="round,pad=0.04", facecolor=colour,
                                        edgecolor="#444444", linewidth=1.2))
            ax.text(x + 0.875, y, label, ha="center", va="center", fontsize=9)
            if i + 1 < len(boxes):
                ax.annotate("", xy=(x + 2.0, y), xytext=(x + 1.79, y),
                            arrowprops={"arrowstyle": "->", "color": "#444444", "lw": 1.3})
    ax.text(7.0, 0.05, "grey: frozen CLIP towers;  orange: phi, the only trained module;  white: data",
            ha="center", fontsize=9, color="#444444")
    fig.tight_layout()
    return fig
