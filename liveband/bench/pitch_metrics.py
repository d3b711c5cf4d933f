"""Scores for pitch tracking and note transcription against known truth.

- raw pitch accuracy: share of truly voiced frames whose tracker f0 is within 50 cents
  of the truth (the tracker's own estimate, whatever the voicing decision).
- voicing precision / recall: the segmenter's voiced decision per frame vs the truth.
- note onset F1: an estimated onset matches an unmatched true onset within +-50 ms
  (greedy, closest first); note pitch accuracy: matched notes with the right MIDI pitch.
- latency: for matched notes, when the note-on event became available (the input
  sample count at that moment) minus the true onset.
"""

from __future__ import annotations

import numpy as np


def match_onsets(ref: list[float], est: list[float], tol: float = 0.05) -> list[tuple[int, int]]:
    """Pairs (i_ref, j_est), one-to-one, |ref - est| <= tol, closest pairs first."""
    cands = sorted((abs(r - e), i, j) for i, r in enumerate(ref) for j, e in enumerate(est) if abs(r - e) <= tol)
    used_r, used_e, pairs = set(), set(), []
    for _, i, j in cands:
        if i not in used_r and j not in used_e:
            used_r.add(i)
            used_e.add(j)
            pairs.append((i, j))
    return sorted(pairs)


def f1(n_ref: int, n_est: int, n_match: int) -> tuple[float, float, float]:
    p = n_match / n_est if n_est else (1.0 if n_ref == 0 else 0.0)
    r = n_match / n_ref if n_ref else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def raw_pitch_accuracy(est_f0: np.ndarray, ref_f0: np.ndarray) -> tuple[int, int]:
    """-> (frames within 50 cents, truly voiced frames)."""
    voiced = ref_f0 > 0
    ok = voiced & (est_f0 > 0)
    cents = np.zeros_like(ref_f0, dtype=float)
    cents[ok] = 1200 * np.abs(np.log2(est_f0[ok] / ref_f0[ok]))
    return int((ok & (cents <= 50)).sum()), int(voiced.sum())


def voicing_counts(est_voiced: np.ndarray, ref_voiced: np.ndarray) -> tuple[int, int, int]:
    """-> (true positives, estimated voiced, truly voiced)."""
    return int((est_voiced & ref_voiced).sum()), int(est_voiced.sum()), int(ref_voiced.sum())


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
