import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossagent.actions.minecraft.camera_quantizer import COARSE_QUANTIZER, FINE_QUANTIZER, CameraQuantizer

SPEC_CENTRES = [-10, -7.244, -5.211, -3.712, -2.607, -1.791, -1.19, -0.746, -0.419, -0.178, 0]


def test_fine_bin_centres_match_the_spec():
    quantizer = CameraQuantizer(maxval=10, binsize=1, mu=20)
    assert quantizer == FINE_QUANTIZER
    assert quantizer.n_bins == 21
    assert quantizer.null_bin == 10
    expected = SPEC_CENTRES + [-c for c in reversed(SPEC_CENTRES[:-1])]
    np.testing.assert_allclose(np.round(quantizer.bin_centres(), 3), expected, atol=1e-9)


def test_coarse_mapper():
    assert COARSE_QUANTIZER.n_bins == 11
    assert COARSE_QUANTIZER.null_bin == 5
    centres = COARSE_QUANTIZER.bin_centres()
    assert centres[0] == pytest.approx(-10) and centres[-1] == pytest.approx(10) and centres[5] == 0


def test_encode_follows_the_formula():
    quantizer = FINE_QUANTIZER
    for x in [-12.0, -3.0, -0.1, 0.0, 0.05, 0.5, 2.85, 9.9, 45.0]:
        clipped = max(-10.0, min(10.0, x))
        v = np.sign(clipped) * np.log(1 + 20 * abs(clipped) / 10) / np.log(1 + 20) * 10
        assert quantizer.encode(x) == round(v + 10)
    assert quantizer.encode(0.0) == 10
    assert quantizer.encode(100.0) == 20 and quantizer.encode(-100.0) == 0  # capped at +-10 degrees


def test_encode_and_decode_arrays():
    bins = FINE_QUANTIZER.encode([[0.0, 2.85], [-45.0, 0.2]])
    assert bins.tolist() == [[10, 16], [0, 11]]
    assert FINE_QUANTIZER.decode(bins).shape == (2, 2)
    with pytest.raises(ValueError):
        FINE_QUANTIZER.decode([21])


@pytest.mark.parametrize("quantizer", [FINE_QUANTIZER, COARSE_QUANTIZER])
def test_bin_centres_encode_to_their_bin(quantizer):
    bins = np.arange(quantizer.n_bins)
    assert quantizer.encode(quantizer.decode(bins)).tolist() == bins.tolist()


@given(st.floats(-10, 10))
def test_decode_of_encode_is_the_nearest_centre_in_mu_law_space(x):
    centre = float(FINE_QUANTIZER.decode(FINE_QUANTIZER.encode(x)))
    assert abs(centre) <= 10
    assert np.sign(centre) in (0, np.sign(x))
    assert FINE_QUANTIZER.encode(centre) == FINE_QUANTIZER.encode(x)
