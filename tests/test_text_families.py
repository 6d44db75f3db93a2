"""One parity test per open_clip text-tower family, at random init on shrunken copies of the real configs:
the pseudo-token set to a real word's embedding gives exactly open_clip's encode_text of the sentence holding
that word, on the trainer's path (trimmed where the family allows it, full padding where it does not)."""
import copy

import open_clip
import pytest
import torch
from parity import assert_gradients_reach_phi_only, word_and_masked

from lincir.core.phi import Phi
from lincir.core.text_encoding import encode_text_with_pseudo_tokens
from lincir.errors import LincirError
from lincir.models.backbones import family_of, load_backbone
from lincir.models.text_families import from_config

# test name -> (real architecture it shrinks, expected family, trimmed, placeholder path, tokenizer)
FAMILIES = {
    "lincir-test-clip": ("ViT-B-32", "causal-eot", True, "token", "clip-bpe"),
    "lincir-test-siglip": ("ViT-B-16-SigLIP", "bidirectional", False, "by-id", "stand-in"),
    "lincir-test-siglip2": ("ViT-B-16-SigLIP2", "bidirectional", False, "by-id", "stand-in"),
    "lincir-test-mobileclip2": ("MobileCLIP2-S0", "bidirectional", False, "token", "clip-bpe"),
    "lincir-test-pecore": ("PE-Core-B-16", "causal-eot", True, "token", "clip-bpe"),
    # causal, pooled at the tokenizer's own end-of-text id (1, mT5's), a canonicalising Hugging Face tokenizer
    "lincir-test-eos": ("ViT-L-14-worldwide", "causal-eot", True, "by-id", "stand-in"),
}


def _register_small(name: str, arch: str) -> None:
    """The real config with a tiny image tower and a 2-layer, 64-wide text tower (vocabulary shrunk only
    where the tokenizer is not CLIP's BPE, whose ids need all 49,408 rows)."""
    cfg = copy.deepcopy(open_clip.get_model_config(arch))
    cfg["embed_dim"] = 48
    cfg["vision_cfg"] = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16}
    text = cfg["text_cfg"]
    text.update(width=64, heads=2, layers=2)
    if text.get("hf_tokenizer_name"):
        text["vocab_size"] = 4096
    open_clip.factory._MODEL_CONFIGS[name] = cfg


for _name, (_arch, *_) in FAMILIES.items():
    _register_small(_name, _arch)


@pytest.fixture(scope="module", params=list(FAMILIES))
def backbone(request):
    return load_backbone(request.param, weights="random")


SENTENCES = ["a photo of a red dog on the grass", "two cats and a dog", "a dog"]


def _word_and_masked(bb, word="dog"):
    return word_and_masked(bb, SENTENCES, word)


def test_family_is_classified_as_expected(backbone):
    arch, name, trim, placeholder, tokenizer = FAMILIES[backbone.name]
    f = backbone.family
    assert (f.name, f.trim, f.placeholder, f.tokenizer) == (name, trim, placeholder, tokenizer)
    assert f.direct == backbone.tower.direct == (name == "causal-eot")  # the direct causal path where exact
    assert from_config(open_clip.get_model_config(arch)).name == name  # the real config: the same family
    assert family_of(backbone.name).name == name
    assert f.context_length == backbone.context_length == open_clip.get_model_config(arch)["text_cfg"].get(
        "context_length", 77)


def test_placeholder_as_word_equals_encode_text_on_trainer_path(backbone):
    ref, masked, word = _word_and_masked(backbone)
    tokens = backbone.trim(masked)  # what the trainer and the evaluation hand the encoder
    if backbone.family.trim:
        assert tokens.shape[1] < backbone.context_length
    else:
        assert tokens.shape[1] == backbone.context_length
    emb = backbone.tower.token_embedding.weight[word].expand(len(SENTENCES), -1)  # (B, w)
    ours = backbone.encode_with_pseudo(tokens, emb)
    want = backbone.model.encode_text(ref)  # open_clip's own forward, full context
    assert (ours - want).abs().max().item() < 1e-5
    assert (backbone.encode_text(ref) - want).abs().max().item() < 1e-5
    assert (backbone.encode_texts(SENTENCES, batch_size=2) - want).abs().max().item() < 1e-5
    # the authors' path (open_clip's blocks, full context) agrees too
    slow = encode_text_with_pseudo_tokens(backbone.model, masked, backbone.placeholder_id, emb, direct=False)
    assert (slow - want).abs().max().item() < 1e-5


def test_gradients_reach_pseudo_token_never_backbone(backbone):
    assert_gradients_reach_phi_only(backbone, 64)


