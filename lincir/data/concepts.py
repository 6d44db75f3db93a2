"""Concept phrases for the SEARLE-style baseline's regulariser: `concept<TAB>phrase` lines, each phrase holding its
concept as a whole word (SEARLE generates them with a language model; any phrase list will do)."""
from __future__ import annotations

import re
from pathlib import Path

from lincir.errors import LincirError


def concept_regex(concept: str) -> re.Pattern:
    """The concept as a whole word or phrase."""
    return re.compile(rf"(?<!\w){re.escape(concept)}(?!\w)")


def read_concepts(path: str | Path) -> dict[str, list[str]]:
    """{concept: [phrases]} from a UTF-8 file of `concept<TAB>phrase` lines (blank lines and # comments skipped)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise LincirError(f"{path}: cannot read the concept file ({type(e).__name__})") from None
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise LincirError(f"{path}:{n}: expected 'concept<TAB>phrase'")
        concept, phrase = parts[0].strip().lower(), parts[1].strip().lower()
        if "$" in phrase or "$" in concept:
            raise LincirError(f"{path}:{n}: holds the placeholder '$'")
        if not concept_regex(concept).search(phrase):
            raise LincirError(f"{path}:{n}: the phrase does not contain its concept {concept!r} as a word")
        out.setdefault(concept, []).append(phrase)
    if not out:
        raise LincirError(f"{path}: no concept phrases")
    return out


def mask_concept(phrase: str, concept: str) -> str:
    """The phrase with its concept's first occurrence replaced by the placeholder, set apart by spaces: CLIP's
    BPE would otherwise merge "$" with a following comma or period into another token (12% of the world's
    phrases lost their placeholder that way)."""
    return " ".join(concept_regex(concept).sub(" $ ", phrase, count=1).split())
