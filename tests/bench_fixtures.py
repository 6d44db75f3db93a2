"""Tiny benchmark folders in the real on-disk formats (invented records, random little images)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, rng: np.random.Generator, size=(24, 24)) -> None:
    """A small random RGB image; JPEG or PNG by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")


# -- FashionIQ --------------------------------------------------------------------------------------------

def fiq_name(cat: str, i: int) -> str:
    """10-character ASIN-like names."""
    return f"B00{cat[0].upper()}{i:06d}"


FIQ_GALLERY = {"dress": 12, "shirt": 6, "toptee": 12}
# (reference index, target index, captions); an index >= 100 is an image outside the split (a reference only)
FIQ_VAL = {
    "dress": [(0, 1, ["is red.", "has no sleeves"]), (2, 3, [" is longer", "is darker?"]),
              (100, 5, ["is blue", "is shorter,"])],
    "shirt": [(0, 1, ["has a collar", "is white"]), (2, 4, ["is striped", "is loose"])],
    "toptee": [(0, 2, ["has a print", "is black"]), (3, 5, ["is green", "has long sleeves"])],
}


def make_fashioniq(root: Path, seed: int = 0) -> Path:
    """<root>/FashionIQ with val and test splits; returns the FashionIQ folder."""
    rng = np.random.default_rng(seed)
    fiq = root / "FashionIQ"
    for cat, n in FIQ_GALLERY.items():
        names = [fiq_name(cat, i) for i in range(n)]
        write_json(fiq / "image_splits" / f"split.{cat}.val.json", names)
        records = [{"candidate": fiq_name(cat, r), "target": fiq_name(cat, t), "captions": caps}
                   for r, t, caps in FIQ_VAL[cat]]
        write_json(fiq / "captions" / f"cap.{cat}.val.json", records)
        test_names = [fiq_name(cat, 200 + i) for i in range(4)]
        write_json(fiq / "image_splits" / f"split.{cat}.test.json", test_names)
        write_json(fiq / "captions" / f"cap.{cat}.test.json",
                   [{"candidate": test_names[0], "captions": [" is red", " is short"]}])
        for name in names + test_names + [fiq_name(cat, 100)]:
            write_image(fiq / "images" / f"{name}.jpg", rng)
    return fiq


# -- CIRR -------------------------------------------------------------------------------------------------

def cirr_name(split: str, i: int) -> str:
    return f"{'dev' if split == 'val' else split}-{i}-0-img{i % 2}"


CIRR_VAL = [  # pairid, reference, target, members (indices into the dev images)
    (100, 0, 1, [0, 1, 2, 3, 4, 5]),
    (101, 2, 5, [2, 5, 6, 7, 0, 1]),
    (102, 7, 3, [7, 3, 4, 5, 6, 0]),
]
CIRR_TEST = [(200, 0, None, [0, 1, 2, 3, 4, 5]), (201, 6, None, [6, 1, 2, 3, 4, 5])]


def make_cirr(root: Path, seed: int = 1) -> Path:
    """<root>/CIRR with cirr/{captions,image_splits}, dev/ and test1/; returns the CIRR folder."""
    rng = np.random.default_rng(seed)
    cirr = root / "CIRR"
    for split, folder, n, queries in [("val", "dev", 8, CIRR_VAL), ("test1", "test1", 7, CIRR_TEST)]:
        names = [cirr_name(split, i) for i in range(n)]
        write_json(cirr / "cirr" / "image_splits" / f"split.rc2.{split}.json",
                   {nm: f"./{folder}/{nm}.png" for nm in names})
        records = []
        for pairid, ref, target, members in queries:
            rec = {"pairid": pairid, "reference": names[ref], "caption": f"make it different {pairid}",
                   "img_set": {"id": pairid % 7, "members": [names[m] for m in members], "reference_rank": 0}}
            if target is not None:
                rec.update({"target_hard": names[target], "target_soft": {names[target]: 1.0}})
                rec["img_set"]["target_rank"] = 1
            records.append(rec)
        write_json(cirr / "cirr" / "captions" / f"cap.rc2.{split}.json", records)
        for nm in names:
            write_image(cirr / folder / f"{nm}.png", rng)
    return cirr


