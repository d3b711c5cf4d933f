"""On a note's first hops PESTO (its window centred 28 ms back) sometimes names a pitch an
octave or an octave and a fifth below the voice; the live path corrects it from the
newest audio before the segmenter sees it (``HumTracker._subharmonic``).

Real PESTO weights, a real generated sung clip (a dev clip of the sung corpus)."""

import numpy as np

from engine.pitch.live import HumTracker
from liveband.bench import sung_corpus


def _midi(f0):
    return 69.0 + 12.0 * np.log2(np.maximum(np.asarray(f0, float), 1e-3) / 440.0)


def test_a_subharmonic_named_by_pesto_reaches_the_segmenter_at_the_voice_pitch():
    spec = next(s for s in sung_corpus.specs("dev") if s.seed == 1002)  # child, pressed, "la", clean
    clip = sung_corpus.make_sung(spec)
    ht = HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True)
    fed: list[float] = []
    step = ht.segmenter.step

    def record(f0, conf, level):
        fed.append(f0)  # what the segmenter is handed, after the live path's refinement
        return step(f0, conf, level)

    ht.segmenter.step = record  # type: ignore[method-assign]
    block = clip.sample_rate // 200
    for i in range(0, len(clip.audio), block):
        ht.feed(clip.audio[i : i + block])
    raw = _midi([f for f, _, _ in ht.frames])  # PESTO's own pitch per hop
    # the truth at the centre of the newest 20 ms (what the refinement listens to)
    truth_hz = clip.f0_at((np.arange(len(fed)) + 1) * 0.01 - 0.01)
    truth = _midi(truth_hz)
    low = np.nonzero((truth_hz > 0) & (raw - truth < -11.5))[0]
    assert len(low) >= 5, "the clip no longer has hops where PESTO names a subharmonic"
    right = np.abs(_midi(np.array(fed)[low]) - truth[low]) < 0.5
    # without the correction none of them can be right: the refinement only searches
    # within 6 % of PESTO's period
    assert right.sum() >= len(low) / 2, (len(low), int(right.sum()))
