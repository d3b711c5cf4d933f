"""The note segmenter, on hand-made (f0, confidence, level) sequences: pure logic."""

import numpy as np

from engine.pitch.segmenter import TRACKER_DEFAULTS, NoteSegmenter, SegmenterConfig, snap
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
    """The notes heard: an early note the segmenter replaced or withdrew (its "off" at its
    own onset time, zero length) is left out."""
    notes, open_at = [], {}
    for kind, p, h, _ in events:
        if kind == "on":
            open_at[p] = len(notes)
            notes.append([p, h, True])
        elif p in open_at:
            k = open_at.pop(p)
            notes[k][2] = h > notes[k][1]
    return [(p, h) for p, h, heard in notes if heard]


def test_a_steady_note_gives_one_note_on_and_off():
    ev, _ = run(silence(20) + note(60, 50) + silence(20))
    assert [k for k, *_ in ev] == ["on", "off"]
    assert ev[0][1] == 60 and ev[1][1] == 60
    assert 18 <= ev[0][2] <= 21 and 69 <= ev[1][2] <= 72


def test_a_drone_held_for_minutes_keeps_a_bounded_pitch_history():
    """Live, a note's record lives as long as it sounds; one held for an hour once grew
    by a float a hop (15 MB). It keeps its newest minute, and its median follows it."""
    from engine.pitch.segmenter_rules import NOTE_HOPS_KEPT

    seg = NoteSegmenter(SegmenterConfig(), keep_history=False)
    for f0, conf, level in (
        silence(20) + note(60, 200) + note(60, 2 * NOTE_HOPS_KEPT, cents=np.full(2 * NOTE_HOPS_KEPT, 30.0))
    ):
        seg.step(f0, conf, level)
    n = seg.note
    assert n is not None and n.pitch == 60
    assert len(n.pitches) == len(n._sorted) == NOTE_HOPS_KEPT
    assert abs(n.median_pitch - 60.3) < 0.01 and n._sorted == sorted(n.pitches)


def test_vibrato_of_60_cents_stays_one_note():
    # singers start vibrato after the note has settled (here after 150 ms)
    t = np.arange(120) * 0.01
    cents = 60 * np.clip((t - 0.15) / 0.1, 0, 1) * np.sin(2 * np.pi * 5.5 * t)
    ev, _ = run(silence(10) + note(57, 120, cents=cents) + silence(10))
    assert ons(ev) == [(57, ons(ev)[0][1])] and len(ev) == 2


def test_a_singers_wide_vibrato_of_100_cents_stays_one_note_and_is_not_talking():
    # an opera-wide vibrato swings a semitone each way at 5-7 Hz: as fast as speech
    # glides, but around a steady centre
    for rate in (5.0, 6.5):
        t = np.arange(200) * 0.01
        cents = 100 * np.clip((t - 0.15) / 0.15, 0, 1) * np.sin(2 * np.pi * rate * t)
        ev, seg = run(silence(10) + note(64, 200, cents=cents) + silence(10))
        assert ons(ev) == [(64, ons(ev)[0][1])] and len(ev) == 2, (rate, ev)
        assert not seg.talking


def test_a_step_after_a_wide_vibrato_still_starts_a_new_note():
    t = np.arange(80) * 0.01
    cents = 100 * np.clip((t - 0.15) / 0.15, 0, 1) * np.sin(2 * np.pi * 6.0 * t)
    ev, _ = run(silence(10) + note(60, 80, cents=cents) + note(62, 40) + silence(10))
    assert [p for p, _ in ons(ev)] == [60, 62], ev


def test_a_scoop_is_waited_out_and_the_note_named_by_its_target():
    scoop = -150 * np.exp(-np.arange(60) / 3.0)  # 150 cents below, settling in ~10 hops
    ev, _ = run(silence(10) + note(64, 60, cents=scoop) + silence(10))
    assert [p for p, _ in ons(ev)] == [64]


def test_a_short_octave_error_does_not_start_a_note():
    frames = silence(10) + note(55, 30) + note(67, 3) + note(55, 30) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [55]


def test_an_octave_leap_that_persists_starts_a_new_note_dated_at_the_leap():
    # a sung octave leap (F4 -> F3, legato): the first hops an octave from the note are
    # folded back onto it (the tracker's octave errors), but once the leap has held past
    # that it is the voice; the folding used to come back every ninth hop, forever
    ev, _ = run(silence(10) + note(65, 40) + note(53, 30) + note(55, 20) + silence(10))
    heard = ons(ev)
    assert [p for p, _ in heard] == [65, 53, 55], ev
    assert 48 <= heard[1][1] <= 51  # dated at the leap (hop 50), not when it was named