def test_untrimmable_family_refuses_a_short_batch(backbone):
    full = backbone.tokenizer(SENTENCES)
    tokens = full[:, :12]  # past every sentence's end of text: only padding is cut
    # open_clip's own blocks on the cut batch (CLIP.encode_text itself takes only the full context)
    cut = encode_text_with_pseudo_tokens(backbone.model, tokens, direct=False) if backbone.family.trim \
        else backbone.model.encode_text(tokens)
    same = (cut - backbone.model.encode_text(full)).abs().max().item() < 1e-5
    assert same == backbone.family.trim  # trimming is exact exactly where the family says so
    if not backbone.family.trim:
        with pytest.raises(ValueError, match="depends on its padding"):
            encode_text_with_pseudo_tokens(backbone.model, tokens, tower=backbone.tower)


def test_hugging_face_tower_without_its_files_fails_in_one_line():
    """xlm-roberta's tokenizer and config are not here offline: one line, whether transformers is installed
    (then the tokenizer cannot load) or not (then it is named as missing). tests/test_hf_towers.py builds
    tiny Hugging Face towers from local folders."""
    with pytest.raises(LincirError, match="Hugging Face") as e:
        load_backbone("xlm-roberta-base-ViT-B-32", weights="random")
    assert "\n" not in str(e.value)


def test_coca_tower_is_refused_in_one_line():
    with pytest.raises(LincirError, match="appended CLS embedding") as e:
        load_backbone("coca_ViT-B-32", weights="random")
    assert "\n" not in str(e.value)


def test_unknown_architecture_fails_fast():
    with pytest.raises(LincirError, match="unknown backbone 'ViT-Q-99'"):
        load_backbone("ViT-Q-99", weights="random")
    with pytest.raises(LincirError, match="no pretrained tag"):
        load_backbone("ViT-B-32:no-such-tag", weights="random")
    from lincir.models.backbones import resolve_spec

    spec = resolve_spec("ViT-B-32:openai")  # ARCH:TAG: the tag, and OpenAI's QuickGELU
    assert (spec.arch, spec.pretrained, spec.quick_gelu) == ("ViT-B-32", "openai", True)
    with pytest.raises(LincirError, match="names no pretrained tag"):
        load_backbone("lincir-test-siglip", weights="pretrained")


def _lengths_seen(bb):
    """Token lengths of every batch the backbone's text tower embeds (a hook on its token embedding)."""
    seen = []
    bb.tower.token_embedding.register_forward_hook(lambda m, args, out: seen.append(args[0].shape[1]))
    return seen


@pytest.mark.parametrize("name", ["lincir-test-siglip", "lincir-test-mobileclip2"])
def test_untrimmable_family_is_never_trimmed_by_trainer_cache_or_evaluation(tmp_path, monkeypatch, name):
    from lincir.eval.query_encoder import QueryEncoder
    from lincir.train import loop
    from lincir.train.config import TrainConfig

    bb = load_backbone(name, weights="random")
    seen = _lengths_seen(bb)
    monkeypatch.setattr(loop, "load_backbone", lambda *a, **k: bb)
    corpus = tmp_path / "corpus" / "captions.txt"  # its own folder: outputs never go inside an input's
    corpus.parent.mkdir()
    corpus.write_text("".join(f"a small {c} dog runs on the grass number {i}\n"
                              for i, c in enumerate(["red", "blue", "green", "big"] * 6)))
    cfg = TrainConfig(backbone=name, weights="random", corpus=str(corpus), steps=2, batch_size=4,
                      masking="random_word", log_every=1, save_every=2, device="cpu")
    loop.train(cfg, tmp_path / "run", progress=False)  # the target cache, then two training steps
    n_train = len(seen)
    assert n_train >= 3 and set(seen) == {bb.context_length}
    phi = Phi.for_backbone(bb)
    for method in ("text", "lincir"):
        QueryEncoder(bb, method, phi, batch_size=2).encode(torch.randn(2, 48), [["is red"], ["is blue", "x"]])
    assert len(seen) > n_train and set(seen) == {bb.context_length}


def test_trimmable_family_is_trimmed_by_the_trainer(tmp_path, monkeypatch):
    from lincir.train import loop
    from lincir.train.config import TrainConfig

    bb = load_backbone("lincir-test-pecore", weights="random")
    seen = _lengths_seen(bb)
    monkeypatch.setattr(loop, "load_backbone", lambda *a, **k: bb)
    corpus = tmp_path / "corpus" / "captions.txt"  # its own folder: outputs never go inside an input's
    corpus.parent.mkdir()
    corpus.write_text("".join(f"a small {c} dog on the grass\n" for c in ["red", "blue", "green", "big"] * 4))
    cfg = TrainConfig(backbone="lincir-test-pecore", weights="random", corpus=str(corpus), steps=2, batch_size=4,
                      masking="random_word", log_every=1, save_every=2, device="cpu")
    loop.train(cfg, tmp_path / "run", progress=False)
    assert seen and max(seen) < bb.context_length


