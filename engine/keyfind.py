"""Key estimation from a pitch-class profile (Krumhansl-Kessler profiles, correlation).

Pure logic: ``estimate_key(weights)`` with weights (12,) (e.g. note durations per pitch
class over the last bars) -> "C major" / "A minor", or "" when there is no evidence.
"""
from __future__ import annotations

import numpy as np

from models.tokens import PITCH_NAMES

_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(weights: np.ndarray) -> str:
    """weights: (12,) non-negative pitch-class weights -> key name ('' if all zero)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (12,) or not np.isfinite(w).all() or w.sum() <= 0 or np.ptp(w) == 0:
        return ""
    best, name = -2.0, ""
    for root in range(12):
        for profile, mode in ((_MAJOR, "major"), (_MINOR, "minor")):
            r = float(np.corrcoef(w, np.roll(profile, root))[0, 1])
            if r > best:
                best, name = r, f"{PITCH_NAMES[root]} {mode}"
    return name
