"""Noise statistics: each distribution does what its docstring says, and is a pure function of its generator."""

import pytest
import torch

from lincir.core.keyed_random import sample_generators
from lincir.core.noise import NOISES, add_keyed_noise, add_noise, sample_noise

N, D = 20000, 64


def _noise(kind, scale, seed=0):
    return sample_noise(kind, (N, D), scale, torch.Generator().manual_seed(seed))


def test_every_noise_has_a_docstring():
    assert set(NOISES) == {"none", "gaussian", "uniform", "bernoulli", "lincir"}
    assert all(fn.__doc__ and len(fn.__doc__.splitlines()) == 1 for fn in NOISES.values())


def test_none_is_zero():
    assert torch.count_nonzero(_noise("none", 3.0)) == 0


def test_gaussian_mean_and_variance():
    n = _noise("gaussian", 0.5)
    assert abs(n.mean().item()) < 0.01
    assert n.var().item() == pytest.approx(0.25, rel=0.03)


def test_uniform_bounds_and_variance():
    n = _noise("uniform", 2.0)
    assert n.min().item() >= -2.0 and n.max().item() <= 2.0
    assert n.var().item() == pytest.approx(4.0 / 3.0, rel=0.03)


def test_bernoulli_takes_two_values():
    n = _noise("bernoulli", 0.3)
    assert set(torch.unique(n).tolist()) == pytest.approx([-0.3, 0.3])
    assert abs((n > 0).float().mean().item() - 0.5) < 0.01


def test_lincir_has_one_uniform_scale_per_sample():
    n = _noise("lincir", 1.0)
    # Per-sample std estimates u; u ~ U(0, 1) has mean 1/2 and variance 1/12.
    u = n.std(dim=1)  # estimates each sample's u (64 dims: a few percent of extra spread)
    assert u.mean().item() == pytest.approx(0.5, abs=0.02)
    assert u.var().item() == pytest.approx(1 / 12, rel=0.1)
    # Overall variance E[u^2] = 1/3; mean zero.
    assert n.var().item() == pytest.approx(1 / 3, rel=0.03)
    assert abs(n.mean().item()) < 0.01


def test_lincir_scale_multiplies():
    assert torch.allclose(_noise("lincir", 3.0), 3.0 * _noise("lincir", 1.0))


@pytest.mark.parametrize("kind", sorted(NOISES))
def test_same_generator_same_noise(kind):
    assert torch.equal(_noise(kind, 1.0, seed=7), _noise(kind, 1.0, seed=7))


def test_add_noise_keeps_input_untouched():
    x = torch.randn(4, D)
    before = x.clone()
    y = add_noise(x, "gaussian", 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(x, before) and not torch.equal(x, y)


def test_keyed_noise_does_not_depend_on_batch_layout():
    x = torch.randn(6, D)
    whole = add_keyed_noise(x, "lincir", 1.0, sample_generators(3, 10, range(6), 1))
    first = add_keyed_noise(x[:3], "lincir", 1.0, sample_generators(3, 10, range(0, 3), 1))
    second = add_keyed_noise(x[3:], "lincir", 1.0, sample_generators(3, 10, range(3, 6), 1))
    assert torch.equal(whole, torch.cat([first, second]))


def test_unknown_noise_is_named():
    with pytest.raises(KeyError, match="gausian"):
        sample_noise("gausian", (1, 2), 1.0, torch.Generator())
