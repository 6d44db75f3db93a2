"""End to end: `lincir evaluate` on every benchmark and method, parity of the harness with a brute-force
reference pipeline, phi checkpoints (ours and the authors' format), and nothing written into the data."""
import json

import bench_fixtures as F
import pytest
import torch
import torch.nn.functional as Fn

from lincir.cli import main
from lincir.core.phi import Phi
from lincir.data import images as R
from lincir.errors import LincirError
from lincir.eval.benchmarks import load_benchmark
from lincir.eval.harness import rank_benchmark
from lincir.eval.methods import METHODS
from lincir.eval.query_encoder import QueryEncoder
from lincir.models.backbones import load_backbone
from lincir.models.phi_checkpoints import load_phi_checkpoint, save_phi

SPLITS = {"fashioniq": "val", "cirr": "val", "circo": "val", "genecis": "val"}


@pytest.fixture(scope="module")
def phi_dir(tmp_path_factory):
    """Our checkpoint format (phi.safetensors + phi.json) and the authors' ({"Phi": state_dict}, .pt)."""
    d = tmp_path_factory.mktemp("phi")
    backbone = load_backbone("shapes-clip", weights="random")
    torch.manual_seed(0)
    phi = Phi.for_backbone(backbone)
    save_phi(d / "ours", phi, {"backbone": "shapes-clip"})
    torch.save({"Phi": phi.state_dict()}, d / "authors.pt")
    return d


def evaluate(root, bench, method, out, phi=None, extra=()):
    argv = ["evaluate", "--benchmark", bench, "--data-root", str(root), "--split", SPLITS[bench],
            "--backbone", "shapes-clip", "--weights", "random", "--method", method, "--out", str(out), "--quiet"]
    if phi is not None:
        argv += ["--phi", str(phi)]
    return main(argv + list(extra))


@pytest.mark.parametrize("bench", ["fashioniq", "cirr", "circo", "genecis"])
def test_evaluate_every_method_end_to_end(tmp_path, phi_dir, bench, capsys):
    root = F.MAKERS[bench](tmp_path / "data")
    before = F.snapshot(root)
    for method in METHODS:
        out = tmp_path / "out" / method
        phi = phi_dir / "ours" if METHODS[method].needs_phi else None
        assert evaluate(root, bench, method, out, phi) == 0, capsys.readouterr().err
        result = json.loads((out / "metrics.json").read_text())
        assert result["benchmark"] == bench and result["method"] == method
        assert result["metrics"] and all(0 <= v <= 100 for v in result["metrics"].values())
        b = load_benchmark(bench, root, SPLITS[bench])
        # the ranking file written by evaluate scores to the same metrics
        rescored = b.metrics(b.read_ranking_file(json.loads((out / "rankings.json").read_text()), "rankings"))
        assert rescored == pytest.approx(result["metrics"])
    assert F.snapshot(root) == before  # nothing written into the dataset folder


def test_evaluate_with_the_authors_checkpoint_and_a_template(tmp_path, phi_dir):
    root = F.make_cirr(tmp_path / "data")
    with pytest.warns(UserWarning, match="made for backbone ViT-L-14"):  # the authors' files are for ViT-L/14
        assert evaluate(root, "cirr", "lincir", tmp_path / "a", phi_dir / "authors.pt") == 0
    assert evaluate(root, "cirr", "lincir", tmp_path / "b", phi_dir / "ours") == 0
    a = json.loads((tmp_path / "a" / "rankings.json").read_text())
    b = json.loads((tmp_path / "b" / "rankings.json").read_text())
    assert a == b  # same weights, either file format
    assert evaluate(root, "cirr", "lincir", tmp_path / "c", phi_dir / "ours",
                    ["--template", "$ but {text}"]) == 0
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["template"] == "$ but {text}"


class Payload:
    """Stands for any pickled object: loading it could run code, so weights_only=True must refuse it."""


def test_authors_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"Phi": Payload()}, path)
    backbone = load_backbone("shapes-clip", weights="random")
    with pytest.raises(LincirError, match="evil.pt"):
        load_phi_checkpoint(path, backbone)


