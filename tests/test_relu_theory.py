"""Closed forms of a random two-layer ReLU net on a segment (theory.relu, numerics.relu.init_closed_forms)."""
import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numerics.compile import compiled
from numerics.relu import init_closed_forms
from theory.relu import arccos_kernels, segment_init

pos = st.floats(0.3, 3.0)
angles = st.floats(0.05, np.pi - 0.05)


def test_derivations_verify_their_steps():
    assert len(arccos_kernels().identities) >= 7
    assert len(segment_init().identities) >= 10


@given(r0=pos, r1=pos, sa=pos, sw=pos, d=st.integers(2, 50), t=st.floats(0.01, 0.99))
def test_closed_forms_vanish_as_theta_to_zero(r0, r1, sa, sw, d, t):
    th = 1e-7
    cf = init_closed_forms(th, r0, r1, sa, sw, d, t)
    scale = sa**2 * sw**2 * max(r0, r1) ** 2
    assert cf["kinks_per_unit"] == pytest.approx(th / np.pi, rel=1e-12)
    assert cf["gap_sq"] <= 2 * sa**2 * sw**2 * d * th
    assert abs(cf["gap_along_var"]) <= 2 * sa**2 * sw**2 * th
    assert abs(cf["chord_var"]) <= 1e-5 * scale


@given(r0=pos, r1=pos, sa=pos, sw=pos, d=st.integers(2, 50))
def test_closed_forms_at_theta_pi(r0, r1, sa, sw, d):
    th = np.pi - 1e-9  # antipodal endpoints: every unit kinks, gap components are independent sign flips
    cf = init_closed_forms(th, r0, r1, sa, sw, d, 0.3)
    s2 = sa**2 * sw**2
    assert cf["kinks_per_unit"] == pytest.approx(1.0, abs=1e-8)
    assert cf["gap_sq"] == pytest.approx(s2 * d, rel=1e-8)
    assert cf["gap_along_var"] == pytest.approx(s2, rel=1e-6)
    assert cf["gap_across_sq"] == pytest.approx(s2 * (d - 1), rel=1e-6)


@given(r=pos, sa=pos, sw=pos, t=st.floats(0.01, 0.49))
def test_chord_variance_at_theta_pi_equal_norms(r, sa, sw, t):
    cf = init_closed_forms(np.pi - 1e-10, r, r, sa, sw, 3, t)
    assert cf["chord_var"] == pytest.approx(t**2 * sa**2 * sw**2 * r**2, rel=1e-6)


@given(th=angles, r0=pos, r1=pos, sa=pos, sw=pos, d=st.integers(2, 20), t=st.floats(0.01, 0.99))
def test_gap_decomposes_along_plus_across_and_is_nonnegative(th, r0, r1, sa, sw, d, t):
    cf = init_closed_forms(th, r0, r1, sa, sw, d, t)
    assert cf["gap_along_var"] + cf["gap_across_sq"] == pytest.approx(cf["gap_sq"], rel=1e-12)
    assert cf["gap_sq"] == pytest.approx(sa**2 * sw**2 * d * th / np.pi, rel=1e-12)
    assert min(cf["gap_along_var"], cf["gap_across_sq"], cf["gap_normal_var"]) >= 0
    assert cf["chord_var"] >= -1e-14 * sa**2 * sw**2 * (r0 + r1) ** 2


@given(th=angles, r0=pos, r1=pos, t=st.floats(0.01, 0.99))
def test_compiled_numpy_matches_mpmath(th, r0, r1, t):
    args = ("theta", "t", "r0", "r1", "sa", "sw", "d")
    vals = (th, t, r0, r1, 1.1, 0.9, 5)
    for key in ("gap_along_var", "chord_var", "gap_normal_var"):
        ref = compiled(segment_init, key, args, "mpmath")(*[mpmath.mpf(v) for v in vals])
        got = compiled(segment_init, key, args, "numpy")(*vals)
        assert got == pytest.approx(float(ref), rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("bad", [0.0, np.pi, -1.0, np.nan])
def test_closed_forms_reject_degenerate_angles(bad):
    with pytest.raises(ValueError, match="theta"):
        init_closed_forms(bad)


def test_closed_forms_reject_bad_norms_and_dimension():
    with pytest.raises(ValueError, match="r1"):
        init_closed_forms(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="d must"):
        init_closed_forms(1.0, d=1)