def test_a_legato_note_on_the_trackers_third_semitone_bins_starts_a_new_note():
    # on hops voiced by periodicity PESTO's pitch often sits on its 1/3-semitone bins:
    # a short legato note after the step, steady but alternating 33 cents hop to hop
    frames = silence(10) + note(68, 30) + note(70, 8, cents=[0, -33, 0, -33, 0, -33, 0, -33]) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [68, 70], ev


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
    assert 50 <= ons(ev)[1][1] <= 51  # dated to the dip (hop 50), not to the rise
    # naming it from the hops around the rise (the old rule) gives the ringing pitch
    # (the early legato rule, off here, would then start a second note on G2)
    old, _ = run(frames, SegmenterConfig(reartic_fresh=False, fast_change=False))
    assert [p for p, _ in ons(old)] == [45, 45]


def test_a_shallow_dip_then_a_new_attack_rearticulates_a_repeated_note():
    # a sung "ah-ah" on one pitch: the 20 ms level dips only ~6 dB (the glottal dip is
    # shorter than the window) but the next attack rises well above the dip
    frames = (
        silence(10)
        + note(60, 30, level=-28)
        + note(60, 1, level=-31)
        + note(60, 2, level=-34)
        + note(60, 1, level=-30)
        + note(60, 30, level=-22)
        + silence(10)
    )
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [60, 60]
    # a slow swell and fade of the same size (no dip, no new attack) stays one note
    swell = (
        note(60, 20, level=-28)
        + [(f, c, -28 - 6 * np.sin(np.pi * i / 10)) for i, (f, c, _) in enumerate(note(60, 10))]
        + note(60, 20, level=-28)
    )
    ev, _ = run(silence(10) + swell + silence(10))
    assert len(ons(ev)) == 1


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


def test_a_voice_5_db_above_loud_noise_is_heard_once_the_floor_has_settled():
    # 10 s of noise (random pitches, weak periodicity, level wobbling around -30 dB) sets
    # the floor; a sung note then lifts the level only ~5 dB (voice and noise together at
    # 5 dB SNR) but is clearly periodic: it must be heard, and the noise alone must not
    rng = np.random.default_rng(1)

    def noise(n):
        return [
            (float(f), float(c), float(lv))
            for f, c, lv in zip(rng.uniform(80, 800, n), rng.uniform(0.0, 0.4, n), -30 + rng.normal(0, 1, n))
        ]

    ev, seg = run(noise(1000) + note(62, 30, level=-25.0, conf=0.7) + noise(40))
    assert [p for p, _ in ons(ev)] == [62], ev
    assert -33 < seg._floor_db < -28


def test_the_noise_floor_settles_within_a_second():
    # the floor is learned from the quiet hops when the microphone opens
    seg = NoteSegmenter()
    for _ in range(100):
        seg.step(200.0, 0.1, -35.0)
    assert seg._floor_db > -38


def test_a_note_is_announced_on_its_first_hop_after_the_attack():
    # the band should hear a note as soon as one hop names it squarely, once the level
    # (a 20 ms window) has stopped rising: mid-attack, the pitch is still unreliable
    seg = NoteSegmenter()
    for f in silence(20):
        assert seg.step(*f) == []
    assert seg.step(*note(60, 1, level=-24.0)[0]) == []  # the attack: wait
    first = seg.step(*note(60, 1, level=-21.0, cents=[-20])[0])  # 20 cents a hop: no 2-hop onset yet
    assert [(k, p) for k, p, _, _ in first] == [("on", 60)]
    assert seg.note.provisional
    for f in note(60, 5):
        assert seg.step(*f) == []  # the onset rule agrees: no correction
    assert not seg.note.provisional


def attack(midi, cents=0.0):
    """The first voiced hop (mid-attack, level still rising) then one at full level that
    names ``midi`` but moves too much for the 2-hop onset rule."""
    return note(midi, 1, level=-24.0, cents=[cents]) + note(midi, 1, cents=[cents - 20])


def test_an_early_note_with_the_wrong_pitch_is_replaced_from_the_same_onset():
    # the first hops still hear the consonant/attack a semitone low; the voice settles on 62
    ev, seg = run(silence(20) + attack(61, 5) + note(62, 40) + silence(10))
    assert [(k, p) for k, p, _, _ in ev] == [("on", 61), ("off", 61), ("on", 62), ("off", 62)]
    assert ev[0][2] == ev[1][2] == ev[2][2]  # replaced where it began: zero length, same onset
    assert [n.pitch for n in seg.notes] == [62]


def test_an_early_note_that_is_never_confirmed_is_withdrawn():
    # two voiced hops, then nothing: a click, not a note
    ev, seg = run(silence(20) + attack(60) + silence(20))
    assert [(k, p) for k, p, _, _ in ev] == [("on", 60), ("off", 60)]
    assert ev[0][2] == ev[1][2] and seg.notes == []


