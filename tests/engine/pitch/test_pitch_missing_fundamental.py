"""A voice through a small microphone that loses its fundamental is still named at its
own pitch, not the octave above (the laptop-mic case of the sung corpus)."""

import numpy as np
import pytest
from scipy.signal import butter, lfilter

from engine.pitch.live import HumTracker

SR = 16000


def _thin_voice(midi: float, seconds: float = 1.0) -> np.ndarray:
    """Harmonics 2..12 of ``midi`` with falling level, high-passed well above the fundamental."""
    f0 = 440.0 * 2 ** ((midi - 69) / 12)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(2, 13) if h * f0 < 0.45 * SR)
    b, a = butter(4, 1.6 * f0 / (SR / 2), btype="high")
    x = lfilter(b, a, x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("midi", [43, 47, 50])
def test_a_voice_without_its_fundamental_is_named_at_its_own_octave(midi):
    silence = np.zeros(SR // 4, np.float32)
    audio = np.concatenate([silence, _thin_voice(midi), silence])
    ht = HumTracker("pesto", input_rate=SR)
    for i in range(0, len(audio), SR // 200):
        ht.feed(audio[i : i + SR // 200])
    ht.finish()
    pitches = [ev.pitch for ev in ht.poll() if ev.on]
    assert pitches == [midi], pitches
