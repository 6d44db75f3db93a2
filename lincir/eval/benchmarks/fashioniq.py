"""FashionIQ (XiaoxiaoGuo/fashion-iq, layout as in SEARLE's README), read as downloaded.

    FashionIQ/captions/cap.{dress,shirt,toptee}.{train,val,test}.json   [{"target", "candidate", "captions": [c1, c2]}]
    FashionIQ/image_splits/split.{dress,shirt,toptee}.{split}.json      [image names]
    FashionIQ/images/<name>.jpg

Protocol (val): per category, every record of the caption file is a query over that category's split file;
the reference is not removed. Text "c1 and c2" (each stripped of '.?, ') and the reversed order, whose
normalised features are averaged. R@10 and R@50 per category and their mean over the categories.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from lincir.data.image_refs import ImageRef
from lincir.errors import LincirError
from lincir.eval.benchmarks.base import (Benchmark, Part, Query, Rankings, RecordReader, check_ranking_list, find_root,
    positions_of, read_records, require_keys)

CATEGORIES = ("dress", "shirt", "toptee")
SPLITS = ("val", "test", "train")
KS = (10, 50)


def join_captions(c1: str, c2: str) -> tuple[str, str]:
    """The two query texts: "c1 and c2" and "c2 and c1", each caption stripped of '.?, ' at both ends."""
    a, b = c1.strip(".?, "), c2.strip(".?, ")
    return f"{a} and {b}", f"{b} and {a}"


class FashionIQ(Benchmark):
    name = "fashioniq"
    top_k = 50

    def metrics(self, rankings: Rankings) -> dict[str, float]:
        return self.recall_by_part(rankings, KS)

    def ranking_file(self, rankings: Rankings) -> dict[str, list[list[str]]]:
        return {p.name: [[p.gallery[i].key for i in r] for r in rankings[p.name]] for p in self.parts}

    def read_ranking_file(self, obj: Any, source: str) -> Rankings:
        require_keys(obj, [p.name for p in self.parts], source, "categories")
        out: Rankings = {}
        for part in self.parts:
            lists = self.part_lists(obj, part, source, f"record of cap.{part.name}.{self.split}.json")
            index = part.index()
            out[part.name] = [
                positions_of(check_ranking_list(r, source, f"{part.name}[{i}]", lambda x: isinstance(x, str),
                                                "image names"),
                             index, source, f"{part.name}[{i}]", f"{part.name} {self.split} gallery image")
                for i, r in enumerate(lists)]
        return out


def load_fashioniq(data_root, split: str = "val", categories: tuple[str, ...] = CATEGORIES) -> FashionIQ:
    """Load FashionIQ from `data_root` (the FashionIQ folder or its parent) for one split."""
    if split not in SPLITS:
        raise LincirError(f"--split: FashionIQ has splits {', '.join(SPLITS)}, not {split!r}")
    unknown = [c for c in categories if c not in CATEGORIES]
    if unknown:
        raise LincirError(f"--categories: unknown FashionIQ category {unknown[0]!r} (use {', '.join(CATEGORIES)})")
    root = find_root(data_root, f"captions/cap.{categories[0]}.{split}.json", "FashionIQ", "FashionIQ")
    images = root / "images"
    parts = [_load_category(root, images, c, split) for c in categories]
    bench = FashionIQ(root, split, parts)
    bench.has_ground_truth = split != "test"
    return bench


def _load_category(root: Path, images: Path, category: str, split: str) -> Part:
    split_path = root / "image_splits" / f"split.{category}.{split}.json"
    names = read_records(split_path, "a list of image names")
    for i, n in enumerate(names):
        if not isinstance(n, str) or not n:
            raise LincirError(f"{split_path}: entry {i}: expected an image name, found {n!r}")
    if len(set(names)) != len(names):
        dup = next(n for i, n in enumerate(names) if n in names[:i])
        raise LincirError(f"{split_path}: image {dup!r} is listed twice")
    gallery = [ImageRef(n, images / f"{n}.jpg") for n in names]
    index = {n: i for i, n in enumerate(names)}

    cap_path = root / "captions" / f"cap.{category}.{split}.json"
    queries = []
    for i, record in enumerate(read_records(cap_path)):
        rec = RecordReader(cap_path, i, record)
        reference = rec.get("candidate", str, bool, "a non-empty image name")
        captions = rec.str_list("captions")
        if len(captions) != 2:
            rec.fail(f"'captions' must hold 2 captions, found {len(captions)}")
        targets: tuple[int, ...] = ()
        if split != "test":
            target = rec.get("target", str, bool, "a non-empty image name")
            if target not in index:
                rec.fail(f"target {target!r} is not in {split_path.name}")
            targets = (index[target],)
        queries.append(Query(f"{category}/{i}", ImageRef(reference, images / f"{reference}.jpg"),
                             join_captions(*captions), targets))
    return Part(category, gallery, queries)