def test_no_early_note_where_the_first_hops_are_likely_wrong():
    # each case would have been announced early (and taken back: the band hears a wrong
    # note) by a hop within 30 cents of a semitone; it now waits for the onset rule
    def first_on(frames):
        ev, _ = run(silence(20) + frames + note(62, 30) + silence(10))
        return [(k, p) for k, p, _, _ in ev][0]

    # mid-attack: the level still rises 6 dB
    assert first_on(note(61, 1, level=-30.0, cents=[10]) + note(62, 1, level=-20.0, cents=[-15])) == ("on", 62)
    # 25 cents sharp of 61 on the way up: a scoop passing the semitone below
    assert first_on(note(61, 1, level=-21.0, cents=[-40]) + note(61, 1, cents=[25])) == ("on", 62)
    # a hop 90 cents above the last (the tracker's first frames, or a scoop): not yet
    assert first_on(note(60, 1, level=-21.0, cents=[20]) + note(61, 1, cents=[10])) == ("on", 62)
    # the tracker unsure of the hop (a harmonic named in the attack's noise)
    assert first_on(note(61, 1, level=-21.0, conf=0.9, cents=[15]) + note(61, 1, conf=0.6)) == ("on", 62)


def test_an_attack_heard_an_octave_up_right_after_a_note_waits_for_the_fundamental():
    # in noise the tracker's first 2 hops of a note often name its octave; 10+ semitones
    # from the last note that is more likely than a sung leap: no early note, and the onset
    # rule wants 2 more hops, by which time the fundamental is back
    ev, _ = run(silence(20) + note(60, 30) + silence(15) + note(74, 2) + note(62, 30) + silence(10))
    assert [(k, p) for k, p, _, _ in ev if k == "on"] == [("on", 60), ("on", 62)]
    # a sung octave leap is still a note, on its 4th hop (a step: its 2nd, early)
    frames = silence(20) + note(60, 30) + silence(15)
    leap, _ = run(frames + note(72, 30) + silence(10))
    assert [p for p, _ in ons(leap)] == [60, 72]
    hop = [announced_at(frames + note(p, 30))[1] - len(frames) for p in (72, 62)]
    assert hop == [SegmenterConfig().stable_hops + SegmenterConfig().leap_extra_hops - 1, 1]


def announced_at(frames):
    """The hop index at which each note was announced."""
    seg = NoteSegmenter(SegmenterConfig())
    for f0, conf, level in frames:
        seg.step(f0, conf, level)
    return [n.announced_hop for n in seg.notes]


def test_a_tracker_leaping_to_a_harmonic_in_a_room_is_not_talking():
    # in a reverberant room the tracker flips for a hop or two to the 3rd harmonic (an
    # octave and a fifth up) of a sung note; those leaps are not a voice gliding
    frames = silence(10)
    for p in (60, 62, 64, 65, 67, 69, 67, 65):
        frames += note(p, 6) + note(p + 19, 2, conf=0.8) + note(p, 6) + note(p + 19, 2, conf=0.8) + note(p, 6)
    ev, seg = run(frames + silence(10))
    assert [p for p, _ in ons(ev)] == [60, 62, 64, 65, 67, 69, 67, 65]
    assert not seg.talking


def test_a_short_note_whose_hops_all_name_its_pitch_is_kept():
    # a 60 ms note sung fast: its pitch wobbles 15-20 cents a hop (more than the onset
    # rule's slope limit, and not a glide), but every hop names A2
    ev, seg = run(silence(20) + note(45, 6, cents=[0, -20, -5, -25, -10, -20]) + silence(20))
    assert [p for p, _ in ons(ev)] == [45]
    assert [n.pitch for n in seg.notes] == [45]
    # a blip of two such hops is still withdrawn
    ev, _ = run(silence(20) + note(45, 2, cents=[0, -20]) + silence(20))
    assert ons(ev) == []


def test_minimum_note_length_holds_the_note_off_back():
    cfg = SegmenterConfig(min_note_ms=100)
    ev, _ = run(silence(10) + note(60, 5) + silence(30), cfg)
    on = [h for k, _, h, _ in ev if k == "on"][0]
    off = [h for k, _, h, _ in ev if k == "off"][0]
    assert off - on >= 10


def test_key_snapping():
    assert snap(61.2, None, "major") == 61
    assert snap(61.2, 0, "major") in (60, 62)  # C# is not in C major
    assert snap(61.2, 1, "major") == 61  # but it is in C# major
    ev, _ = run(silence(10) + note(61, 40) + silence(10), SegmenterConfig(key=0, scale="major"))
    assert ons(ev)[0][0] in (60, 62)


def test_snapping_is_the_sessions_on_whole_pitches_and_follows_the_voice_on_ties():
    from engine.keyfind import key_pitch_classes, snap_to_scale

    # a whole pitch snaps exactly as the session snaps a hummed note (ties go up) ...
    for key in range(12):
        for mode in ("major", "minor"):
            pcs = key_pitch_classes(key, mode)
            for p in range(36, 90):
                assert snap(float(p), key, mode) == snap_to_scale(p, pcs), (p, key, mode)
    # ... and the same scale sets: the raised seventh is in minor (G# in A minor)
    assert snap(68.2, 9, "minor") == 68
    # a float between two scale tones goes to the side the voice is on, which rounding
    # first loses: 60.6 rounds to C#, which the session would send up to D
    assert snap(60.6, 0, "major") == 60 and snap(61.4, 0, "major") == 62
    assert snap(60.6, 0, "chromatic") == 61 and snap(60.6, None, "major") == 61


