"""``early_any``: a note goes out on its first voiced hop and the onset rule corrects it
later (a take-back). Real PESTO weights on a real generated sung clip (a dev clip)."""

from dataclasses import replace

import numpy as np

from engine.pitch.live import HumTracker, heard
from engine.pitch.segmenter import TRACKER_DEFAULTS
from liveband.bench import sung_corpus
from liveband.bench.pitch import first_heard_onsets
from liveband.bench.pitch_metrics import match_onsets


def _announced(clip, **changes):
    """-> {true note index: (input samples when its first note-on went out, final pitch)}."""
    seg = replace(TRACKER_DEFAULTS["pesto"], **changes)
    # the rules alone: with the onset net, its guesses go out before either rule speaks
    ht = HumTracker("pesto", input_rate=clip.sample_rate, keep_frames=True, segmenter=seg, onset_net=False)
    block = clip.sample_rate // 200
    for i in range(0, len(clip.audio), block):
        ht.feed(clip.audio[i : i + block])
    ht.feed(np.zeros(clip.sample_rate // 5, np.float32))
    ht.finish()
    first, _ = first_heard_onsets(ht.emitted, clip.sample_rate)
    kept = {ev.time: ev.pitch for ev in heard([ev for ev, _ in ht.emitted]) if ev.on}
    pairs = match_onsets([on for _, on, _ in clip.notes], [ev.time / ht.clock_rate for ev, _ in first])
    return {i: (round(first[j][1] * clip.sample_rate), kept.get(first[j][0].time)) for i, j in pairs}


def test_an_eager_note_goes_out_earlier_and_its_corrections_leave_the_same_notes():
    spec = next(s for s in sung_corpus.specs("dev") if s.seed == 1000)  # male, modal, "da", clean
    clip = sung_corpus.make_sung(spec)
    usual, eager = _announced(clip), _announced(clip, early_any=True)
    both = sorted(set(usual) & set(eager))
    assert len(both) >= 10
    assert all(eager[i][0] <= usual[i][0] for i in both)  # never later
    assert sum(eager[i][0] < usual[i][0] for i in both) >= len(both) / 3  # often a hop or more earlier
    # once the take-backs are done, the notes are named as without the eager rule
    assert sum(eager[i][1] == clip.notes[i][0] for i in both) >= sum(usual[i][1] == clip.notes[i][0] for i in both)
