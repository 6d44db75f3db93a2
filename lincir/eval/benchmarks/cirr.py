"""CIRR (Cuberick-Orion/CIRR), read as downloaded.

    CIRR/cirr/captions/cap.rc2.{train,val,test1}.json      [{"pairid", "reference", "target_hard", "caption",
                                                              "img_set": {"members": [6 names], ...}, ...}]
    CIRR/cirr/image_splits/split.rc2.{split}.json          {name: "./dev/<name>.png"}  (relative to CIRR/)

Protocol: gallery = every image of the split, caption as is. Rank, remove the reference, then R@{1,5,10,50}
against target_hard; Recall_subset@{1,2,3} on the same ranking restricted to img_set.members (the reference
removed), global order kept.
"""
from __future__ import annotations

from typing import Any

from lincir.data.image_refs import ImageRef
from lincir.errors import LincirError
from lincir.eval import metrics as M
from lincir.eval.benchmarks.base import (Benchmark, Part, Query, Rankings, RecordReader, check_ranking_list, find_root,
    positions_of, read_records, require_keys)
from lincir.storage import read_json

SPLITS = {"val": "val", "test1": "test1", "test": "test1", "train": "train"}
KS = (1, 5, 10, 50)
SUBSET_KS = (1, 2, 3)
VERSION = "rc2"


class CIRR(Benchmark):
    name = "cirr"
    top_k = 50

    def metrics(self, rankings: Rankings) -> dict[str, float]:
        part = self.parts[0]
        ranked = [M.drop_items(r, q.exclude) for r, q in zip(rankings[part.name], part.queries, strict=True)]
        targets = [q.targets[0] for q in part.queries]
        out = {f"R@{k}": v for k, v in M.recall_at_k(M.first_hit_ranks(ranked, targets), KS).items()}
        subset = M.subset_recall_at_k(ranked, [q.subset for q in part.queries], targets, SUBSET_KS)
        out.update({f"R_subset@{k}": v for k, v in subset.items()})
        out["avg(R@5,R_subset@1)"] = (out["R@5"] + out["R_subset@1"]) / 2  # the leaderboard's "Avg"
        return out

    def ranking_file(self, rankings: Rankings) -> dict[str, Any]:
        """{"version", "metric": "recall", "<pairid>": [names, best first]} (lists may run past 50: see harness)."""
        part = self.parts[0]
        out: dict[str, Any] = {"version": VERSION, "metric": "recall"}
        for q, r in zip(part.queries, rankings[part.name], strict=True):
            out[q.qid] = [part.gallery[i].key for i in r]
        return out

    def read_ranking_file(self, obj: Any, source: str) -> Rankings:
        part = self.parts[0]
        require_keys(obj, [q.qid for q in part.queries], source, f"CIRR {self.split} pairids")
        if obj.get("version", VERSION) != VERSION:
            raise LincirError(f"{source}: 'version' is {obj.get('version')!r}; this split is CIRR {VERSION}")
        if obj.get("metric", "recall") != "recall":
            raise LincirError(f"{source}: 'metric' is {obj.get('metric')!r}; score the full ranking ('recall') file")
        index = part.index()
        out = []
        for q in part.queries:
            names = check_ranking_list(obj[q.qid], source, f"pairid {q.qid}", lambda x: isinstance(x, str),
                                       "image names")
            out.append(positions_of(names, index, source, f"pairid {q.qid}", f"CIRR {self.split} image"))
        return {part.name: out}


def load_cirr(data_root, split: str = "val") -> CIRR:
    """Load CIRR from `data_root` (the CIRR folder, holding cirr/ and the image folders, or its parent)."""
    if split not in SPLITS:
        raise LincirError(f"--split: CIRR has splits val, test1 (alias test), train, not {split!r}")
    split = SPLITS[split]
    root = find_root(data_root, f"cirr/captions/cap.{VERSION}.{split}.json", "CIRR", "CIRR")
    split_path = root / "cirr" / "image_splits" / f"split.{VERSION}.{split}.json"
    files = read_json(split_path)
    if not isinstance(files, dict):
        raise LincirError(f"{split_path}: expected an object {{name: relative path}}, found {type(files).__name__}")
    gallery = []
    for name, rel in files.items():
        if not isinstance(rel, str) or not rel:
            raise LincirError(f"{split_path}: image {name!r}: expected a relative path, found {rel!r}")
        gallery.append(ImageRef(name, root / rel))
    part = Part("cirr", gallery, [])
    index = part.index()

    cap_path = root / "cirr" / "captions" / f"cap.{VERSION}.{split}.json"
    seen: set[str] = set()
    for i, record in enumerate(read_records(cap_path)):
        rec = RecordReader(cap_path, i, record)
        pairid = rec.get("pairid", int)
        rec.index = f"{i} (pairid {pairid})"
        if str(pairid) in seen:
            rec.fail("pairid is used twice")
        seen.add(str(pairid))
        reference = rec.get("reference", str)
        caption = rec.get("caption", str)
        img_set = RecordReader(cap_path, rec.index, rec.get("img_set", dict))
        members = img_set.str_list("members")
        for name in [reference, *members]:
            if name not in index:
                rec.fail(f"image {name!r} is not in {split_path.name}")
        targets: tuple[int, ...] = ()
        if split != "test1":
            target = rec.get("target_hard", str)
            if target not in index:
                rec.fail(f"target_hard {target!r} is not in {split_path.name}")
            targets = (index[target],)
        ref = index[reference]
        part.queries.append(Query(str(pairid), gallery[ref], (caption,), targets, exclude=(ref,),
                                  subset=tuple(index[m] for m in members if index[m] != ref)))
    bench = CIRR(root, split, [part])
    bench.has_ground_truth = split != "test1"
    return bench
