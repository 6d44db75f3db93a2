"""Shipping a small CLIP with its token embedding pruned to the tokens its world's text uses.

At these sizes the embedding (49,408 rows) holds most of the parameters, yet a world's text uses about 200 of
them, and the rows of tokens never seen in training never received a gradient: they still hold the model's seeded
initialisation. So a shipped file keeps only the used rows ("token_embedding.weight", (k, width)) and their ids
("token_embedding.kept_ids"); loading fills every other row from the same seeded initialisation the training run
started from (load_backbone builds the model under torch.manual_seed(0), as the world CLIPs were trained), which
gives back the training run's own rows for those tokens, up to the float16 rounding of the unpruned file
(`lincir world ship-clip` checks every row).
"""
from __future__ import annotations

import torch

KEPT_IDS = "token_embedding.kept_ids"
EMBEDDING = "token_embedding.weight"


def prune_token_embedding(state: dict[str, torch.Tensor], keep_ids) -> dict[str, torch.Tensor]:
    """The state with the embedding cut to the rows keep_ids (sorted, unique), and those ids stored beside it."""
    ids = torch.as_tensor(sorted(set(int(i) for i in keep_ids)), dtype=torch.int64)
    if ids.numel() == 0 or int(ids[-1]) >= state[EMBEDDING].shape[0] or int(ids[0]) < 0:
        raise ValueError(f"keep_ids must be token ids in [0, {state[EMBEDDING].shape[0]})")
    out = dict(state)
    out[EMBEDDING] = state[EMBEDDING][ids].contiguous().clone()
    out[KEPT_IDS] = ids
    return out


def expand_token_embedding(state: dict[str, torch.Tensor], initial: torch.Tensor) -> dict[str, torch.Tensor]:
    """A pruned state made whole: every row from initial (vocab, width), the kept rows from the state."""
    if KEPT_IDS not in state:
        return state
    ids = state[KEPT_IDS].long()
    rows = state[EMBEDDING]
    if ids.ndim != 1 or rows.shape != (len(ids), initial.shape[1]) or int(ids.max()) >= initial.shape[0]:
        raise ValueError(f"pruned embedding of shape {tuple(rows.shape)} with {len(ids)} ids does not fit "
                         f"an embedding of shape {tuple(initial.shape)}")
    full = initial.detach().clone().to(rows.dtype)
    full[ids] = rows
    out = {k: v for k, v in state.items() if k != KEPT_IDS}
    out[EMBEDDING] = full
    return out
