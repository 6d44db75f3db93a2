"""The paper's recipe: best-checkpoint selection (any benchmark, the tiny CIRR fixture), several corpora mixed by
weight, i.i.d. and bucketed batches (deterministic, resumable), the fp16 grad-scaler path, the preset."""
import json

import bench_fixtures as F
import pytest
import torch
from safetensors.torch import load_file

from lincir.cli import main
from lincir.data.batches import BatchSampler, MixedStream
from lincir.train.config import RUNS, TrainConfig
from lincir.train.loop import backward_and_step, grad_scaler_for, train

TINY = dict(backbone="shapes-clip", weights="random", world_captions=400, batch_size=16, log_every=2,
            save_every=4, device="cpu")
CLI_TINY = ["--backbone", "shapes-clip", "--weights", "random", "--world-captions", "300", "--batch-size", "8",
            "--log-every", "1", "--no-progress", "--device", "cpu"]


def _tensors(path):
    return load_file(str(path))


def _same(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- best checkpoint ---------------------------------------------------------------------------------------

SCRIPT = {1: 1.0, 2: 5.0, 3: 3.0, 4: 5.0, 5: 2.0, 6: 4.0}  # best at step 2 (the tie at 4 keeps the earlier)


def scripted(values):
    return lambda step, phi: {"m": values[step]}


def test_phi_best_is_the_phi_of_the_best_step(tmp_path):
    cfg = TrainConfig(**{**TINY, "steps": 6, "val_every": 1, "best_metric": "m"})
    train(cfg, tmp_path / "run", callbacks=[scripted(SCRIPT)], progress=False)
    best = json.loads((tmp_path / "run" / "phi_best.json").read_text())
    assert best["step"] == 2 and best["val"] == {"m": 5.0}
    assert json.loads((tmp_path / "run" / "phi.json").read_text())["best"]["value"] == 5.0
    train(TrainConfig(**{**TINY, "steps": 2}), tmp_path / "two", progress=False)  # runs are pure in the step
    assert _same(_tensors(tmp_path / "run" / "phi_best.safetensors"), _tensors(tmp_path / "two" / "phi.safetensors"))
    assert not _same(_tensors(tmp_path / "run" / "phi_best.safetensors"), _tensors(tmp_path / "run" / "phi.safetensors"))


@pytest.mark.parametrize("later_best", [False, True])
def test_resume_keeps_the_best_so_far(tmp_path, later_best):
    values = {**SCRIPT, 6: 9.0} if later_best else SCRIPT
    cfg = TrainConfig(**{**TINY, "steps": 6, "val_every": 1, "best_metric": "m"})
    train(cfg, tmp_path / "whole", callbacks=[scripted(values)], progress=False)

    def stop_at_4(step, phi):
        if step == 4:
            raise KeyboardInterrupt
        return {"m": values[step]}

    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut", callbacks=[stop_at_4], progress=False)
    # Resumed from step 4: steps 5 (2.0) and 6 must not replace the step-2 phi unless 6 beats it.
    train(cfg, tmp_path / "cut", resume=True, callbacks=[scripted(values)], progress=False)
    for name in ("phi_best.safetensors", "phi.safetensors"):
        assert _same(_tensors(tmp_path / "whole" / name), _tensors(tmp_path / "cut" / name))
    step = json.loads((tmp_path / "cut" / "phi_best.json").read_text())["step"]
    assert step == (6 if later_best else 2)


def test_best_checkpoint_on_the_tiny_cirr(tmp_path, capsys):
    root = F.make_cirr(tmp_path / "data")
    out = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--steps", "6", "--validate", "cirr", "--data-root", str(root),
                 "--validate-every", "2", "--best-metric", "cirr_R@1", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    vals = [(r["step"], r["val"]) for r in rows if "val" in r]
    assert [s for s, _ in vals] == [2, 4, 6]
    assert {"cirr_R@1", "cirr_R@5", "cirr_R_subset@1", "cirr_avg(R@5,R_subset@1)"} <= set(vals[0][1])
    best_step = max(vals, key=lambda sv: (sv[1]["cirr_R@1"], -sv[0]))[0]  # highest, earliest of ties
    best = json.loads((out / "phi_best.json").read_text())
    assert best["step"] == best_step and best["best_metric"] == "cirr_R@1"
    # phi_best holds exactly the phi of that step: a run of that many steps ends there.
    assert main(["train", *CLI_TINY, "--steps", str(best_step), "--out", str(tmp_path / "short")]) == 0
    assert _same(_tensors(out / "phi_best.safetensors"), _tensors(tmp_path / "short" / "phi.safetensors"))
    capsys.readouterr()
    # Without a data root the run stops before training, with one line naming what is missing.
    assert main(["train", *CLI_TINY, "--steps", "2", "--validate", "cirr", "--out", str(tmp_path / "x")]) == 2
    assert "--data-root" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_world_validation_is_one_case_of_the_mechanism(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--steps", "2", "--validate-world", "--out", str(out)]) == 0
    best = json.loads((out / "phi_best.json").read_text())
    assert best["best_metric"] == "world_R@10" and "world_mAP@10" in best["val"]


# -- corpora -----------------------------------------------------------------------------------------------

def test_mixing_weights_are_honoured_and_deterministic():
    sizes, weights, batch = [500, 37, 11], [0.6, 0.3, 0.1], 50
    mix = MixedStream(sizes, weights, batch, seed=3)
    counts = torch.zeros(3)
    seen = [[] for _ in sizes]
    for step in range(1200):
        idx = mix.step_indices(step)
        assert len(idx) == batch
        corpus = torch.bucketize(idx, torch.tensor([500, 537]), right=True)
        counts += torch.bincount(corpus, minlength=3)
        for c in range(3):
            seen[c] += idx[corpus == c].tolist()
    share = counts / counts.sum()
    assert torch.allclose(share, torch.tensor(weights), atol=0.004), share
    # Each corpus walks whole permutations of itself: after k epochs and a part, every caption was seen k or k + 1
    # times (i.i.d. draws with replacement would spread far wider).
    for c, (n, off) in enumerate(zip(sizes, [0, 500, 537])):
        times = torch.bincount(torch.tensor(seen[c]) - off, minlength=n)
        assert len(times) == n and int(times.max() - times.min()) <= 1, (c, times.min(), times.max())
    # A pure function of (seed, step): a fresh stream asked out of order agrees; another seed differs.
    fresh = MixedStream(sizes, weights, batch, seed=3)
    assert torch.equal(fresh.step_indices(900), mix.step_indices(900))
    assert torch.equal(fresh.step_indices(5), mix.step_indices(5))
    assert not torch.equal(MixedStream(sizes, weights, batch, seed=4).step_indices(5), mix.step_indices(5))
    # Weight 0: that corpus is never drawn.
    assert (MixedStream([10, 10], [1.0, 0.0], 7, 0).stream(0, 50) < 10).all()


def _write_corpora(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from lincir.world.data import train_captions

    caps = train_captions(120, seed=0)
    tmp_path = tmp_path / "corpora"  # inputs in their own folder: no output may be written inside one
    tmp_path.mkdir()
    txt = tmp_path / "cc3m.txt"
    txt.write_text("\n".join(caps[:80]) + "\n", encoding="utf-8")
    prompts = tmp_path / "prompts.parquet"  # the prompt datasets' layout: a "prompt" column among others
    pq.write_table(pa.table({"prompt": caps[80:], "seed": list(range(40))}), prompts)
    return txt, prompts


def test_several_corpora_in_one_run(tmp_path):
    txt, prompts = _write_corpora(tmp_path)
    out = tmp_path / "run"
    assert main(["train", *CLI_TINY, "--steps", "4", "--corpus", str(txt), "--corpus", str(prompts),
                 "--corpus-weight", "0.5", "--corpus-weight", "0.5", "--masking", "template", "--out", str(out)]) == 0
    run = json.loads((out / "config.json").read_text())
    assert run["config"]["corpus"] == [str(txt), str(prompts)] and run["config"]["corpus_weights"] == [0.5, 0.5]
    assert "80 captions" in run["corpus"] and "40 captions" in run["corpus"]
    assert main(["train", *CLI_TINY, "--steps", "2", "--corpus", str(txt), "--corpus-weight", "1",
                 "--corpus-weight", "2", "--out", str(tmp_path / "bad")]) == 2


# -- batches -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bucketed", [False, True])
def test_batches_are_a_pure_function_of_the_step(bucketed):
    lengths = torch.randint(3, 30, (300,), generator=torch.Generator().manual_seed(0)) if bucketed else None
    a, b = BatchSampler(300, 16, 5, lengths, bucket_batches=4), BatchSampler(300, 16, 5, lengths, bucket_batches=4)
    seq = [a.indices(s) for s in range(40)]
    assert all(torch.equal(b.indices(s), seq[s]) for s in (37, 3, 22, 0))  # any order, fresh sampler
    # 16 x 16 = 256 of 300 (whole bucketing pools of 4 batches, inside the first epoch): no caption twice.
    epoch = torch.cat(seq[:16])
    assert len(set(epoch.tolist())) == len(epoch)


@pytest.mark.parametrize("bucket", [False, True])
def test_iid_and_bucketed_runs_resume_bit_for_bit(tmp_path, bucket):
    cfg = TrainConfig(**{**TINY, "steps": 10, "bucket": bucket})
    train(cfg, tmp_path / "whole", progress=False)

    def interrupt_at_6(step, phi):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**{**TINY, "steps": 10, "bucket": bucket, "val_every": 3}), tmp_path / "cut",
              progress=False, callbacks=[interrupt_at_6])
    train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert (tmp_path / "whole" / "phi.safetensors").read_bytes() == (tmp_path / "cut" / "phi.safetensors").read_bytes()
    train(cfg, tmp_path / "again", progress=False)
    assert (tmp_path / "whole" / "phi.safetensors").read_bytes() == (tmp_path / "again" / "phi.safetensors").read_bytes()


def test_bucketing_changes_the_batches_and_the_flag_reaches_the_config(tmp_path):
    a, b = TrainConfig(**{**TINY, "steps": 3}), TrainConfig(**{**TINY, "steps": 3, "bucket": False})
    train(a, tmp_path / "a", progress=False)
    train(b, tmp_path / "b", progress=False)
    assert (tmp_path / "a" / "phi.safetensors").read_bytes() != (tmp_path / "b" / "phi.safetensors").read_bytes()
    assert main(["train", *CLI_TINY, "--steps", "1", "--no-bucketing", "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "config.json").read_text())["config"]["bucket"] is False


# -- precision ---------------------------------------------------------------------------------------------

def _toy():
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    return lin, torch.optim.AdamW(lin.parameters(), lr=1e-2)


def test_grad_scaler_step_equals_the_plain_step():
    """The scaler logic on CPU (the CUDA fp16 path uses the same calls): a power-of-two scale is undone exactly."""
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    plain, opt_p = _toy()
    plain(x).pow(2).mean().backward()
    opt_p.step()
    for scaler in (torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=True),
                   torch.amp.GradScaler("cpu", enabled=False)):
        lin, opt = _toy()
        backward_and_step(lin(x).pow(2).mean(), lin, opt, scaler)
        assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), plain.parameters()))