def test_nan_inputs_are_treated_as_silence():
    ev, _ = run([(float("nan"), float("nan"), float("nan"))] * 30 + note(60, 30) + silence(10))
    assert [p for p, _ in ons(ev)] == [60]


def test_event_times_never_go_back():
    # short notes whose note-offs are held back, then legato changes and dips
    frames = (
        silence(5)
        + note(60, 4)
        + silence(3)
        + note(62, 4)
        + silence(3)
        + note(64, 30)
        + note(67, 30)
        + note(67, 3, level=-40)
        + note(67, 20)
        + silence(10)
    )
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


def test_a_scoop_that_converges_is_named_by_its_target_before_it_settles():
    # each hop halves the distance to E4 (-90, -45, -22, ... cents): where the three
    # newest hops converge (Aitken) is the note, known at the third voiced hop
    scoop = -90 * 0.5 ** np.arange(40)
    frames = silence(10) + note(64, 40, cents=scoop) + silence(10)
    # (early announcing off: it names hop 10 as E flat, then this rule corrects it)
    seg = NoteSegmenter(SegmenterConfig(early_cents=0))
    announced = [i for i, f in enumerate(frames) if any(k == "on" for k, *_ in seg.step(*f))]
    assert announced == [12]  # hops 10, 11, 12 voiced
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [64]
    # waiting for the pitch to flatten (the rule without glide naming) takes 2 hops more
    old = NoteSegmenter(SegmenterConfig(glide_onsets=False, early_cents=0))
    assert [i for i, f in enumerate(frames) if any(k == "on" for k, *_ in old.step(*f))] == [14]


def test_a_slow_scoop_is_not_named_by_extrapolation():
    # steps that shrink slowly (ratio 0.67-1) at first: extrapolating -150, -120, -100
    # would land at -60 cents (D#4); the rule waits for faster convergence or a flat pitch
    scoop = np.r_[-150, -120, -100, -80, -60, -40, -25, -15, -8, -4, -2, -1, np.zeros(40)]
    frames = silence(10) + note(64, len(scoop), cents=scoop) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [64]
    # trusting a ratio of 0.7 is caught by the guard (a slower approach would land on
    # E4); with neither the ratio cap nor the guard it names it a semitone flat
    ev, _ = run(frames, SegmenterConfig(glide_ratio_max=0.7))
    assert [p for p, _ in ons(ev)] == [64]
    ev, _ = run(frames, SegmenterConfig(glide_ratio_max=0.7, glide_guard_ratio=0.01))
    assert [p for p, _ in ons(ev)] == [63]


def test_legato_glide_is_announced_early_by_where_it_lands():
    # C4 for 40 hops, then a glide to D4 that starts halfway and halves its distance
    # each hop (as measured): the new note is out 3 hops in, not after 5 + 3 settled hops
    glide = -100 * 0.5 ** np.arange(40)
    frames = silence(10) + note(60, 40) + note(62, 40, cents=glide) + silence(10)
    seg = NoteSegmenter(SegmenterConfig())
    ons_at = [(i, [e for e in seg.step(*f) if e[0] == "on"]) for i, f in enumerate(frames)]
    ons_at = [(i, e[0][1]) for i, e in ons_at if e]
    assert [p for _, p in ons_at] == [60, 62]
    assert ons_at[1][0] == 52  # the glide's 3rd hop (50, 51, 52)
    old = NoteSegmenter(SegmenterConfig(fast_change=False))
    late = [i for i, f in enumerate(frames) if any(e[0] == "on" for e in old.step(*f))]
    assert late[1] >= 54


def test_an_early_legato_guess_waits_while_the_measurement_still_lags():
    # B3 after F#3, measured the way a window still holding the old note shows it: a
    # big step, then small ones while the glide itself still has ~100 cents to go.
    # Extrapolating the first three hops alone would name A#3; a slower approach would
    # reach B3, so the rule waits, and the note is named B3.
    cents = [0] * 30 + [174, 306, 345, 376, 402, 424, 443, 460, 474, 486, 494, 498, 500] + [500] * 20
    frames = silence(10) + [(float(midi_to_hz(54 + c / 100)), 0.9, -20.0) for c in cents] + silence(10)
    seg = NoteSegmenter(SegmenterConfig())
    events = []
    for i, f in enumerate(frames):
        ev = seg.step(*f)
        events += ev
        if i == 42:  # the hop measured at 345 cents
            ok, target = seg._glide(floor_hop=seg.note.on_hop)
            assert ok and snap(target, None, "major") == 58
            assert not any(k == "on" for k, *_ in ev)
    events += seg.finish()
    assert [p for p, _ in ons(events)] == [54, 59]