def test_phi_for_another_backbone_is_refused(tmp_path):
    save_phi(tmp_path / "big", Phi(768, 768), {"backbone": "ViT-L-14"})
    with pytest.raises(LincirError, match="768"):
        load_phi_checkpoint(tmp_path / "big", load_backbone("shapes-clip", weights="random"))


@pytest.mark.parametrize("argv_extra,match", [
    (["--method", "lincir"], "--phi: method lincir needs a phi checkpoint"),
    (["--method", "nope"], "--method: unknown method 'nope'"),
    (["--method", "image", "--template", "no placeholder {text}"], "--template"),
])
def test_option_errors_are_one_line(tmp_path, capsys, argv_extra, match):
    root = F.make_circo(tmp_path / "data")
    argv = ["evaluate", "--benchmark", "circo", "--data-root", str(root), "--backbone", "shapes-clip",
            "--weights", "random", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv + argv_extra) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err


def test_cli_errors_name_the_file(tmp_path, capsys):
    root = F.make_fashioniq(tmp_path / "data")
    (root / "images" / f"{F.fiq_name('shirt', 4)}.jpg").unlink()
    assert evaluate(root, "fashioniq", "image", tmp_path / "o") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and F.fiq_name("shirt", 4) in err and "1 of 31" in err
    assert evaluate(tmp_path / "missing", "fashioniq", "image", tmp_path / "o") == 2
    assert "no such folder" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_out_inside_the_dataset_is_refused(tmp_path, capsys):
    root = F.make_cirr(tmp_path / "data")
    assert evaluate(root, "cirr", "image", root / "results") == 2
    assert "inside the dataset folder" in capsys.readouterr().err
    assert not (root / "results").exists()


# -- parity with a brute-force reference pipeline ---------------------------------------------------------

@pytest.fixture(scope="module")
def spread_backbone():
    """The random shapes CLIP, with image features from a fixed random projection of the pixels.

    Random-init image towers give almost identical features for all images (cosine ~ 1), so rankings would
    hinge on rounding; a projection of the pixels gives well-separated features and exact comparisons."""
    b = load_backbone("shapes-clip", weights="random")
    proj = torch.randn(3 * 64 * 64, b.embed_dim, generator=torch.Generator().manual_seed(0)) / 64
    b.encode_images = lambda pixels: pixels.to(b.device).flatten(1) @ proj
    return b


def _image(backbone, ref):
    with torch.no_grad():
        return backbone.encode_images(backbone.preprocess(R.open_image(ref))[None])[0]


def _reference_query(backbone, phi, method, ref_feat, texts, template="a photo of $ that {text}"):
    """One query feature, computed one text at a time without the harness."""
    img = Fn.normalize(ref_feat, dim=-1)
    if method == "image":
        return img
    feats = []
    with torch.no_grad():
        for t in texts:
            if method in ("text", "image+text", "slerp"):
                f = Fn.normalize(backbone.encode_text(backbone.tokenize([t]))[0], dim=-1)
                if method == "slerp":  # the closed form at weight 0.5, in float64
                    theta = torch.acos(torch.dot(img.double(), f.double()).clamp(-1, 1))
                    f = ((torch.sin(0.5 * theta) * (img.double() + f.double())) / torch.sin(theta)).float()
                    feats.append(f)
                    continue
                feats.append(f + img if method == "image+text" else f)
            else:
                tokens = backbone.tokenize([template.replace("{text}", t)])
                feats.append(backbone.encode_with_pseudo(tokens, phi(ref_feat[None]))[0])
    return Fn.normalize(sum(Fn.normalize(f, dim=-1) for f in feats), dim=-1)


def _reference_rankings(bench, backbone, phi, method):
    out = {}
    for part in bench.parts:
        gallery = Fn.normalize(torch.stack([_image(backbone, r) for r in part.gallery]), dim=-1)
        ranked = []
        for q in part.queries:
            qf = _reference_query(backbone, phi, method, _image(backbone, q.reference), q.texts)
            cands = list(q.candidates) if q.candidates is not None else list(range(len(part.gallery)))
            sims = gallery[cands] @ qf
            order = [int(i) for i in torch.argsort(sims, descending=True, stable=True)]
            order = [p for p in order if p not in q.exclude]
            ranked.append(order[:bench.top_k] if bench.top_k else order)
        out[part.name] = ranked
    return out


