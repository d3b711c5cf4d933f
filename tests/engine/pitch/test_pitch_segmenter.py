"""The note segmenter, on hand-made (f0, confidence, level) sequences: pure logic."""
import numpy as np

from engine.pitch.segmenter import NoteSegmenter, SegmenterConfig, snap
from engine.pitch.tracker import midi_to_hz


def run(frames, cfg=None):
    seg = NoteSegmenter(cfg or SegmenterConfig())
    events = []
    for f0, conf, level in frames:
        events += seg.step(f0, conf, level)
    events += seg.finish()
    return events, seg


def silence(n):
    return [(100.0, 0.05, -90.0)] * n


def note(midi, n, level=-20.0, conf=0.9, cents=None):
    c = np.zeros(n) if cents is None else cents
    return [(float(midi_to_hz(midi + ci / 100)), conf, level) for ci in c]


def ons(events):
    return [(p, h) for kind, p, h, _ in events if kind == "on"]


def test_a_steady_note_gives_one_note_on_and_off():
    ev, _ = run(silence(20) + note(60, 50) + silence(20))
    assert [k for k, *_ in ev] == ["on", "off"]
    assert ev[0][1] == 60 and ev[1][1] == 60
    assert 18 <= ev[0][2] <= 21 and 69 <= ev[1][2] <= 72


def test_vibrato_of_60_cents_stays_one_note():
    # singers start vibrato after the note has settled (here after 150 ms)
    t = np.arange(120) * 0.01
    cents = 60 * np.clip((t - 0.15) / 0.1, 0, 1) * np.sin(2 * np.pi * 5.5 * t)
    ev, _ = run(silence(10) + note(57, 120, cents=cents) + silence(10))
    assert ons(ev) == [(57, ons(ev)[0][1])] and len(ev) == 2


def test_a_scoop_is_waited_out_and_the_note_named_by_its_target():
    scoop = -150 * np.exp(-np.arange(60) / 3.0)        # 150 cents below, settling in ~10 hops
    ev, _ = run(silence(10) + note(64, 60, cents=scoop) + silence(10))
    assert [p for p, _ in ons(ev)] == [64]


def test_a_short_octave_error_does_not_start_a_note():
    frames = silence(10) + note(55, 30) + note(67, 3) + note(55, 30) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [55]


def test_legato_pitch_change_starts_a_new_note():
    ev, _ = run(silence(10) + note(60, 40) + note(62, 40) + note(64, 40) + silence(10))
    assert [p for p, _ in ons(ev)] == [60, 62, 64]
    offs = [h for k, _, h, _ in ev if k == "off"]
    assert len(offs) == 3


def test_a_level_dip_rearticulates_a_repeated_note():
    frames = silence(10) + note(60, 30) + note(60, 4, level=-34) + note(60, 30) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [60, 60]


def test_a_rearticulation_in_a_ringing_room_is_named_by_the_new_pitch():
    # the last note (A2) rings on through the gap at a lower level; the new note (G2)
    # rises out of it, and its first loud hop still hears the ringing pitch
    frames = silence(10) + note(45, 40) + note(45, 8, level=-36.0) + note(45, 1) + note(43, 20) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [45, 43]
    assert 50 <= ons(ev)[1][1] <= 51             # dated to the dip (hop 50), not to the rise
    # naming it from the hops around the rise (the old rule) gives the ringing pitch
    # (the early legato rule, off here, would then start a second note on G2)
    old, _ = run(frames, SegmenterConfig(reartic_fresh=False, fast_change=False))
    assert [p for p, _ in ons(old)] == [45, 45]


def test_low_confidence_or_low_level_gives_no_notes():
    noise = [(float(f), 0.2, -20.0) for f in np.random.default_rng(0).uniform(80, 800, 200)]
    quiet = note(60, 100, level=-75.0)
    ev, _ = run(noise + quiet)
    assert ev == []


def test_steady_background_noise_raises_the_floor():
    # a confident-looking but steady hiss at -40 dB: the adaptive floor keeps the gate shut
    hiss = [(200.0, 0.3, -40.0)] * 300 + [(200.0, 0.9, -40.0)] * 50
    ev, seg = run(hiss)
    assert ev == []
    assert seg._floor_db > -45


def test_minimum_note_length_holds_the_note_off_back():
    cfg = SegmenterConfig(min_note_ms=100)
    ev, _ = run(silence(10) + note(60, 5) + silence(30), cfg)
    on = [h for k, _, h, _ in ev if k == "on"][0]
    off = [h for k, _, h, _ in ev if k == "off"][0]
    assert off - on >= 10


def test_key_snapping():
    assert snap(61.2, None, "major") == 61
    assert snap(61.2, 0, "major") in (60, 62)           # C# is not in C major
    assert snap(61.2, 1, "major") == 61                  # but it is in C# major
    ev, _ = run(silence(10) + note(61, 40) + silence(10), SegmenterConfig(key=0, scale="major"))
    assert ons(ev)[0][0] in (60, 62)


def test_nan_inputs_are_treated_as_silence():
    ev, _ = run([(float("nan"), float("nan"), float("nan"))] * 30 + note(60, 30) + silence(10))
    assert [p for p, _ in ons(ev)] == [60]


def test_event_times_never_go_back():
    # short notes whose note-offs are held back, then legato changes and dips
    frames = (silence(5) + note(60, 4) + silence(3) + note(62, 4) + silence(3) + note(64, 30) + note(67, 30)
              + note(67, 3, level=-40) + note(67, 20) + silence(10))
    ev, _ = run(frames, SegmenterConfig(min_note_ms=120))
    times = [h for _, _, h, _ in ev]
    assert times == sorted(times)
    assert sum(k == "on" for k, *_ in ev) == sum(k == "off" for k, *_ in ev) >= 3


def test_live_mode_memory_stays_flat():
    seg = NoteSegmenter(SegmenterConfig(), keep_history=False)
    frames = (note(60, 20) + silence(5)) * 200
    n_on = 0
    for f in frames:
        n_on += sum(k == "on" for k, *_ in seg.step(*f))
    assert n_on == 200
    assert len(seg.notes) <= 64 and seg.voiced_hops == []