def test_a_jittery_legato_in_a_room_is_not_named_by_a_jump_and_a_small_step():
    # C#4 down to A#3 as measured in a reverberant, noisy room: the pitch wobbles
    # (-13 then +63, +75 cents): a jump then a small step looks like a glide converging
    # on B3. A glide must move one way over 4 hops, so the note waits and is named A#3.
    cents = [284] * 30 + [257, 180, 123, 81, 34, 31, -13, 63, 75, 21, 10, 4, 0] + [0] * 20
    frames = silence(10) + [(float(midi_to_hz(58 + c / 100)), 0.9, -20.0) for c in cents] + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [61, 58]
    # (the almost-stop after the jump, 47 then 3 cents, is also too small a ratio for a
    # legato glide: glide_ratio_min)
    ev, _ = run(frames, SegmenterConfig(change_monotone4=False, glide_ratio_min=0.0))
    assert [p for p, _ in ons(ev)] == [61, 59]


def test_an_early_legato_note_is_dated_by_its_glide_not_by_a_swing_before_it():
    # C4, a swing 40 cents sharp for 8 hops (hops 40-47), then the glide to D4 from hop 48:
    # the new note starts 2 hops (the measurement's lag) before the glide's halfway
    # point, not back at the swing
    glide = -100 * 0.5 ** np.arange(40)
    frames = silence(10) + note(60, 30) + note(60, 8, cents=np.full(8, 40.0)) + note(62, 40, cents=glide) + silence(10)
    ev, _ = run(frames)
    assert ons(ev) == [(60, 9.0), (62, 46.0)]
    ev, _ = run(frames, SegmenterConfig(change_date_share=0.1))  # any departure dates it
    assert ons(ev)[1] == (62, 38.0)
    # a lag of 1 hop dated the sung dev clips' legato notes a median 15 ms late (2: 8 ms;
    # mean error 18 -> 11.5 ms, held-out 16 -> 11 ms)
    ev, _ = run(frames, SegmenterConfig(change_date_lag_hops=1.0))
    assert ons(ev)[1] == (62, 47.0)


def test_a_legato_change_heard_an_octave_and_more_away_is_not_named_in_two_hops():
    # G3 -> F3 legato in a room: the tracker names the new note's octave below (F2, 14
    # semitones under the G3) for 3 hops before it finds F3. The fast legato rule would
    # name F2 from 2 settled hops; a leap of leap_st or more waits for the slower change
    # rule, by which time the tracker is on F3
    frames = silence(10) + note(55, 30) + note(41, 3) + note(53, 30) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [55, 53]
    # a sung legato leap that holds is still named (by the change rule)
    ev, _ = run(silence(10) + note(55, 30) + note(41, 30) + silence(10))
    assert [p for p, _ in ons(ev)] == [55, 41]


def test_a_glide_re_articulated_by_a_dip_is_not_named_early_on_its_first_hop():
    # F4 -> D#4 legato with a level dip on the way (re-articulated): the first hop after
    # the rise, still on the glide's tail, lies 27 cents under E4 and 153 cents below the
    # hop before it. An early note on it would be E4, heard until the onset rule corrects
    # it; 150-200 cents from the last hop is too far into a move to trust
    def hop(midi, conf, level):
        return (float(midi_to_hz(midi)), conf, level)

    dip = [hop(65.35, 0.94, -27.0), hop(65.81, 0.78, -21.0), hop(65.26, 0.6, -19.0)]
    tail = [hop(p, 0.95, -19.0) for p in (63.73, 63.33, 63.16, 63.09, 63.02)]
    frames = silence(10) + note(65, 30) + dip + tail + note(63, 30) + silence(10)
    for cfg, heard_e4 in ((SegmenterConfig(), False), (SegmenterConfig(early_move_max_cents=150.0), True)):
        ev, _ = run(frames, cfg)
        assert [p for p, _ in ons(ev)] == [65, 63]
        assert any(k == "on" and p == 64 for k, p, _, _ in ev) == heard_e4


def test_an_onset_is_dated_no_later_than_the_trackers_delay_before_its_first_voiced_hop():
    # the level and the voicing rise on the same hop (in noise a quiet note clears the
    # floor only as it becomes voiced): dating by the level rise would date it at hop 19,
    # later than the tracker's window (3 hops back) says the voice began
    cfg = SegmenterConfig(pitch_delay_hops=3.0)
    ev, _ = run(silence(20) + note(60, 30) + silence(10), cfg)
    assert ons(ev) == [(60, 17.0)]
    # a level rise well before the voicing that the vowel does not jump out of (an "l"
    # or a breathy onset) still dates the note
    burst = [(100.0, 0.05, -23.0)] * 6
    ev, _ = run(silence(20) + burst + note(60, 30) + silence(10), cfg)
    assert ons(ev) == [(60, 19.0)]


