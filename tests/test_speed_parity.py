"""The fast training step is exact: trimming, the direct block path and cached targets change no loss.

Parity against reference computations: open_clip's own forward on full-context tokens (the reference step's
path), fresh encodings against the memory-mapped cache, the reference loss against the fast loss for the same
inputs and generators. Plus smoke runs of the bench functions and commands on tiny inputs (no timing asserted).
"""
import numpy as np
import open_clip
import pytest
import torch

from lincir.cli import main
from lincir.core.losses import keyed_streams, reference_smp_loss, smp_loss
from lincir.core.phi import Phi
from lincir.core.text_encoding import TextTower, encode_text_with_pseudo_tokens, trim_padding
from lincir.data.feature_cache import cached_tokens, caption_targets, encode_captions
from lincir.data.keywords import mask_captions
from lincir.models.backbones import load_backbone
from lincir.speed import (bench_encoders, bench_keywords, bench_retrieval, bench_train_step, caption_word_counts,
    realistic_captions)

CAPTIONS = ["a red dog", "two small wooden houses next to a quiet river in the early morning light",
            "the man", "an old woman holding a green umbrella on a rainy street",
            "a cat", "three boats on a lake"]


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("shapes-clip", "random")


def _phi(backbone, seed=0):
    torch.manual_seed(seed)
    return Phi.for_backbone(backbone).train()


def test_direct_path_equals_open_clip_forward_with_gradients(backbone):
    """The direct block path (contiguous qkv, SDPA is_causal, last block at the pooled row only) against
    open_clip's transformer on the full, padded context: outputs and gradients through the pseudo-token."""
    assert backbone.tower.direct
    masked = mask_captions(CAPTIONS, "random_word", seed=0, backbone=backbone)
    full = backbone.tokenize(masked)  # (B, 32), padded to the context length
    pseudo = torch.randn(len(masked), backbone.token_width, generator=torch.Generator().manual_seed(0))
    outs, grads = [], []
    for tokens, direct in ((trim_padding(full), True), (full, False), (full, True)):
        p = pseudo.clone().requires_grad_(True)
        y = encode_text_with_pseudo_tokens(backbone.model, tokens, backbone.placeholder_id, p, direct=direct)
        (y * torch.linspace(-1, 1, y.shape[1])).sum().backward()
        outs.append(y.detach())
        grads.append(p.grad)
    assert trim_padding(full).shape[1] < full.shape[1]
    for y, g in zip(outs[1:], grads[1:]):
        assert (y - outs[0]).abs().max().item() < 1e-5
        assert (g - grads[0]).abs().max().item() < 1e-5
    plain = backbone.model.encode_text(backbone.tokenize(CAPTIONS))  # open_clip's own encode_text
    assert (backbone.encode_text(backbone.tokenize(CAPTIONS)) - plain).abs().max().item() < 1e-5


def test_tokens_after_end_of_text_cannot_change_the_output(backbone):
    """Why trimming is exact: in a causal tower the pooled end-of-text row never sees later positions,
    whatever they hold."""
    tokens = backbone.tokenize(CAPTIONS)
    eot = tokens.argmax(dim=-1)
    noisy = tokens.clone()
    g = torch.Generator().manual_seed(1)
    after = torch.arange(tokens.shape[1])[None, :] > eot[:, None]
    noisy[after] = torch.randint(1, 40000, (int(after.sum()),), generator=g)  # never the end-of-text id
    for direct in (True, False):
        a = encode_text_with_pseudo_tokens(backbone.model, tokens, direct=direct)
        b = encode_text_with_pseudo_tokens(backbone.model, noisy, direct=direct)
        assert (a - b).abs().max().item() < 1e-5


def test_direct_path_on_real_architecture_and_fallback():
    """ViT-S-32-alt's text tower (a real open_clip architecture, small) takes the direct path and matches
    open_clip's encode_text; a tower with custom blocks falls back to open_clip's forward."""
    torch.manual_seed(0)
    model = open_clip.create_model("ViT-S-32-alt", pretrained=None).eval().requires_grad_(False)
    tok = open_clip.get_tokenizer("ViT-S-32-alt")
    assert TextTower.of(model).direct
    tokens = tok(CAPTIONS)
    ours = encode_text_with_pseudo_tokens(model, trim_padding(tokens))
    assert (ours - model.encode_text(tokens)).abs().max().item() < 1e-5
    cfg = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16},
           "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2,
                        "block_type": "custom"}}
    open_clip.factory._MODEL_CONFIGS["lincir-test-custom-blocks"] = cfg
    custom = open_clip.create_model("lincir-test-custom-blocks", pretrained=None).eval()
    assert not TextTower.of(custom).direct
    t16 = tok(CAPTIONS[:3], context_length=16)
    assert (encode_text_with_pseudo_tokens(custom, trim_padding(t16)) - custom.encode_text(t16)).abs().max() < 1e-5


