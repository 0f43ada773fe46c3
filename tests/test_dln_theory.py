"""Derivations of theory.dln verify their own identities; compiled expressions agree with mpmath."""
import mpmath as mp
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from numerics.compile import compiled
from theory import dln as th

DERIVATIONS = [th.pm, th.uv_general, th.limits, th.isotropic, lambda: th.depth(3), lambda: th.depth(4)]


@pytest.mark.parametrize("build", DERIVATIONS)
def test_every_derivation_verifies_its_identities(build):
    d = build()
    assert len(d.identities) >= 4, d.name


def test_depth_below_three_is_rejected():
    with pytest.raises(ValueError, match="depth"):
        th.depth(2)


finite_z = st.floats(-50, 50, allow_nan=False)
log_alpha = st.floats(-4, 3)


@given(z=finite_z)
def test_q_numpy_and_torch_equal_mpmath(z):
    mp.mp.dps = 30
    ref = compiled(th.pm, "q", ("z",), "mpmath")(mp.mpf(z))
    got_np = compiled(th.pm, "q", ("z",), "numpy")(np.float64(z))
    got_t = compiled(th.pm, "q", ("z",), "torch")(torch.tensor(z, dtype=torch.float64)).item()
    scale = max(abs(float(ref)), 1e-300)
    assert abs(got_np - float(ref)) <= 1e-12 * scale + 1e-15
    assert abs(got_t - float(ref)) <= 1e-12 * scale + 1e-15


@given(s=st.floats(-0.999, 0.999), D=st.sampled_from([3, 4, 5]))
def test_depth_link_compiled_equals_mpmath(s, D):
    mp.mp.dps = 30
    ref = compiled(th.depth, "h_stable", ("s",), "mpmath", (D,))(mp.mpf(s))
    stable = compiled(th.depth, "h_stable", ("s",), "numpy", (D,))(np.float64(s))
    assert abs(stable - float(ref)) <= 1e-12 * max(abs(float(ref)), 1e-300) + 1e-300


@given(b=st.floats(-30, 30), la=log_alpha)
def test_potential_gradient_is_the_mirror_map(b, la):
    alpha = 10.0**la
    mp.mp.dps = 30
    Q = compiled(th.pm, "Q", ("b", "alpha"), "mpmath")
    mirror = compiled(th.pm, "mirror", ("b", "alpha"), "numpy")(b, alpha)
    num = mp.diff(lambda x: Q(x, mp.mpf(alpha)), mp.mpf(b))
    assert abs(float(num) - mirror) <= 1e-10 * max(1.0, abs(mirror))


@given(bstar=st.floats(-3, 3).filter(lambda x: abs(x) > 1e-3), la=st.floats(-2, 0.5), t=st.floats(0, 20))
def test_isotropic_closed_form_solves_the_coordinate_ode(bstar, la, t):
    """db/dt = -4 sqrt(b^2 + 4 alpha^4)(b - b*) checked by a high-precision derivative of the compiled b(t)."""
    mp.mp.dps = 40
    alpha = mp.mpf(10) ** la
    f = compiled(th.isotropic, "b_of_t", ("t", "b_star", "c"), "mpmath")
    bt = lambda tt: f(tt, mp.mpf(bstar), 2 * alpha**2)  # noqa: E731
    lhs = mp.diff(bt, mp.mpf(t))
    b = bt(mp.mpf(t))
    rhs = -4 * mp.sqrt(b**2 + 4 * alpha**4) * (b - bstar)
    assert abs(lhs - rhs) <= mp.mpf(10) ** -20 * (1 + abs(rhs))