def test_a_rearticulation_is_dated_a_hop_after_the_dips_quietest_window():
    # the level is measured over 20 ms (2 hops): its quietest window (hop 41) ends about
    # where the new attack begins, so the repeated note is dated a hop after it (sung
    # dev clips: re-articulations dated at the dip itself came a median 10 ms early,
    # and two of them more than 50 ms)
    frames = silence(10) + note(60, 30) + note(60, 1, level=-27) + note(60, 1, level=-34) + note(60, 30) + silence(10)
    ev, _ = run(frames)
    assert [h for _, h in ons(ev)][1:] == [42.0]
    ev, _ = run(frames, SegmenterConfig(reartic_date_hops=0.0))
    assert ons(ev)[1] == (60, 41.0)


def test_a_slow_legato_glide_is_not_named_by_a_big_step_and_an_almost_stop():
    # E4 -> C#4 legato, measured as on a sung dev clip: the window leaves E4 in one big
    # step (124 cents), then moves 20 cents while the voice itself still falls. As a
    # converging glide (ratio 0.16) it would be named D4; the rule waits, and names C#4
    cents = [0] * 30 + [-9, -133, -153, -192, -232, -257, -270, -276, -282, -284] + [-285] * 20
    frames = silence(10) + [(float(midi_to_hz(64 + c / 100)), 0.95, -20.0) for c in cents] + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [64, 61]
    ev, _ = run(frames, SegmenterConfig(glide_ratio_min=0.0))
    assert [p for p, _ in ons(ev)][:2] == [64, 62]


def test_a_note_whose_hops_named_it_before_the_gate_opened_is_dated_from_them():
    # a quiet note in loud noise: the tracker names C4 for 4 hops at a confidence under
    # the gate's (0.4) before the gate opens; the noise itself has no steady pitch. The
    # note began with those hops (hop 30), not when the gate opened (hop 34)
    noise = [(150.0 if i % 2 else 230.0, 0.05, -20.0) for i in range(20)]
    frames = silence(10) + noise + note(60, 4, conf=0.4) + note(60, 30) + silence(10)
    ev, _ = run(frames)
    assert ons(ev) == [(60, 30)]
    ev, _ = run(frames, SegmenterConfig(backdate_hops=0))
    assert ons(ev) == [(60, 34)]
    # hops a semitone away (another pitch) do not date it
    frames = silence(10) + noise + note(61, 4, conf=0.4) + note(60, 30) + silence(10)
    ev, _ = run(frames)
    assert ons(ev) == [(60, 34)]


def test_a_note_after_a_consonants_burst_is_dated_by_the_vowels_attack():
    # "ta": the level rises with the burst and its aspiration (hops 20-25, no pitch), then
    # jumps 10 dB with the vowel, where the note starts. Dated by the first rise, the
    # note would start 6 hops early (sung dev clips: a median 29 ms early when the rise
    # came 6-8 hops before the first voiced hop); the latest 2-hop jump of 8 dB dates it
    burst = [(100.0, 0.05, -30.0)] * 6
    frames = silence(20) + burst + note(60, 30) + silence(10)
    ev, _ = run(frames)
    assert ons(ev) == [(60, 24.0)]  # the jump's 2-hop level window began at hop 24
    ev, _ = run(frames, SegmenterConfig(attack_rise_db=0.0))
    assert ons(ev) == [(60, 19.0)]


def test_a_fast_legato_line_that_holds_each_note_is_not_talking():
    # 160 BPM in one breath: 67 held, a 3-semitone glide down, 64 held briefly, again to
    # 61, then 61 again after a breath. Its first 16 voiced hops glide as much as speech
    # does, but most of them hold their pitch: not talking, so the short repeat (14
    # hops, under the 16 that talking wants) is heard
    glide = np.array([-0.3, -1.3, -2.3, -2.8, -3.0])
    pitches = [67.0] * 9 + list(67.0 + glide) + [64.0] * 4 + list(64.0 + glide) + [61.0] * 20
    frames = silence(10)
    for p in pitches:
        frames += note(round(p), 1, cents=[(p - round(p)) * 100])
    ev, seg = run(frames + silence(8) + note(61, 14) + silence(10))
    assert [p for p, _ in ons(ev)] == [67, 64, 61, 61], ev
    assert not seg.talking


def test_syllables_gliding_slowly_and_evenly_are_talking():
    # speech-like: 18-hop syllables, each gliding 8 cents a hop (24 over 3 hops: under
    # talk_glide_cents) up or down, at scattered pitches. A sung note holds (or scoops
    # and settles); these move on evenly throughout, which is talking: one note at most
    rng = np.random.default_rng(0)
    frames = silence(10)
    for k in range(14):
        base = 55 + rng.uniform(-3, 3)
        cents = (1 if k % 2 else -1) * 8.0 * np.arange(18) + (base - round(base)) * 100
        frames += note(round(base), 18, cents=cents) + silence(5)
    seg = NoteSegmenter(SegmenterConfig())
    ev, talked = [], False
    for f in frames + silence(10):
        ev += seg.step(*f)
        talked |= seg.talking
    ev += seg.finish()
    assert talked
    assert len(ons(ev)) <= 1, ons(ev)


