"""GeneCIS (facebookresearch/genecis): four tasks of small per-query galleries.

Our data-root convention (GeneCIS ships annotations and its images come from two other places):

    <root>/genecis/{focus,change}_{attribute,object}.json
    <root>/val2017/<id:012d>.jpg          COCO val 2017 (object tasks; `coco_dir` overrides)
    <root>/VG_100K_all/<image_id>.jpg     Visual Genome (attribute tasks; `vg_dir` overrides)

Object templates: {"condition", "reference": {"val_image_id"}, "target": {...}, "gallery": [{...}, ...]}.
Attribute templates carry {"image_id", "instance_bbox": [x, y, w, h]}; the image is the box dilated by 0.7 of
its size and padded to a square. Candidates = [target] + gallery (the target is candidate 0); each query's
text is its own condition (the authors' branch read the wrong batch element for the object tasks' text).
R@{1,2,3} per task and the mean over the four tasks.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lincir.data.image_refs import Crop, ImageRef
from lincir.errors import LincirError
from lincir.eval.benchmarks.base import (Benchmark, Part, Query, Rankings, RecordReader, check_ranking_list, find_root,
    read_records, require_keys)

TASKS = ("focus_attribute", "change_attribute", "focus_object", "change_object")
KS = (1, 2, 3)
DILATION = 0.7


class GeneCIS(Benchmark):
    name = "genecis"
    top_k = 0  # every candidate is ranked

    image_folders: list[Path] = []

    def data_folders(self) -> list[Path]:
        return [self.root, *self.image_folders]

    def metrics(self, rankings: Rankings) -> dict[str, float]:
        return self.recall_by_part(rankings, KS)

    def ranking_file(self, rankings: Rankings) -> dict[str, list[list[int]]]:
        """{task: [[candidate indices, best first] per template]}: 0 is the target, i > 0 is gallery[i - 1]."""
        return {p.name: [list(map(int, r)) for r in rankings[p.name]] for p in self.parts}

    def read_ranking_file(self, obj: Any, source: str) -> Rankings:
        require_keys(obj, [p.name for p in self.parts], source, "GeneCIS tasks")
        out: Rankings = {}
        for part in self.parts:
            lists = self.part_lists(obj, part, source, f"template of {part.name}.json")
            ranked = []
            for i, (r, q) in enumerate(zip(lists, part.queries)):
                n = len(q.candidates)
                ranked.append(check_ranking_list(
                    r, source, f"{part.name}[{i}]",
                    lambda x, n=n: isinstance(x, int) and not isinstance(x, bool) and 0 <= x < n,
                    f"candidate indices 0..{n - 1}"))
            out[part.name] = ranked
        return out


def load_genecis(data_root, split: str = "val", coco_dir=None, vg_dir=None,
                 tasks: tuple[str, ...] = TASKS) -> GeneCIS:
    """Load the four GeneCIS tasks. GeneCIS has one split, which `--split val` names."""
    if split != "val":
        raise LincirError(f"--split: GeneCIS has a single split, named val, not {split!r}")
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise LincirError(f"--tasks: unknown GeneCIS task {unknown[0]!r} (use {', '.join(TASKS)})")
    root = find_root(data_root, f"genecis/{tasks[0]}.json", "GeneCIS", "GeneCIS")
    coco = Path(coco_dir) if coco_dir else root / "val2017"
    vg = Path(vg_dir) if vg_dir else root / "VG_100K_all"
    parts = [_load_task(root / "genecis" / f"{t}.json", t, coco if t.endswith("object") else vg)
             for t in tasks]
    bench = GeneCIS(root, split, parts)
    bench.image_folders = [coco, vg]
    return bench


def _box_ok(box: list) -> bool:
    """A box that crops something: four finite numbers, a corner in the image, a positive width and height."""
    if len(box) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return False
    x, y, w, h = box
    return all(math.isfinite(v) for v in box) and x >= 0 and y >= 0 and w > 0 and h > 0


def _load_task(path: Path, task: str, images: Path) -> Part:
    is_object = task.endswith("object")
    gallery: list[ImageRef] = []
    index: dict[str, int] = {}

    def image(rec: RecordReader, key: str, entry: Any) -> ImageRef:
        sub = RecordReader(rec.path, f"{rec.index} {key}", entry)
        if is_object:
            img_id = sub.get("val_image_id", int)
            return ImageRef(str(img_id), images / f"{img_id:012d}.jpg")
        img_id = sub.get("image_id", (int, str))
        box = sub.get("instance_bbox", list, _box_ok, "[x, y, w, h] with finite x, y >= 0 and w, h > 0")
        crop = Crop(tuple(float(v) for v in box), DILATION, True)
        return ImageRef(f"{img_id}@{','.join(f'{v:g}' for v in crop.box)}", images / f"{img_id}.jpg", crop)

    def position(ref: ImageRef) -> int:
        if ref.key not in index:
            index[ref.key] = len(gallery)
            gallery.append(ref)
        return index[ref.key]

    queries = []
    for i, record in enumerate(read_records(path, "a list of templates")):
        rec = RecordReader(path, i, record)
        condition = rec.get("condition", str)
        reference = image(rec, "reference", rec.get("reference", dict))
        target = image(rec, "target", rec.get("target", dict))
        others = [image(rec, f"gallery[{j}]", g) for j, g in enumerate(rec.get("gallery", list, bool,
                                                                              "a non-empty list"))]
        candidates = tuple(position(r) for r in [target, *others])
        queries.append(Query(f"{task}/{i}", reference, (condition,), (0,), candidates=candidates))
    return Part(task, gallery, queries)