def test_cached_targets_equal_fresh_full_context_encodings(backbone):
    captions = realistic_captions(40, seed=3)
    fresh = backbone.model.encode_text(backbone.tokenize(captions)).numpy()  # open_clip, full context
    first = caption_targets(backbone, captions, "corpus-a")  # computes and writes the cache
    second = caption_targets(backbone, captions, "corpus-a")  # memory-mapped from disk
    assert isinstance(second, np.memmap) and second.shape == fresh.shape
    assert np.abs(first - fresh).max() < 1e-5
    assert np.array_equal(np.asarray(second), first)
    assert np.abs(encode_captions(backbone, captions, batch_size=7) - fresh).max() < 1e-5  # any batching


def test_cached_targets_hold_the_same_bits_whichever_thread_count_fills_them(monkeypatch):
    """A job's one-thread workers read what its two-thread main process cached: an entry filled by a one-thread
    process must hold the same bits (ENCODE_THREADS'), or a run's phi depends on who filled the cache first. On
    this machine 1,000 scenes captions encode differently on one and two threads (measured: 220 rows)."""
    from lincir.data import feature_cache
    from lincir.world.scenes.data import train_captions

    bb = load_backbone("scenes-clip-s", "pretrained")
    captions = train_captions(1000, 0)
    monkeypatch.setattr(feature_cache, "ENCODE_THREADS", 2)  # the default (the tests' environment sets 1)
    torch.set_num_threads(1)  # the caller: a one-thread worker
    cached = np.asarray(caption_targets(bb, captions, "corpus-threads"))
    assert torch.get_num_threads() == 1  # the caller's setting is given back
    assert np.array_equal(cached, _encoded_on(bb, captions, 2))
    # Another count is another entry (not the first one read back), again whatever the caller's threads.
    monkeypatch.setattr(feature_cache, "ENCODE_THREADS", 1)
    torch.set_num_threads(2)
    again = np.asarray(caption_targets(bb, captions, "corpus-threads"))
    assert np.array_equal(again, _encoded_on(bb, captions, 1))


def _encoded_on(bb, captions: list[str], threads: int) -> np.ndarray:
    n = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return encode_captions(bb, captions)
    finally:
        torch.set_num_threads(n)


def test_cached_tokens_equal_the_tokenizer_and_are_read_back(backbone):
    texts = [c.replace("a ", "a $ ", 1) for c in realistic_captions(30, seed=5)]
    first = cached_tokens(backbone, texts, chunk=7)  # chunked, computed, written
    again = cached_tokens(backbone, texts)  # read back from disk
    direct = backbone.tokenizer(texts)
    assert first.dtype == again.dtype == direct.dtype == torch.int64
    assert torch.equal(first, direct) and torch.equal(again, direct)
    assert not torch.equal(cached_tokens(backbone, texts[1:] + texts[:1]), direct)  # other texts, other entry


def test_fast_loss_equals_reference_loss_with_gradients(backbone):
    """Same captions, phi and per-sample generators: trimmed tokens + cached targets give the reference's
    loss (full context, original re-encoded) and the same gradient."""
    masked = mask_captions(CAPTIONS, "random_word", seed=0, backbone=backbone)
    targets = torch.from_numpy(np.array(caption_targets(backbone, CAPTIONS, "corpus-b")))
    slots = range(len(CAPTIONS))
    phi_ref, phi_fast = _phi(backbone), _phi(backbone)
    ref = reference_smp_loss(backbone, phi_ref, CAPTIONS, masked, "lincir", 1.0, *keyed_streams(7, 3, slots))
    fast = smp_loss(backbone, phi_fast, trim_padding(backbone.tokenize(masked)), targets, "lincir", 1.0,
                    *keyed_streams(7, 3, slots))
    ref.backward()
    fast.backward()
    assert abs(ref.item() - fast.item()) < 1e-6
    for a, b in zip(phi_ref.parameters(), phi_fast.parameters()):
        assert (a.grad - b.grad).abs().max().item() < 1e-5
    other = smp_loss(backbone, _phi(backbone), trim_padding(backbone.tokenize(masked)), targets, "lincir", 1.0,
                     *keyed_streams(8, 3, slots))
    assert abs(other.item() - fast.item()) > 1e-6  # the check can fail: another seed, another loss