def hops(pitches, level=-25.0):
    """One hop per MIDI float pitch (the tracker's reading)."""
    frames = []
    for p in pitches:
        frames += note(round(p), 1, level=level, cents=[(p - round(p)) * 100])
    return frames


def test_a_fast_legato_semitone_step_from_a_young_note_is_not_taken_for_vibrato():
    # 140 BPM, sung legato 70 -> 68 -> 67 -> 68, the 67 only 107 ms long (the tracker's
    # readings of a generated clip): the 68 still settles from its entry glide (68.39 ->
    # 68.17 over 10 hops), and that settling, 20 cents above its median, was taken for
    # the other side of a vibrato swing, so the step to 67 had to hold 10 hops: missed
    entry = [69.53, 69.16, 68.68, 68.49, 68.39, 68.32, 68.27, 68.22, 68.20, 68.17, 68.02]
    step = [67.73, 67.50, 67.37, 67.33, 67.29, 67.25, 67.22, 67.21, 67.21, 67.21]
    back = [67.53, 67.68, 67.85, 67.97, 68.03] + [68.06] * 20
    ev, _ = run(silence(10) + hops([70.05] * 12 + entry + step + back) + silence(10))
    assert [p for p, _ in ons(ev)] == [70, 68, 67, 68], ev


def test_an_established_vibrato_still_holds_its_note():
    # the young-note rule must not split a held note's vibrato: 100-cent vibrato from
    # 150 ms, as in the tests above, but with the note entered by a legato glide
    t = np.arange(150) * 0.01
    cents = 100 * np.clip((t - 0.15) / 0.15, 0, 1) * np.sin(2 * np.pi * 5.5 * t)
    ev, _ = run(silence(10) + hops([62.0] * 12 + [61.4, 60.8, 60.4, 60.2] + list(60 + cents / 100)) + silence(10))
    assert [p for p, _ in ons(ev)] == [62, 60], ev


def test_a_semitone_step_of_9_hops_after_a_vibrato_note_starts_a_new_note():
    # a held note with vibrato, then a legato semitone step held 90 ms, then on: a
    # vibrato-like excursion now holds 8 hops (was 10, longer than such a note lasts
    # once its glide is measured) before the change rules may name it
    t = np.arange(45) * 0.01
    cents = 50 * np.clip((t - 0.15) / 0.1, 0, 1) * np.sin(2 * np.pi * 5.5 * t)
    ps = list(60 + cents / 100) + [60.4, 60.8] + [61.0] * 9 + [61.6, 62.4, 62.8] + [63.0] * 20
    ev, _ = run(silence(10) + hops(ps) + silence(10))
    assert [p for p, _ in ons(ev)] == [60, 61, 63], ev


def readings(rows):
    """Frames from a tracker's (MIDI float pitch, confidence, level dB) readings."""
    return [(float(midi_to_hz(p)), conf, level) for p, conf, level in rows]


def test_a_short_note_the_tracker_reads_back_and_forth_between_bins_is_named():
    # 180 BPM, 71 -> 69 (76 ms) -> 67 (the tracker's readings of a generated clip): the
    # 69 comes with a level dip and rise (a re-articulation), and its hops step 17, 27
    # and 15 cents, back and forth between PESTO's 1/3-semitone bins: over the 8-cent
    # slope limit on every pair, so the onset rule never named it before it ended
    rows = [(68.75, 1.0, -27.0)] * 6 + [(68.75, 0.99, -36.9), (68.75, 0.96, -50.6)]
    rows += [(78.92, 1.0, -109.4), (78.92, 0.99, -119.1), (38.19, 0.96, -120.0), (34.0, 0.45, -120.0)]
    rows += [(39.01, 0.45, -37.5), (71.36, 0.42, -35.7), (70.99, 0.19, -39.6), (71.02, 0.28, -46.2)]
    rows += [(70.55, 0.89, -45.0), (70.77, 0.99, -35.6), (82.92, 0.92, -30.4), (71.01, 0.99, -28.0)]
    rows += [(71.08, 0.99, -27.4), (71.13, 1.0, -27.5), (71.17, 1.0, -28.3), (71.18, 0.99, -31.2)]
    rows += [(71.16, 0.86, -34.9), (69.42, 0.84, -26.2), (69.25, 0.91, -24.7), (69.52, 0.97, -26.1)]
    rows += [(69.37, 1.0, -29.1), (83.76, 0.99, -65.3), (81.17, 1.0, -81.7), (58.66, 1.0, -98.1)]
    frames = silence(10) + readings(rows) + silence(10)
    ev, _ = run(frames)
    assert [p for p, _ in ons(ev)] == [69, 71, 69], ev
    # ... but not during an attack (the level rising 5 dB over them): the first hops of a
    # note read sharp (76.56, 76.81, 76.64, then 76.2 on a 180 BPM clip, in 20 dB noise)
    rows = [(76.56, 0.92, -31.9), (76.81, 0.96, -26.7), (76.64, 0.95, -27.0), (76.17, 0.96, -31.0)]
    rows += [(76.2, 0.94, -33.0), (76.16, 0.8, -37.2), (76.14, 0.39, -43.7)]
    ev, _ = run(silence(10) + readings(rows) + silence(10))
    assert [p for p, _ in ons(ev)] == [76], ev


