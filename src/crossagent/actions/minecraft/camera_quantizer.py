"""Mu-law camera quantisation (spec section 3), as VPT's CameraQuantizer does it.

Mu-law spends more bins on small moves, where aiming needs precision, than on
big turns. Encode: clip x to +-maxval, v = sign(x) ln(1 + mu|x|/maxval) / ln(1 + mu) * maxval,
bin = round((v + maxval) / binsize). Decode inverts it at the bin's centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class CameraQuantizer:
    maxval: float = 10.0
    binsize: float = 1.0
    mu: float = 20.0

    @property
    def n_bins(self) -> int:
        return int(round(2 * self.maxval / self.binsize)) + 1

    @property
    def null_bin(self) -> int:
        """The bin of a zero move."""
        return self.n_bins // 2

    def encode(self, degrees: ArrayLike) -> np.ndarray:
        """Degrees -> bin indices (int64, same shape). np.round rounds half to even, as VPT does."""
        x = np.clip(np.asarray(degrees, dtype=np.float64), -self.maxval, self.maxval) / self.maxval
        v = np.sign(x) * np.log1p(self.mu * np.abs(x)) / np.log1p(self.mu) * self.maxval
        return np.round((v + self.maxval) / self.binsize).astype(np.int64)

    def decode(self, bins: ArrayLike) -> np.ndarray:
        """Bin indices -> degrees at the bin centres (float64, same shape)."""
        b = np.asarray(bins)
        if np.any((b < 0) | (b >= self.n_bins)):
            raise ValueError(f"camera bin outside 0..{self.n_bins - 1}: {bins}")
        v = (b * self.binsize - self.maxval) / self.maxval
        return np.sign(v) * ((1.0 + self.mu) ** np.abs(v) - 1.0) / self.mu * self.maxval

    def bin_centres(self) -> np.ndarray:
        return self.decode(np.arange(self.n_bins))


# What the JARVIS-VLA / OpenHA reserved-token actions use: 21 bins per axis.
FINE_QUANTIZER = CameraQuantizer(maxval=10.0, binsize=1.0, mu=20.0)
# What the low-level VPT-style policies use: 11 bins per axis.
COARSE_QUANTIZER = CameraQuantizer(maxval=10.0, binsize=2.0, mu=10.0)
