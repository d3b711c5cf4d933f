"""bench pitch scores the notes a listener hears: a note the segmenter took back (an early
note replaced or withdrawn, ending where it began) is neither a hit nor a false note."""

from engine.quantiser import MelodyEvent
from liveband.bench.pitch import heard_onsets


def test_a_replaced_early_note_is_not_scored_and_its_replacement_is():
    ev = [
        (MelodyEvent(time=100, pitch=61, on=True, velocity=90), 480),
        (MelodyEvent(time=100, pitch=61, on=False, velocity=0), 960),
        (MelodyEvent(time=100, pitch=62, on=True, velocity=90), 960),
        (MelodyEvent(time=900, pitch=62, on=False, velocity=0), 1900),
        # a repeated note starting where the last one ended is heard
        (MelodyEvent(time=900, pitch=62, on=True, velocity=90), 1950),
        (MelodyEvent(time=1500, pitch=62, on=False, velocity=0), 2500),
    ]
    kept, withdrawn = heard_onsets(ev, 48000)
    assert [(e.pitch, e.time) for e, _ in kept] == [(62, 100), (62, 900)]
    assert kept[0][1] == 960 / 48000  # latency counts from the replacement
    assert withdrawn == 1


def test_the_first_note_the_band_hears_is_scored_and_a_taken_back_wrong_note_is_an_error():
    """What the band hears first: a wrong early note replaced from the same onset scores
    its own (wrong) pitch at its own time; a note withdrawn and not replaced stays a note
    heard; a confirmed note and a repeated note are scored as heard."""
    from liveband.bench.pitch import first_heard_onsets

    ev = [
        (MelodyEvent(time=100, pitch=61, on=True, velocity=90), 480),
        (MelodyEvent(time=100, pitch=61, on=False, velocity=0), 960),
        (MelodyEvent(time=100, pitch=62, on=True, velocity=90), 960),
        (MelodyEvent(time=900, pitch=62, on=False, velocity=0), 1900),
        (MelodyEvent(time=900, pitch=62, on=True, velocity=90), 1950),
        (MelodyEvent(time=1500, pitch=62, on=False, velocity=0), 2500),
        # withdrawn, not replaced: a blip the band heard
        (MelodyEvent(time=3000, pitch=70, on=True, velocity=90), 3100),
        (MelodyEvent(time=3000, pitch=70, on=False, velocity=0), 3400),
        (MelodyEvent(time=4000, pitch=64, on=True, velocity=90), 4100),
        (MelodyEvent(time=4800, pitch=64, on=False, velocity=0), 4900),
    ]
    first, taken_back = first_heard_onsets(ev, 48000)
    assert [(e.pitch, e.time, round(at * 48000)) for e, at in first] == [
        (61, 100, 480),
        (62, 900, 1950),
        (70, 3000, 3100),
        (64, 4000, 4100),
    ]
    assert taken_back == 2


def test_a_wrong_early_note_makes_the_bench_score_a_wrong_pitch():
    """run_clip's note scores use the first note heard; after_take_back the final ones."""
    from types import SimpleNamespace

    from liveband.bench.pitch import first_heard_onsets, heard_onsets, score_onsets

    ev = [
        (MelodyEvent(time=4800, pitch=61, on=True, velocity=90), 5280),
        (MelodyEvent(time=4800, pitch=61, on=False, velocity=0), 5760),
        (MelodyEvent(time=4800, pitch=62, on=True, velocity=90), 5760),
        (MelodyEvent(time=9600, pitch=62, on=False, velocity=0), 9700),
    ]
    clip = SimpleNamespace(notes=[(62, 0.1, 0.2)])
    strict = score_onsets(first_heard_onsets(ev, 48000)[0], clip, 48000)
    final = score_onsets(heard_onsets(ev, 48000)[0], clip, 48000)
    assert strict["onsets"] == (1, 1, 1) and strict["pitch_ok"] == 0
    assert strict["latency"] == [5280 / 48000 - 0.1]
    assert final["pitch_ok"] == 1 and final["latency"] == [5760 / 48000 - 0.1]


def test_the_band_hears_the_note_standing_when_its_step_is_committed():
    """band_heard_onsets: at 120 BPM (a 16th is 125 ms = 6000 samples at 48 kHz), lead
    50 ms and lookahead 1, a note dated at step 4 (0.5 s) is committed at 0.575 s."""
    from liveband.bench.pitch import band_heard_onsets

    sr = 48000

    def on(t, p, at):
        return (MelodyEvent(time=t, pitch=p, on=True, velocity=90), at)

    def off(t, p, at):
        return (MelodyEvent(time=t, pitch=p, on=False, velocity=0), at)

    def heard(ev):
        return [(e.pitch, e.time, round(at * sr)) for e, at in band_heard_onsets(ev, sr, sr, tempo=120.0)]

    t = 24000  # 0.5 s: step 4
    # a wrong early note replaced before the commit: the band gets the replacement,
    # the latency counts from the first note-on
    assert heard([on(t, 61, 25000), off(t, 61, 26000), on(t, 62, 26000)]) == [(62, t, 25000)]
    # ... replaced after the commit (27600): the band got the wrong one
    assert heard([on(t, 61, 25000), off(t, 61, 28000), on(t, 62, 28000)]) == [(61, t, 25000)]
    # withdrawn before the commit: struck out; after it: heard
    assert heard([on(t, 61, 25000), off(t, 61, 26000)]) == []
    assert heard([on(t, 61, 25000), off(t, 61, 28000)]) == [(61, t, 25000)]
    # announced after the commit: the next step's commit (33600) decides
    assert heard([on(t, 61, 28000), off(t, 61, 30000), on(t, 62, 30000)]) == [(62, t, 28000)]