def test_an_attack_jumping_onto_the_note_is_not_extrapolated_as_a_scoop():
    # a child's "la" after a gap (a generated clip's readings): the consonant's hop at 43,
    # then the vowel at 67.43, 67.62, still settling from sharp onto 67.2. Taken as a
    # scoop converging (steps 24 semitones then 19 cents), it was named 68 on its third
    # hop; a glide's second step must be glide_ratio_min of its first, as in legato
    rows = [(39.01, 0.44, -63.0), (43.19, 0.7, -48.8), (67.43, 0.97, -34.9), (67.62, 0.95, -28.5)]
    rows += [(67.51, 0.95, -28.2), (67.19, 0.98, -31.2)] + [(67.17, 0.99, -31.4)] * 15
    ev, _ = run(silence(10) + readings(rows) + silence(10))
    assert [p for p, _ in ons(ev)] == [67], ev


def test_a_detuned_singers_semitone_step_that_reads_as_0_6_starts_a_new_note():
    # a singer 25 cents flat on 81, then in tune on 80: the step reads 0.65 semitones,
    # under change_semitones (0.8); both lie squarely on their semitones and the new
    # one holds, so it is a new note (before, the 81's median drifted onto it: lost)
    ev, _ = run(silence(10) + hops([80.75] * 40 + [80.4] + [80.1] * 30) + silence(10))
    assert [p for p, _ in ons(ev)] == [81, 80], ev
    # ... but a wide vibrato's first trough, the same depth for 6 hops, is not
    ev, _ = run(silence(10) + hops([80.75] * 40 + [80.4] + [80.1] * 6 + [80.4] + [80.75] * 20) + silence(10))
    assert [p for p, _ in ons(ev)] == [81], ev


def test_an_onset_on_the_edge_between_two_semitones_waits_to_see_where_it_settles():
    # a child's "la" after a gap (a generated clip's readings): the vowel's first hops
    # read 79.31, 79.55, 79.47 (the attack sharp), then it settles on 79.05. Two stable
    # hops with a median of 79.51 were named 80: half a semitone from both, so the
    # onset now waits (up to onset_edge_hops) for hops that name one of them squarely
    rows = [(38.67, 0.44, -57.9), (43.01, 0.85, -43.8), (79.31, 0.99, -29.9), (79.55, 0.98, -24.0)]
    rows += [(79.47, 0.98, -24.1), (79.06, 0.99, -28.0)] + [(79.05, 0.99, -28.6)] * 20
    ev, _ = run(silence(10) + readings(rows) + silence(10))
    assert [p for p, _ in ons(ev)] == [79], ev
    # a voice that holds the edge is still named, onset_edge_hops later
    ev, _ = run(silence(10) + hops([62.5] * 20) + silence(10))
    assert [p for p, _ in ons(ev)] == [round(62.5)] and ons(ev)[0][1] <= 10, ev


def test_with_pesto_a_noisy_notes_confidence_dipping_to_0_4_does_not_split_it():
    # in noise a held note's confidence dips to 0.35-0.45 for a few hops; with PESTO's
    # defaults the note holds through (it ended there, and its rest was a false note)
    frames = silence(10) + note(60, 30) + note(60, 4, conf=0.4) + note(60, 30) + silence(10)
    ev, _ = run(frames, TRACKER_DEFAULTS["pesto"])
    assert ons(ev) == [(60, ons(ev)[0][1])], ev
    # ... and it still ends when the voice goes (confidence under 0.35)
    ev, _ = run(
        silence(10) + note(60, 30) + note(60, 4, conf=0.3) + note(62, 30) + silence(10), TRACKER_DEFAULTS["pesto"]
    )
    assert [p for p, _ in ons(ev)] == [60, 62], ev


def test_with_pesto_a_quiet_note_in_noise_that_names_a_steady_pitch_opens_the_gate():
    # at 5 dB SNR a sung note's confidence sits at 0.5-0.65 for most of it, under the
    # gate's 0.65, and nearly every note missed there never opened it: 4 hops in a row
    # at 0.5 or more naming one pitch (within 50 cents) now open it
    cents = 20 * np.sin(np.arange(40))
    ev, _ = run(silence(10) + note(64, 40, conf=0.55, cents=cents) + silence(10), TRACKER_DEFAULTS["pesto"])
    assert [p for p, _ in ons(ev)] == [64], ev
    # noise at that confidence names no steady pitch: nothing
    rng = np.random.default_rng(0)
    frames = [(float(midi_to_hz(60 + 12 * rng.random())), 0.55, -20.0) for _ in range(60)]
    ev, _ = run(silence(10) + frames + silence(10), TRACKER_DEFAULTS["pesto"])
    assert ons(ev) == [], ev