def test_realistic_captions_have_web_caption_lengths():
    counts = caption_word_counts(20000, seed=0)
    assert 9.8 < counts.mean() < 10.8 and 3.8 < counts.std() < 5.2 and counts.min() >= 3
    a, b = realistic_captions(200, seed=1), realistic_captions(200, seed=1)
    assert a == b and a != realistic_captions(200, seed=2)
    assert [len(c.split()) for c in a] == caption_word_counts(200, seed=1).tolist()


def test_bench_train_step_runs_and_sides_agree(backbone):
    captions = realistic_captions(64, seed=0)
    masked = mask_captions(captions, "random_word", seed=0, backbone=backbone)
    r = bench_train_step(backbone, captions, masked, batch_size=8, rounds=2, warmup=1, breakdown=True)
    assert r.loss_max_abs_diff < 1e-5
    assert len(r.fast.seconds) == len(r.reference.seconds) == 2 and set(r.extra) == {"trim", "trim+bucket"}
    assert r.fast_tokens < r.reference_tokens and r.ratio > 0 and r.amortised_ratio > 0
    assert not r.epoch_seconds


def test_bench_train_step_times_every_batch_of_an_epoch(backbone):
    captions = realistic_captions(40, seed=0)
    masked = mask_captions(captions, "random_word", seed=0, backbone=backbone)
    r = bench_train_step(backbone, captions, masked, batch_size=8, rounds=1, warmup=0, epoch=True)
    assert set(r.epoch_seconds) == {"bucketed", "iid"} and all(len(v) == 5 for v in r.epoch_seconds.values())
    # Every batch of the epoch, as the trainer's samplers draw them (tokens trimmed to each batch's longest).
    from lincir.data.batches import BatchSampler
    from lincir.data.feature_cache import token_lengths

    lengths = token_lengths(backbone, masked)
    for name, sampler in (("iid", BatchSampler(40, 8, 0)), ("bucketed", BatchSampler(40, 8, 0, lengths))):
        assert r.epoch_tokens[name] == [int(lengths[sampler.indices(s)].max()) for s in range(5)]
    total = sum(r.epoch_seconds["iid"])
    assert r.epoch_ratio("iid") == pytest.approx(r.reference.median * 5 / total)
    assert r.epoch_ratio("iid", with_cache=True) < r.epoch_ratio("iid")


def test_bench_encoders_keywords_retrieval_run(backbone):
    captions = realistic_captions(12, seed=0)
    masked = mask_captions(captions, "random_word", seed=0, backbone=backbone)
    e = bench_encoders(backbone, captions, masked, batch_size=4, rounds=2, warmup=1)
    assert e.image_size == 64 and e.text_vs_image > 0 and e.lincir_vs_pic2word > 0
    assert e.trimmed_tokens < e.context_length
    k = bench_keywords(realistic_captions(30, seed=0), rounds=1, warmup=0, naive=5)
    assert k.agree and "parser" in k.pipeline and k.ratio > 0 and k.naive.items == 5
    assert k.full_agree and k.no_parser is not None  # the parser-less side is timed, its differences counted
    r = bench_retrieval(queries=20, gallery=3000, dim=16, k=5, rounds=1, warmup=0)
    assert r.agree and r.chunked.peak > 0 and len(r.chunked.seconds) == 1


def test_bench_command_prints_both_sides_and_ratio(capsys, tmp_path):
    rc = main(["bench", "retrieval", "--queries", "10", "--gallery", "500", "--dim", "8", "--rounds", "1",
               "--warmup", "0", "--threads", "1", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "chunked" in out and "naive" in out and "ratio" in out
    assert (tmp_path / "r.json").is_file()
    assert main(["bench", "retrieval", "--rounds", "0"]) == 2
    assert "--rounds: must be at least 1" in capsys.readouterr().err
