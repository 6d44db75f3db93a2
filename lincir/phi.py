"""phi: the only trained part of LinCIR, a CLIP feature (d) -> a pseudo-word token embedding (w)."""
from __future__ import annotations

import torch
import torch.nn as nn


class KeyedDropout(nn.Dropout):
    """Dropout whose mask for each sample can come from that sample's own generator.

    With `generators` (one per sample) the result depends only on each sample's key, never on which
    process or batch the sample shares: the property distributed training relies on.
    """

    def forward(self, x: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        if not self.training or self.p == 0.0 or generators is None:
            return super().forward(x)
        keep = 1.0 - self.p
        masks = [torch.rand(x.shape[1:], generator=g) < keep for g in generators]  # per-sample (...,)
        mask = torch.stack(masks).to(device=x.device, dtype=x.dtype)
        return x * mask / keep


class Phi(nn.Module):
    """Linear(d, 4d) - GELU - Dropout - Linear(4d, 4d) - GELU - Dropout - Linear(4d, w), as in the paper.

    `layers` keeps the authors' indices (layers.0, layers.3, layers.6) so their checkpoints load as is.
    """

    def __init__(self, embed_dim: int, token_width: int, dropout: float = 0.5, hidden_dim: int | None = None):
        super().__init__()
        hidden = hidden_dim or 4 * embed_dim
        self.embed_dim, self.token_width, self.hidden_dim, self.dropout = embed_dim, token_width, hidden, dropout
        self.layers = nn.Sequential(
            nn.Linear(embed_dim, hidden),
            nn.GELU(),
            KeyedDropout(dropout),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            KeyedDropout(dropout),
            nn.Linear(hidden, token_width),
        )

    @classmethod
    def for_backbone(cls, backbone, dropout: float = 0.5) -> "Phi":
        return cls(backbone.embed_dim, backbone.token_width, dropout=dropout)

    def forward(self, x: torch.Tensor, generators: list[torch.Generator] | None = None) -> torch.Tensor:
        # x: (B, d) -> (B, w)
        for layer in self.layers:
            x = layer(x, generators) if isinstance(layer, KeyedDropout) else layer(x)
        return x

    def config(self) -> dict:
        return {"embed_dim": self.embed_dim, "token_width": self.token_width,
                "hidden_dim": self.hidden_dim, "dropout": self.dropout}
