"""CIRCO (miccunifi/CIRCO), read as downloaded.

    CIRCO/annotations/{val,test}.json        [{"id" (= position), "reference_img_id", "relative_caption",
                                               "target_img_id", "gt_img_ids", ...}]  (no targets in test)
    CIRCO/COCO2017_unlabeled/annotations/image_info_unlabeled2017.json   {"images": [{"id", "file_name"}, ...]}
    CIRCO/COCO2017_unlabeled/unlabeled2017/<file_name>

Protocol: the whole gallery (about 120k images), no reference removal, top 50 per query. mAP@{5,10,25,50}
over gt_img_ids (AP@k = sum_{i<=k} P@i rel_i / min(|gt|, k)); Recall@k on target_img_id only; and, as the
evaluation server reports, mAP@10 per semantic aspect where the annotations carry them.
"""
from __future__ import annotations

from typing import Any

from lincir.data.image_refs import ImageRef
from lincir.errors import LincirError
from lincir.eval import metrics as M
from lincir.eval.benchmarks.base import (Benchmark, Part, Query, Rankings, RecordReader, check_ranking_list, find_root,
    int_id, read_records, require_keys)
from lincir.storage import read_json

SPLITS = ("val", "test")
KS = (5, 10, 25, 50)
IMAGE_INFO = "COCO2017_unlabeled/annotations/image_info_unlabeled2017.json"


def multi_target_metrics(rankings: list[list[int]], ground_truths: list[tuple[int, ...]],
                         ks=KS) -> dict[str, float]:
    """CIRCO-style scores for queries with several ground truths (the first is the main target).

    Shared with other benchmarks scored the same way (the shapes world)."""
    out = {f"mAP@{k}": v for k, v in M.mean_average_precision_at_k(rankings, ground_truths, ks).items()}
    ranks = M.first_hit_ranks(rankings, [g[0] for g in ground_truths])
    out.update({f"R@{k}": v for k, v in M.recall_at_k(ranks, ks).items()})
    return out


class CIRCO(Benchmark):
    name = "circo"
    top_k = 50

    def __init__(self, root, split, parts, aspects: list[list[str]] | None = None):
        super().__init__(root, split, parts)
        self.aspects = aspects or [[] for _ in parts[0].queries]  # per query, the semantic aspects

    def metrics(self, rankings: Rankings) -> dict[str, float]:
        part = self.parts[0]
        ranked = rankings[part.name]
        gts = [q.targets for q in part.queries]
        out = multi_target_metrics(ranked, gts)
        by_aspect: dict[str, list[float]] = {}
        for r, g, aspects in zip(ranked, gts, self.aspects):
            for a in aspects:
                by_aspect.setdefault(a, []).append(M.average_precision_at_k(r, g, 10))
        for a in sorted(by_aspect):
            out[f"mAP@10/{a}"] = 100.0 * sum(by_aspect[a]) / len(by_aspect[a])
        return out

    def ranking_file(self, rankings: Rankings) -> dict[str, list[int]]:
        """The server's format: {"<query id>": [COCO image ids, best first]}."""
        part = self.parts[0]
        return {q.qid: [int(part.gallery[i].key) for i in r] for q, r in zip(part.queries, rankings[part.name])}

    def read_ranking_file(self, obj: Any, source: str) -> Rankings:
        part = self.parts[0]
        require_keys(obj, [q.qid for q in part.queries], source, f"CIRCO {self.split} query ids")
        index = part.index()
        out = []
        for q in part.queries:
            # The server casts ids with int(); accept integers and integer strings alike.
            ids = check_ranking_list(obj[q.qid], source, f"query {q.qid}", _int_like,
                                     "image ids (integers or decimal strings)")
            pos = []
            for x in ids:
                p = index.get(str(int_id(x)))
                if p is None:
                    raise LincirError(f"{source}: query {q.qid}: {x!r} is not a COCO 2017 unlabeled image id")
                pos.append(p)
            if len(set(pos)) != len(pos):
                raise LincirError(f"{source}: query {q.qid}: an image id is listed twice")
            out.append(pos)
        return {part.name: out}


def _int_like(x: Any) -> bool:
    return int_id(x) is not None


def _aspects(rec: RecordReader) -> list[str]:
    """A record's semantic aspects: a list of names (absent or null: none). A bare string is refused, never
    scored letter by letter."""
    if rec.record.get("semantic_aspects") is None:
        return []
    return list(rec.get("semantic_aspects", list, lambda v: all(isinstance(a, str) and a for a in v),
                        "a list of aspect names (strings)"))


def load_gallery(root) -> list[ImageRef]:
    """COCO 2017 unlabeled: every image of image_info_unlabeled2017.json, keyed by its id as a string."""
    info_path = root / IMAGE_INFO
    info = read_json(info_path)
    if not isinstance(info, dict) or not isinstance(info.get("images"), list):
        raise LincirError(f"{info_path}: expected an object with an 'images' list")
    folder = root / "COCO2017_unlabeled" / "unlabeled2017"
    gallery, seen = [], set()
    for i, record in enumerate(info["images"]):
        rec = RecordReader(info_path, f"images[{i}]", record)
        img_id = rec.get("id", int)
        if img_id in seen:
            rec.fail(f"image id {img_id} is listed twice")
        seen.add(img_id)
        gallery.append(ImageRef(str(img_id), folder / rec.get("file_name", str, bool, "a file name")))
    return gallery


def load_circo(data_root, split: str = "val") -> CIRCO:
    """Load CIRCO from `data_root` (the CIRCO folder or its parent)."""
    if split not in SPLITS:
        raise LincirError(f"--split: CIRCO has splits val and test, not {split!r}")
    root = find_root(data_root, f"annotations/{split}.json", "CIRCO", "CIRCO")
    gallery = load_gallery(root)
    part = Part("circo", gallery, [])
    index = part.index()
    ann_path = root / "annotations" / f"{split}.json"
    aspects = []

    def position(rec: RecordReader, key: str, img_id: int) -> int:
        p = index.get(str(img_id))
        if p is None:
            rec.fail(f"{key} {img_id} is not in {IMAGE_INFO.split('/')[-1]}")
        return p

    for i, record in enumerate(read_records(ann_path)):
        rec = RecordReader(ann_path, i, record)
        qid = rec.get("id", int)
        if qid != i:  # the server looks queries up by position: ids must be 0, 1, 2, ...
            rec.fail(f"'id' is {qid}, but CIRCO query ids equal the record's position ({i})")
        ref = position(rec, "reference_img_id", rec.get("reference_img_id", int))
        caption = rec.get("relative_caption", str)
        targets: tuple[int, ...] = ()
        if split == "val":
            target = rec.get("target_img_id", int)
            gt = rec.int_list("gt_img_ids")
            if not gt or gt[0] != target:
                rec.fail(f"gt_img_ids must start with target_img_id {target}")
            targets = tuple(position(rec, "gt_img_ids entry", g) for g in gt)
            aspects.append(_aspects(rec))
        part.queries.append(Query(str(qid), gallery[ref], (caption,), targets))
    bench = CIRCO(root, split, [part], aspects if split == "val" else None)
    bench.has_ground_truth = split == "val"
    return bench
