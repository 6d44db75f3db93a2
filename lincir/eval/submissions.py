"""Test-server submission files for CIRR and CIRCO, and a local checker for them (servers go down).

CIRR (two files, keyed by str(pairid)):
    {"version": "rc2", "metric": "recall",        "<pairid>": [top-50 image names, reference removed]}
    {"version": "rc2", "metric": "recall_subset", "<pairid>": [top-3 img_set members, reference removed]}
CIRCO (one file): {"<query id>": [50 unique COCO image ids, best first]} for every test query.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lincir.errors import LincirError
from lincir.eval import metrics as M
from lincir.eval.benchmarks.base import Benchmark, Rankings, int_id
from lincir.storage import atomic_write_json, check_name

CIRR_TOP, CIRR_SUBSET_TOP, CIRCO_TOP = 50, 3, 50


def cirr_submission(bench: Benchmark, rankings: Rankings) -> tuple[dict[str, Any], dict[str, Any]]:
    """The recall and recall_subset objects for the CIRR server."""
    part = bench.parts[0]
    recall: dict[str, Any] = {"version": "rc2", "metric": "recall"}
    subset: dict[str, Any] = {"version": "rc2", "metric": "recall_subset"}
    for q, r in zip(part.queries, rankings[part.name], strict=True):
        kept = M.drop_items(r, q.exclude)
        members = M.keep_items(kept, q.subset)
        if len(members) < min(CIRR_SUBSET_TOP, len(q.subset)):
            raise ValueError(f"pairid {q.qid}: the ranking lacks img_set members (rank them with the harness)")
        recall[q.qid] = [part.gallery[i].key for i in kept[:CIRR_TOP]]
        subset[q.qid] = [part.gallery[i].key for i in members[:CIRR_SUBSET_TOP]]
    return recall, subset


def circo_submission(bench: Benchmark, rankings: Rankings) -> dict[str, list[int]]:
    """The CIRCO server object: query id -> top-50 image ids (integers)."""
    part = bench.parts[0]
    return {q.qid: [int(part.gallery[i].key) for i in r[:CIRCO_TOP]]
            for q, r in zip(part.queries, rankings[part.name], strict=True)}


def submission_paths(bench: Benchmark, out_dir, name: str = "lincir") -> list[Path]:
    """The file(s) write_submission writes; `name` must be a plain name (it never leaves `out_dir`)."""
    check_name(name, "--name")
    out_dir = Path(out_dir)
    if bench.name == "cirr":
        return [out_dir / f"{name}_cirr_{bench.split}_recall.json",
                out_dir / f"{name}_cirr_{bench.split}_recall_subset.json"]
    if bench.name == "circo":
        return [out_dir / f"{name}_circo_{bench.split}.json"]
    raise LincirError(f"--benchmark: test-server submissions exist for cirr and circo, not {bench.name}")


def write_submission(bench: Benchmark, rankings: Rankings, out_dir, name: str = "lincir") -> list[Path]:
    """Write the server file(s) for a CIRR test1 or CIRCO test benchmark into `out_dir`; return their paths."""
    paths = submission_paths(bench, out_dir, name)
    if bench.name == "cirr":
        recall, subset = cirr_submission(bench, rankings)
        return [atomic_write_json(paths[0], recall), atomic_write_json(paths[1], subset)]
    return [atomic_write_json(paths[0], circo_submission(bench, rankings))]


@dataclass
class CheckReport:
    """What `check_submission` found: problems make the server reject or misread the file; warnings do not."""

    kind: str
    queries: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_submission(bench: Benchmark, obj: Any) -> CheckReport:
    """Validate a submission object against a loaded CIRR/CIRCO split: keys, list lengths, uniqueness, ids."""
    if not isinstance(obj, dict):
        return CheckReport("?", 0, [f"expected a JSON object, found {type(obj).__name__}"])
    if bench.name == "cirr":
        return _check_cirr(bench, obj)
    if bench.name == "circo":
        return _check_circo(bench, obj)
    raise LincirError(f"--benchmark: submissions are checked for cirr and circo, not {bench.name}")


def _check_keys(report: CheckReport, obj: dict, qids: list[str], meta: set[str], what: str) -> None:
    missing = [q for q in qids if q not in obj]
    extra = [k for k in obj if k not in set(qids) and k not in meta]
    if missing:
        report.problems.append(f"{len(missing)} of {len(qids)} {what} missing (e.g. {', '.join(missing[:3])})")
    if extra:
        report.problems.append(f"{len(extra)} keys are not {what} (e.g. {', '.join(map(repr, extra[:3]))})")


def _check_list(report: CheckReport, where: str, value: Any, length: int, ok, what: str) -> list | None:
    if not isinstance(value, list):
        report.problems.append(f"{where}: expected a list, found {type(value).__name__}")
        return None
    if len(value) != length:
        report.problems.append(f"{where}: {len(value)} entries, expected {length}")
    bad = [v for v in value if isinstance(v, (list, dict)) or not ok(v)]  # nested lists are never ids
    if bad:
        report.problems.append(f"{where}: {bad[0]!r} is not {what}")
    hashable = [v for v in value if isinstance(v, (str, int))]
    if len(set(hashable)) != len(hashable):
        dup = next(v for i, v in enumerate(hashable) if v in hashable[:i])
        report.problems.append(f"{where}: {dup!r} is listed twice")
    return value


def _check_cirr(bench: Benchmark, obj: dict) -> CheckReport:
    part = bench.parts[0]
    metric = obj.get("metric")
    report = CheckReport(str(metric), len(part.queries))
    if obj.get("version") != "rc2":
        report.problems.append(f"'version' must be \"rc2\", found {obj.get('version')!r}")
    if metric not in ("recall", "recall_subset"):
        report.problems.append(f"'metric' must be \"recall\" or \"recall_subset\", found {metric!r}")
        return report
    _check_keys(report, obj, [q.qid for q in part.queries], {"version", "metric"}, f"CIRR {bench.split} pairids")
    names = part.index()
    with_reference = 0
    for q in part.queries:
        if q.qid not in obj:
            continue
        reference = part.gallery[q.exclude[0]].key if q.exclude else None
        if metric == "recall":
            n = min(CIRR_TOP, len(part.gallery) - len(q.exclude))
            value = _check_list(report, f"pairid {q.qid}", obj[q.qid], n, lambda v: v in names,
                                f"a CIRR {bench.split} image name")
            with_reference += bool(value and reference in value)
        else:
            members = {part.gallery[i].key for i in q.subset}
            _check_list(report, f"pairid {q.qid}", obj[q.qid], min(CIRR_SUBSET_TOP, len(members)),
                        lambda v: v in members, "an img_set member other than the reference")
    if with_reference:
        report.warnings.append(f"{with_reference} lists contain their own reference image (the protocol removes "
                               f"it before taking the top 50)")
    return report


def _check_circo(bench: Benchmark, obj: dict) -> CheckReport:
    part = bench.parts[0]
    report = CheckReport("circo", len(part.queries))
    _check_keys(report, obj, [q.qid for q in part.queries], set(), f"CIRCO {bench.split} query ids")
    ids = part.index()
    as_strings = 0
    n = min(CIRCO_TOP, len(part.gallery))
    for q in part.queries:
        if q.qid not in obj:
            continue
        value = _check_list(report, f"query {q.qid}", obj[q.qid], n,
                            lambda v: int_id(v) is not None and str(int_id(v)) in ids,
                            "a COCO 2017 unlabeled image id")
        has_str = bool(value) and any(isinstance(v, str) for v in value)
        as_strings += has_str
        mixed = has_str and any(isinstance(v, int) for v in value)
        if mixed and len({int_id(v) for v in value if _int_like(v)}) != len([v for v in value if _int_like(v)]):
            report.problems.append(f"query {q.qid}: the same image id is listed twice (as a number and a string)")
    if as_strings:
        report.warnings.append(f"{as_strings} lists give image ids as strings; the server's example uses integers")
    return report


def _int_like(v: Any) -> bool:
    return int_id(v) is not None
