"""The pitch line the window draws while the user hums (``HumStats.pitch_hz``, read by the
microphone worker) shows the voice: a note's first hops (PESTO may name a subharmonic
before the onset rule has the note) and its last (the gate's hysteresis holds it open
while the level falls into silence, where the refinement can lock onto a harmonic) are
left out, so no point lands an octave or more off the sung notes.

Real PESTO weights, real generated clips (the hum corpus, as the window's test sings)."""

import numpy as np
import pytest

from engine.pitch.live import HumTracker
from engine.pitch.tracker import hz_to_midi
from liveband.bench.synth_hum import HumSpec, make_hum

SR = 48000
BLOCK = 256  # the app's microphone block


@pytest.mark.parametrize("seed", [5, 21])
def test_the_pitch_line_stays_on_the_sung_notes(seed):
    clip = make_hum(HumSpec(seed=seed, sample_rate=SR, n_notes=8, tempo=100.0))
    ht = HumTracker("pesto", input_rate=SR)
    shown = []
    for i in range(0, len(clip.audio), BLOCK):
        ht.feed(clip.audio[i : i + BLOCK])
        if ht.stats.pitch_hz > 0:
            shown.append(float(hz_to_midi(ht.stats.pitch_hz)))
    sung = sorted({p for p, _, _ in clip.notes})
    shown_a = np.array(shown)
    lo, hi = sung[0] - 1.5, sung[-1] + 1.5
    assert ((shown_a >= lo) & (shown_a <= hi)).all(), shown_a[(shown_a < lo) | (shown_a > hi)]
    on_note = np.array([min(abs(v - p) for p in sung) < 1.5 for v in shown_a])
    assert on_note.mean() >= 0.95
    # ... and it is there while the voice is: most of the sung time has a point
    sung_s = sum(off - on for _, on, off in clip.notes)
    assert len(shown) * BLOCK / SR >= 0.7 * sung_s


def test_the_pitch_line_ends_when_the_voice_does():
    clip = make_hum(HumSpec(seed=5, sample_rate=SR, n_notes=3, tempo=100.0))
    ht = HumTracker("pesto", input_rate=SR)
    end = int(clip.notes[-1][2] * SR)
    ht.feed(clip.audio[:end])  # up to the last note's end: it is shown
    shown_at_end = ht.stats.pitch_hz
    ht.feed(np.zeros(SR // 10, np.float32))  # 100 ms of silence after it
    assert shown_at_end > 0 and ht.stats.pitch_hz == 0.0