def test_backbones_command_tells_family_and_path(capsys):
    from lincir.cli import main

    assert main(["backbones", "ViT-B-16-SigLIP"]) == 0
    out = capsys.readouterr().out
    assert "bidirectional" in out and "full 64-token padding" in out and "by token id" in out
    assert main(["backbones", "PE-Core-B-16"]) == 0
    out = capsys.readouterr().out
    assert "causal-eot" in out and "trimmed" in out and "32-token" in out
    assert main(["backbones"]) == 0
    assert "ViT-L-14" in capsys.readouterr().out
    assert main(["backbones", "nllb-clip-base"]) == 0
    out = capsys.readouterr().out
    assert "hf-masked" in out and "inputs_embeds" in out
    assert main(["backbones", "coca_ViT-B-32"]) == 0
    assert "refused" in capsys.readouterr().out
    assert main(["backbones", "ViT-Q-99"]) == 2


class _FakeHF:
    """The slice of a Hugging Face tokenizer `hf_by_id_tokenizer` uses: ids by word, `$` a piece of its own,
    an end-of-text id appended as special token (as T5's post-processor does)."""

    pad_token_id, unk_token_id, sep_token_id, eos = 0, 2, 1, 1
    vocab = {"$": 5, "a": 6, "photo": 7, "of": 8, "dog": 9, "that": 10, "is": 11, "red": 12, "two": 13, "cats": 14,
             "and": 15, "on": 16, "the": 17, "grass": 18, "table": 19}

    def __call__(self, text, add_special_tokens=True):
        class Out:
            input_ids = [self.vocab.get(w, self.unk_token_id) for w in text.split()] + [self.eos] * add_special_tokens
        return Out()


class _FakeOpenClipTokenizer:
    """open_clip's HFTokenizer over _FakeHF: cleaned (canonicalise: `$` vanishes), framed, cut, padded."""

    def __init__(self, context_length=8):
        from open_clip.tokenizer import get_clean_fn

        self.tokenizer, self.clean_fn, self.context_length = _FakeHF(), get_clean_fn("canonicalize"), context_length

    def __call__(self, texts):
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, t in enumerate(texts):
            ids = self.tokenizer(self.clean_fn(t), add_special_tokens=False).input_ids[: self.context_length - 1]
            out[i, : len(ids) + 1] = torch.tensor(ids + [_FakeHF.eos])
        return out


def test_hugging_face_tokenizer_gets_the_placeholder_by_id():
    from lincir.models.tokenizers import hf_by_id_tokenizer

    tok = hf_by_id_tokenizer(_FakeOpenClipTokenizer())
    assert tok.placeholder_id == 5
    ids = tok(["a photo of $ that is red!", "a $", "a photo of a photo of a photo"])
    assert ids.tolist() == [[6, 7, 8, 5, 10, 11, 12, 1], [6, 5, 1, 0, 0, 0, 0, 0], [6, 7, 8, 6, 7, 8, 6, 1]]


def test_hugging_face_by_id_tokenizer_must_reproduce_open_clips_ids():
    from lincir.models.tokenizers import hf_by_id_tokenizer

    class Framed(_FakeOpenClipTokenizer):  # open_clip's ids start with a token the Hugging Face one does not add
        def __call__(self, texts):
            return torch.cat([torch.full((len(texts), 1), 3), super().__call__(texts)[:, :-1]], dim=1)

    with pytest.raises(ValueError, match="does not reproduce open_clip's ids"):
        hf_by_id_tokenizer(Framed())


def _evaluate_family(tmp_path, capsys, name, bench):
    """`lincir evaluate` with LinCIR queries on a tiny benchmark fixture, on a random-init tower of the family."""
    import json

    import bench_fixtures as F

    from lincir.cli import main
    from lincir.models.phi_checkpoints import save_phi

    bb = load_backbone(name, weights="random")
    torch.manual_seed(0)
    save_phi(tmp_path / "phi", Phi.for_backbone(bb), {"backbone": name})
    root = F.MAKERS[bench](tmp_path / "data")
    out = tmp_path / "out"
    argv = ["evaluate", "--benchmark", bench, "--data-root", str(root), "--split", "val", "--backbone", name,
            "--weights", "random", "--method", "lincir", "--phi", str(tmp_path / "phi"), "--out", str(out), "--quiet"]
    assert main(argv) == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())["metrics"]
    assert metrics and all(0 <= v <= 100 for v in metrics.values())


@pytest.mark.parametrize("bench", ["fashioniq", "genecis"])
@pytest.mark.parametrize("name", ["lincir-test-siglip", "lincir-test-siglip2", "lincir-test-mobileclip2",
                                  "lincir-test-pecore"])
def test_evaluate_runs_on_each_family(tmp_path, capsys, name, bench):
    _evaluate_family(tmp_path, capsys, name, bench)


@pytest.mark.parametrize("bench", ["fashioniq", "genecis"])
def test_evaluate_runs_on_a_hugging_face_tower(tmp_path, capsys, bench):
    pytest.importorskip("transformers", reason="Hugging Face text towers need `transformers` (pip install 'lincir[hf]')")
    import hf_towers as H

    _evaluate_family(tmp_path, capsys, H.register(tmp_path / "hf", "xlm-roberta"), bench)