# -- CIRCO ------------------------------------------------------------------------------------------------

CIRCO_IDS = list(range(101, 113))
CIRCO_VAL = [  # reference, ground truths (the first is the target), aspects
    (101, [102, 103, 104], ["cardinality"]),
    (105, [106], ["addition", "cardinality"]),
]
CIRCO_TEST = [101, 107, 109]


def make_circo(root: Path, seed: int = 2) -> Path:
    """<root>/CIRCO with annotations/{val,test}.json and COCO2017_unlabeled; returns the CIRCO folder."""
    rng = np.random.default_rng(seed)
    circo = root / "CIRCO"
    coco = circo / "COCO2017_unlabeled"
    write_json(coco / "annotations" / "image_info_unlabeled2017.json",
               {"info": {}, "images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 24, "height": 24}
                                       for i in CIRCO_IDS]})
    for i in CIRCO_IDS:
        write_image(coco / "unlabeled2017" / f"{i:012d}.jpg", rng)
    write_json(circo / "annotations" / "val.json", [
        {"reference_img_id": ref, "target_img_id": gt[0], "relative_caption": f"has more things {q}",
         "shared_concept": "a thing", "gt_img_ids": gt, "id": q, "semantic_aspects": aspects}
        for q, (ref, gt, aspects) in enumerate(CIRCO_VAL)])
    write_json(circo / "annotations" / "test.json", [
        {"reference_img_id": ref, "relative_caption": f"is bigger {q}", "shared_concept": "a thing", "id": q}
        for q, ref in enumerate(CIRCO_TEST)])
    return circo


# -- GeneCIS ----------------------------------------------------------------------------------------------

COCO_VAL_IDS = [11, 12, 13, 14, 15, 16]
VG_IDS = [7, 8, 9]


def _vg(image_id: int, box) -> dict:
    return {"image_id": image_id, "instance_bbox": list(box)}


def make_genecis(root: Path, seed: int = 3) -> Path:
    """<root>/GeneCIS with genecis/*.json, val2017/ and VG_100K_all/; returns the GeneCIS folder."""
    rng = np.random.default_rng(seed)
    g = root / "GeneCIS"
    for i in COCO_VAL_IDS:
        write_image(g / "val2017" / f"{i:012d}.jpg", rng)
    for i in VG_IDS:
        write_image(g / "VG_100K_all" / f"{i}.jpg", rng, size=(40, 30))
    for task in ("focus_object", "change_object"):
        write_json(g / "genecis" / f"{task}.json", [
            {"condition": "dog", "reference": {"val_image_id": 11}, "target": {"val_image_id": 12},
             "gallery": [{"val_image_id": 13}, {"val_image_id": 14}, {"val_image_id": 15}]},
            {"condition": "car", "reference": {"val_image_id": 16}, "target": {"val_image_id": 13},
             "gallery": [{"val_image_id": 11}, {"val_image_id": 12}, {"val_image_id": 14}]},
        ])
    for task in ("focus_attribute", "change_attribute"):
        write_json(g / "genecis" / f"{task}.json", [
            {"condition": "color", "reference": _vg(7, (10, 5, 8, 6)), "target": _vg(8, (0, 0, 20, 10)),
             "gallery": [_vg(9, (5, 5, 10, 10)), _vg(8, (20, 10, 15, 15)), _vg(7, (0, 0, 40, 30))]},
            {"condition": "material", "reference": _vg(9, (1.5, 2.5, 30, 20)), "target": _vg(7, (30, 20, 9, 9)),
             "gallery": [_vg(8, (0, 0, 20, 10)), _vg(9, (5, 5, 10, 10)), _vg(8, (2, 2, 4, 4))]},
        ])
    return g


MAKERS = {"fashioniq": make_fashioniq, "cirr": make_cirr, "circo": make_circo, "genecis": make_genecis}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and mtime: to prove nothing was written there."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}