def test_grad_scaler_skips_an_overflowing_step_and_lowers_the_scale():
    lin, opt = _toy()
    before = [p.detach().clone() for p in lin.parameters()]
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12, enabled=True)
    loss = lin(torch.full((2, 4), float("inf"))).sum()  # inf gradients: what an fp16 overflow gives
    backward_and_step(loss, lin, opt, scaler)
    assert all(torch.equal(p, q) for p, q in zip(lin.parameters(), before))
    assert scaler.get_scale() == 2.0 ** 11


def test_scaler_only_for_fp16_on_cuda():
    cpu = torch.device("cpu")
    assert not any(grad_scaler_for(cpu, p).is_enabled() for p in ("auto", "fp32", "bf16", "fp16"))


def test_enabled_scaler_state_survives_a_checkpoint(tmp_path):
    from lincir.core.phi import Phi
    from lincir.train.checkpoint import load_checkpoint, save_checkpoint

    cfg = TrainConfig()
    phi = Phi(8, 6)
    opt = torch.optim.AdamW(phi.parameters())
    scaler = torch.amp.GradScaler("cpu", init_scale=512.0, enabled=True)
    save_checkpoint(tmp_path, phi, opt, 3, cfg, scaler=scaler)
    again = torch.amp.GradScaler("cpu", init_scale=1.0, enabled=True)
    assert load_checkpoint(tmp_path, Phi(8, 6), torch.optim.AdamW(Phi(8, 6).parameters()), cfg, scaler=again) == 3
    assert again.get_scale() == 512.0


# -- the preset --------------------------------------------------------------------------------------------

def test_paper_preset_is_the_papers_recipe():
    p = RUNS["paper"]
    assert p.corpora == ["cc3m.tsv", "sd_prompts.parquet"] and p.bucket is False and p.precision == "fp16"
    assert (p.val_benchmark, p.val_every, p.best_metric) == ("cirr", 1000, "cirr_avg(R@5,R_subset@1)")
    assert (p.lr, p.weight_decay, p.batch_size, p.steps) == (1e-4, 0.01, 512, 20000)
    assert RUNS["world"].bucket is True  # the world presets keep bucketing (see README: the ablation)
    p.validate()


def test_t_interval_of_the_ablation():
    from lincir.experiments.bucketing import t_interval

    lo, hi = t_interval([1.0, 2.0, 3.0])  # mean 2, sample sd 1, t(0.975, 2) = 4.303
    assert (lo, hi) == pytest.approx((2 - 4.303 / 3 ** 0.5, 2 + 4.303 / 3 ** 0.5))
    with pytest.raises(ValueError):
        t_interval([1.0])
