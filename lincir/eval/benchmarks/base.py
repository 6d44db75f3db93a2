"""The common shape of a composed-image-retrieval benchmark: parts, each a gallery and its queries.

Every benchmark (FashionIQ, CIRR, CIRCO, GeneCIS, and the shapes world) is loaded into the same form:

- a `Part` is one gallery with the queries ranked against it (FashionIQ: one part per category; GeneCIS:
  one per task; CIRR and CIRCO: one part);
- a `Query` names its reference image, its text(s) and its ground truth as *positions*: an index into the
  part's gallery, or, when the query carries its own candidate list (GeneCIS), an index into that list;
- a ranking is, per query, a list of positions, best first.

A benchmark turns rankings into metrics (`metrics`) and converts rankings to and from the file format that
its own tools use (`ranking_file`, `read_ranking_file`). Loaders only read: nothing is ever written into a
dataset folder.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lincir.data.image_refs import ImageRef
from lincir.errors import LincirError

Rankings = dict[str, list[list[int]]]  # part name -> one list of positions (best first) per query


@dataclass(frozen=True)
class Query:
    """One composed query. Positions index the part's gallery, or `candidates` when the query has its own list.

    texts: alternative phrasings whose normalised query features are averaged (FashionIQ's two orders).
    targets: ground-truth positions, the main target first; empty when the split has no ground truth.
    candidates: gallery indices this query ranks (GeneCIS); None means the whole gallery.
    exclude: positions removed from the ranking before scoring (CIRR's reference image).
    subset: positions also scored as a small subset, in global order (CIRR's img_set members).
    """

    qid: str
    reference: ImageRef
    texts: tuple[str, ...]
    targets: tuple[int, ...] = ()
    candidates: tuple[int, ...] | None = None
    exclude: tuple[int, ...] = ()
    subset: tuple[int, ...] = ()


@dataclass
class Part:
    """A gallery and the queries ranked against it."""

    name: str
    gallery: list[ImageRef]
    queries: list[Query]
    _index: dict[str, int] | None = field(default=None, repr=False, compare=False)

    def index(self) -> dict[str, int]:
        """Gallery key -> gallery index."""
        if self._index is None:
            self._index = {ref.key: i for i, ref in enumerate(self.gallery)}
        return self._index

    def candidate_keys(self, query: Query) -> list[str]:
        """The keys of the positions a query ranks."""
        if query.candidates is None:
            return [ref.key for ref in self.gallery]
        return [self.gallery[i].key for i in query.candidates]


class Benchmark:
    """A loaded benchmark split. Subclasses set `name`, fill `parts` and implement the three methods below."""

    name: str = ""
    top_k: int = 50  # how many positions a ranking keeps per query (after exclusions)
    has_ground_truth: bool = True

    def __init__(self, root: Path, split: str, parts: list[Part]):
        self.root, self.split, self.parts = Path(root), split, parts

    # -- what each benchmark defines -------------------------------------------------------------------
    def metrics(self, rankings: Rankings) -> dict[str, float]:
        """Metrics (in percent) from rankings in position space."""
        raise NotImplementedError

    def ranking_file(self, rankings: Rankings) -> Any:
        """The JSON object of this benchmark's ranking-file format."""
        raise NotImplementedError

    def read_ranking_file(self, obj: Any, source: str) -> Rankings:
        """Rankings from a parsed ranking file; errors name `source` and the query at fault."""
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------------------
    def part(self, name: str) -> Part:
        for p in self.parts:
            if p.name == name:
                return p
        raise KeyError(name)

    def data_folders(self) -> list[Path]:
        """The folders the benchmark reads from; nothing is ever written inside them."""
        return [self.root]

    def num_queries(self) -> int:
        return sum(len(p.queries) for p in self.parts)

    def part_lists(self, obj: dict, part: Part, source: str, one_per: str) -> list:
        """A ranking file's lists for one part: a list with one entry per query (`one_per` says what a query is)."""
        lists = obj[part.name]
        if not isinstance(lists, list) or len(lists) != len(part.queries):
            n = len(lists) if isinstance(lists, list) else type(lists).__name__
            raise LincirError(f"{source}: {part.name!r}: expected {len(part.queries)} ranked lists "
                              f"(one per {one_per}), found {n}")
        return lists

    def recall_by_part(self, rankings: Rankings, ks: Sequence[int]) -> dict[str, float]:
        """"<part>/R@k" of the main target (targets[0]) in each part, and "average/R@k", their plain mean."""
        from lincir.eval import metrics as M

        out: dict[str, float] = {}
        for part in self.parts:
            ranks = M.first_hit_ranks(rankings[part.name], [q.targets[0] for q in part.queries])
            for k, v in M.recall_at_k(ranks, ks).items():
                out[f"{part.name}/R@{k}"] = v
        for k in ks:
            out[f"average/R@{k}"] = sum(out[f"{p.name}/R@{k}"] for p in self.parts) / len(self.parts)
        return out

    def image_refs(self) -> list[ImageRef]:
        """Every image the benchmark needs (galleries and references), each file once."""
        seen: dict[Path, ImageRef] = {}
        for p in self.parts:
            for ref in p.gallery:
                seen.setdefault(ref.path, ref)
            for q in p.queries:
                seen.setdefault(q.reference.path, q.reference)
        return list(seen.values())

    def check_images(self, show: int = 5) -> int:
        """Raise a one-line LincirError counting and naming (first few) the missing image files; else the count."""
        refs = self.image_refs()
        missing = [r.path for r in refs if not os.path.isfile(r.path)]
        if missing:
            folders = sorted({str(p.parent) for p in missing})
            names = ", ".join(p.name for p in missing[:show]) + (", ..." if len(missing) > show else "")
            where = folders[0] if len(folders) == 1 else f"{len(folders)} folders, e.g. {folders[0]}"
            raise LincirError(f"{where}: {len(missing)} of {len(refs)} {self.name} {self.split} images are missing "
                              f"({names}); every query needs its images, none are skipped")
        return len(refs)

    def __repr__(self) -> str:
        parts = ", ".join(f"{p.name}: {len(p.queries)} queries / {len(p.gallery)} images" for p in self.parts)
        return f"{type(self).__name__}({self.split}; {parts})"


# -- helpers for loaders ---------------------------------------------------------------------------------


def find_root(data_root: str | os.PathLike, marker: str, folder: str, what: str) -> Path:
    """The benchmark folder: `data_root` itself if it holds `marker`, else `data_root/folder` if that does."""
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise LincirError(f"--data-root {root}: no such folder")
    for cand in (root, root / folder):
        if (cand / marker).exists():
            return cand
    raise LincirError(f"--data-root {root}: not a {what} folder (expected {root / marker} "
                      f"or {root / folder / marker})")


def read_records(path: Path, what: str = "a list of records") -> list:
    """A JSON file that must hold a list."""
    from lincir.storage import read_json

    data = read_json(path)
    if not isinstance(data, list):
        raise LincirError(f"{path}: expected {what}, found a JSON {type(data).__name__}")
    return data


class RecordReader:
    """Typed access to the fields of one JSON record; errors name the file, the record and the field."""

    def __init__(self, path: Path, index: int | str, record: Any):
        self.path, self.index, self.record = path, index, record
        if not isinstance(record, dict):
            self.fail(f"expected an object, found {type(record).__name__}")

    def fail(self, msg: str):
        raise LincirError(f"{self.path}: record {self.index}: {msg}")

    def get(self, key: str, kind: type | tuple[type, ...], check: Callable[[Any], bool] | None = None,
            expect: str = "") -> Any:
        if key not in self.record:
            self.fail(f"missing key {key!r}")
        value = self.record[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wrong_kind = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
        if wrong_kind or (check is not None and not check(value)):
            self.fail(f"{key!r} must be {expect or _kind_name(kind)}, found {_short(value)}")
        return value

    def str_list(self, key: str) -> list[str]:
        return self.get(key, list, lambda v: all(isinstance(s, str) for s in v), "a list of strings")

    def int_list(self, key: str) -> list[int]:
        return self.get(key, list, lambda v: all(_is_int(s) for s in v), "a list of integers")


MAX_ID = 2**63 - 1  # the largest image or query id accepted in any file (ids are 64-bit integers)


def int_id(value: Any) -> int | None:
    """An integer id given as a JSON integer or an ASCII decimal string (as the CIRCO server's int() reads it),
    within +-MAX_ID; None for anything else (booleans, floats, lists, '²', '1e3', 5,000-digit numbers)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if -MAX_ID <= value <= MAX_ID else None
    if isinstance(value, str):
        text = value.strip()
        if 0 < len(text) <= 19 and text.isascii() and text.isdigit():
            return int(text)
    return None


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "an object"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_ranking_list(value: Any, source: str, where: str, item_ok: Callable[[Any], bool], what: str) -> list:
    """A ranking list from a file: a list of items of the right kind, no duplicates."""
    if not isinstance(value, list):
        raise LincirError(f"{source}: {where}: expected a list of {what}, found {_short(value)}")
    seen = set()
    for item in value:
        try:
            ok = bool(item_ok(item))
        except (TypeError, ValueError):  # a list or object where an item belongs
            ok = False
        if not ok or isinstance(item, (list, dict)):
            raise LincirError(f"{source}: {where}: expected {what}, found {_short(item)}")
        if item in seen:
            raise LincirError(f"{source}: {where}: {item!r} is listed twice")
        seen.add(item)
    return value


def positions_of(items: Iterable, index: dict, source: str, where: str, what: str) -> list[int]:
    """Map ranked names/ids to positions; an unknown one is an error naming the query."""
    out = []
    for item in items:
        pos = index.get(item)
        if pos is None:
            raise LincirError(f"{source}: {where}: {item!r} is not a {what}")
        out.append(pos)
    return out


def require_keys(obj: Any, keys: Sequence[str], source: str, what: str) -> dict:
    """A ranking file must be an object holding every key (query ids, categories or tasks)."""
    if not isinstance(obj, dict):
        raise LincirError(f"{source}: expected a JSON object keyed by {what}, found {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        raise LincirError(f"{source}: {len(missing)} of {len(keys)} {what} missing ({shown})")
    return obj