@pytest.mark.parametrize("bench", ["fashioniq", "cirr", "circo", "genecis"])
@pytest.mark.parametrize("method", ["lincir", "searle", "pic2word", "image+text", "text", "slerp"])
def test_harness_matches_reference_pipeline(tmp_path, spread_backbone, bench, method):
    root = F.MAKERS[bench](tmp_path)
    b = load_benchmark(bench, root, "val")
    torch.manual_seed(1)
    phi = Phi.for_backbone(spread_backbone).eval()
    encoder = QueryEncoder(spread_backbone, method, phi, batch_size=2)  # batches split queries
    ours = rank_benchmark(b, spread_backbone, encoder, batch_size=3, progress=False)
    ref = _reference_rankings(b, spread_backbone, phi, method)
    assert ours == ref
    assert b.metrics(ours) == pytest.approx(b.metrics(ref))


def test_cirr_members_below_the_cutoff_are_kept_in_global_order(tmp_path, spread_backbone, monkeypatch):
    root = F.make_cirr(tmp_path)
    b = load_benchmark("cirr", root, "val")
    monkeypatch.setattr(type(b), "top_k", 2)  # a cut-off above which most members fall
    encoder = QueryEncoder(spread_backbone, "image+text")
    ours = rank_benchmark(b, spread_backbone, encoder, progress=False)
    ref = _reference_rankings(b, spread_backbone, None, "image+text")
    monkeypatch.undo()
    full = _reference_rankings(b, spread_backbone, None, "image+text")
    for q, r, top2, everything in zip(b.parts[0].queries, ours["cirr"], ref["cirr"], full["cirr"]):
        assert r[:2] == top2  # the top is exact
        assert r == [p for p in everything if p in set(top2) | set(q.subset)]  # a subsequence of the full order
    assert b.metrics(ours)["R_subset@3"] == pytest.approx(b.metrics(full)["R_subset@3"])


def test_fashioniq_query_is_mean_of_both_orders(spread_backbone):
    texts = [("is red and is long", "is long and is red")]
    ref_feat = torch.randn(1, spread_backbone.embed_dim, generator=torch.Generator().manual_seed(3))
    enc = QueryEncoder(spread_backbone, "text")
    both = enc.encode(ref_feat, texts)
    one = enc.encode(ref_feat, [(texts[0][0],)])
    two = enc.encode(ref_feat, [(texts[0][1],)])
    torch.testing.assert_close(both, Fn.normalize(one + two, dim=-1))


def test_vit_b32_random_runs_end_to_end(tmp_path, phi_dir, capsys):
    """The one test on a real architecture (ViT-B-32 at random init, 224 px)."""
    root = F.make_cirr(tmp_path / "data")
    save_phi(tmp_path / "phi", Phi(512, 512), {"backbone": "ViT-B-32"})
    argv = ["evaluate", "--benchmark", "cirr", "--data-root", str(root), "--backbone", "ViT-B-32",
            "--weights", "random", "--method", "lincir", "--phi", str(tmp_path / "phi"), "--out",
            str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    assert set(json.loads((tmp_path / "out" / "metrics.json").read_text())["metrics"]) >= {"R@1", "R_subset@1"}


@pytest.mark.parametrize("bench,split", [("fashioniq", "test"), ("cirr", "test1"), ("circo", "test")])
def test_evaluate_test_splits_write_rankings_only(tmp_path, capsys, bench, split):
    root = F.MAKERS[bench](tmp_path / "data")
    argv = ["evaluate", "--benchmark", bench, "--data-root", str(root), "--split", split, "--backbone",
            "shapes-clip", "--weights", "random", "--method", "image+text", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["metrics"] == {}
    assert "no ground truth" in capsys.readouterr().err
    b = load_benchmark(bench, root, split)
    rankings = b.read_ranking_file(json.loads((tmp_path / "o" / "rankings.json").read_text()), "r")
    assert [len(r) for p in b.parts for r in rankings[p.name]] == [
        min(b.top_k, len(p.gallery) - len(q.exclude)) for p in b.parts for q in p.queries]
