import torch

from lincir.core.keyed_random import sample_generators
from lincir.core.phi import Phi
from lincir.data.batches import BatchSampler
from lincir.models.phi_checkpoints import load_phi, save_phi


def test_phi_shapes_and_authors_layer_names():
    phi = Phi(32, 48)
    assert phi(torch.randn(5, 32)).shape == (5, 48)
    names = {k.rsplit(".", 1)[0] for k in phi.state_dict()}
    assert names == {"layers.0", "layers.3", "layers.6"}
    assert phi.layers[0].out_features == 128 and phi.layers[3].out_features == 128


def test_keyed_dropout_is_per_sample():
    torch.manual_seed(0)
    phi = Phi(16, 8).train()
    x = torch.randn(4, 16)
    whole = phi(x, sample_generators(0, 5, range(4), 2))
    parts = torch.cat([phi(x[:2], sample_generators(0, 5, range(0, 2), 2)),
                       phi(x[2:], sample_generators(0, 5, range(2, 4), 2))])
    assert torch.allclose(whole, parts, atol=1e-6)
    assert not torch.allclose(whole, phi.eval()(x))


def test_save_and_load_roundtrip(tmp_path):
    phi = Phi(16, 8).eval()
    save_phi(tmp_path / "run", phi, {"backbone": "shapes-clip"})
    loaded, meta = load_phi(tmp_path / "run")
    assert meta["backbone"] == "shapes-clip" and meta["embed_dim"] == 16
    x = torch.randn(3, 16)
    assert torch.equal(loaded(x), phi(x))


def test_authors_torch_file_loads_with_weights_only(tmp_path):
    phi = Phi(16, 8).eval()
    torch.save({"Phi": phi.state_dict()}, tmp_path / "phi_best.pt")
    loaded, meta = load_phi(tmp_path / "phi_best.pt")
    assert meta["backbone"] == "ViT-L-14"
    assert torch.equal(loaded(torch.ones(1, 16)), phi(torch.ones(1, 16)))


def test_sampler_covers_each_epoch_once():
    s = BatchSampler(n=50, batch=10, seed=1)
    seen = torch.cat([s.indices(i) for i in range(5)])
    assert sorted(seen.tolist()) == list(range(50))
    assert not torch.equal(torch.cat([s.indices(i) for i in range(5, 10)]), seen)  # a new order next epoch


def test_bucketed_sampler_is_a_permutation_of_the_same_stream():
    lengths = torch.randint(5, 30, (64,))
    plain, bucketed = BatchSampler(64, 8, 2), BatchSampler(64, 8, 2, lengths=lengths, bucket_batches=4)
    a = sorted(torch.cat([plain.indices(i) for i in range(4)]).tolist())
    b = sorted(torch.cat([bucketed.indices(i) for i in range(4)]).tolist())
    assert a == b
    spread = [int(lengths[bucketed.indices(i)].max() - lengths[bucketed.indices(i)].min()) for i in range(4)]
    assert max(spread) < int(lengths.max() - lengths.min())
