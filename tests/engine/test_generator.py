"""The streaming generator: ahead of the clock, late steps hold, causality, soak, live thread."""

import time

import numpy as np
import psutil
from toy_band import ToyBand, band_for_tests

from engine import parts as P
from engine.clock import Clock
from engine.events import EVENT_DTYPE, NOTE_ON, EventQueue
from engine.generator import StreamingGenerator
from engine.renderer import EventLog, PartRenderer
from models.sampling import ControlledSampler

SR = 48000


def make(model=None, bpm=120.0, margin=2, chunk=1, clock_source=None, seed=0, sinks=None, **kw):
    clock = Clock(SR, bpm, "4/4", kw.pop("count_in_bars", 0), start_sample=kw.pop("start_sample", 0))
    log = EventLog()
    renderer = PartRenderer(sinks if sinks is not None else [log], "pop", "4/4", seed=seed)
    gen = StreamingGenerator(
        model or ToyBand(),
        clock,
        renderer,
        sampler=ControlledSampler(seed),
        margin_steps=margin,
        chunk_steps=chunk,
        clock_source=clock_source,
        **kw,
    )
    return gen, log, clock


def note_ons(log, channel=None):
    return [e for e in log.events if e[1] == NOTE_ON and (channel is None or e[2] == channel)]


def test_commits_margin_steps_ahead_in_chunks():
    now = [0]
    gen, log, clock = make(margin=2, chunk=4, clock_source=lambda: now[0])
    gen.pump()
    assert gen.next_step == 4  # one chunk covers steps 0-3 (>= margin)
    now[0] = clock.step_time(2)  # clock at step 2: 2 + margin = 4 is due
    gen.pump()
    assert gen.next_step == 8
    m = gen.metrics()
    assert m.late_steps == 0 and m.lead_ms_min >= 0 and m.steps == 8
    # every band onset is exactly on its step's sample
    for t, kind, ch, d1, d2 in note_ons(log):
        assert clock.step_time(clock.step_at(t)) == t


def test_a_time_lead_commits_each_step_just_before_it_sounds_so_the_next_step_hears_a_note():
    """Live play: a step is committed once its start is lead_ms away, so a note played
    during step s reaches the model at step s + 1 (the model's lookahead), where whole
    steps of margin made it wait 2-3 steps."""
    from models.tokens import is_note_on, token_pitch

    for lead, margin, hears_at in ((40.0, None, 11), (None, 2, 13)):
        now = [0]
        band = ToyBand()
        kw = {"lead_ms": lead} if lead is not None else {}
        gen, log, clock = make(model=band, margin=margin or 2, clock_source=lambda: now[0], **kw)
        step = clock.step_time(1) - clock.step_time(0)
        lead_samples = int(SR * lead / 1000) if lead else 0
        t_note = clock.step_time(10) + int(0.3 * step)  # the player strikes a note 30 % into step 10
        ticks = sorted({clock.step_time(k) + d for k in range(0, 16) for d in (-lead_samples, step // 2)} | {t_note})
        for t in ticks:
            now[0] = max(0, t)
            gen.pump()
            if t == t_note:
                gen.melody_event(t_note, 67, True)
        first = next(i for i, tok in enumerate(band.heard) if is_note_on(tok))
        assert token_pitch(band.heard[first]) == 67
        # heard[i] is the melody the model received when committing step i
        assert first == hears_at, (lead, margin, first)
        if lead is not None:
            m = gen.metrics()
            assert m.late_steps == 0 and 0 <= m.lead_ms_min <= lead + 1


def test_a_generator_that_falls_behind_holds_the_band_and_counts_late_steps():
    now = [0]
    gen, log, clock = make(margin=2, clock_source=lambda: now[0])
    now[0] = clock.step_time(10)  # the audio clock ran 10 steps ahead (a stall)
    gen.pump()
    m = gen.metrics()
    assert m.late_steps == 10 and gen.next_step == 13
    assert m.lead_ms_min < 0
    onsets = note_ons(log)
    assert onsets, "the band plays again once it has caught up"
    assert min(e[0] for e in onsets) >= clock.step_time(10)  # nothing scheduled in the past


def test_offline_and_live_clock_give_identical_events():
    # the same steps generated in one call (offline) or as a clock creeps forward (live)
    a, log_a, clock = make(clock_source=lambda: 0)
    a.pump(0, until_step=64)
    while a.next_step < 64:
        a.pump(clock.step_time(a.next_step), until_step=64)
    now = [0]
    b, log_b, _ = make(clock_source=lambda: now[0])
    for t in range(0, clock.step_time(62), 256):
        now[0] = t
        b.pump(until_step=64)
    assert b.next_step == 64 and log_a.events == log_b.events


def melody_into(gen, notes):
    for start, end, pitch in notes:
        gen.melody_event(gen.clock.step_time(start), pitch, True)
        gen.melody_event(gen.clock.step_time(end), pitch, False)


def test_changing_the_melody_after_step_s_never_changes_what_was_committed_before():
    base = [(i * 4, i * 4 + 3, 60 + (i * 5) % 12) for i in range(16)]
    S = 24
    alt = [n if n[0] < S else (n[0], n[1], n[2] + 3) for n in base]
    runs = []
    for notes in (base, alt):
        model = ToyBand()
        gen, log, clock = make(model=model, clock_source=lambda: 0)
        melody_into(gen, notes)
        gen.pump(clock.step_time(63), until_step=64)
        runs.append((model.heard[:], log.events, clock))
    (heard_a, ev_a, clock), (heard_b, ev_b, _) = runs
    d = ToyBand.lookahead
    # the model heard the same melody up to step S-1, i.e. for band steps < S + d
    assert heard_a[: S + d] == heard_b[: S + d] and heard_a != heard_b
    t_cut = clock.step_time(S + d)

    def before(evs):
        return [e for e in evs if e[0] < t_cut]

    assert before(ev_a) == before(ev_b)
    assert ev_a != ev_b  # the change does reach the band afterwards


def test_one_hour_session_has_flat_memory_and_flat_step_time():
    """28,800 steps at 120 BPM through the real generator path (debug model).

    Step time is thread CPU time, and the "first 1000 steps after warm-up" are measured
    on a fresh session interleaved with the long session's last 1000 steps: this machine
    is shared, and comparing two windows an hour (or a minute) apart would measure the
    neighbours' load rather than our session length."""
    n = 28_800

    def session():
        model = band_for_tests(0)
        if isinstance(model, ToyBand):
            model.keep_history = False
        q = EventQueue(8192)
        now = [0]
        gen, _, clock = make(model=model, clock_source=lambda: now[0], sinks=[q], chunk=4)
        out = np.zeros(4096, EVENT_DTYPE)
        beat = [0]

        def one_beat() -> float:
            """Play one beat (4 steps) of an endless melody; returns CPU ms per step."""
            b = beat[0]
            t = clock.step_time(b * 4)
            gen.melody_event(t, 60 + (b * 7) % 24, True)
            gen.melody_event(t + 5000, 60 + (b * 7) % 24, False)
            now[0] = t
            c0 = time.thread_time_ns()
            gen.pump()
            dt = (time.thread_time_ns() - c0) / 4e6
            q.pop_until(t, out)  # the audio side consumes what is due
            beat[0] = b + 1
            return dt

        return gen, q, one_beat

    long_gen, long_q, long_beat = session()
    proc = psutil.Process()
    rss = {}
    for b in range(n // 4 - 250):
        long_beat()
        if b == 1000:
            rss["early"] = proc.memory_info().rss
    rss["late"] = proc.memory_info().rss
    fresh_gen, _, fresh_beat = session()
    # the fresh session's warm-up: 1000 steps, and long enough to fill the sampler's
    # bounded melody memory (models.recall), whose search grows until it is full
    for _ in range(250 + fresh_gen.sampler.recall.memory // 4):
        fresh_beat()
    last, first = [], []
    for _ in range(250):  # 1000 steps each, interleaved beat by beat
        last.append(long_beat())
        first.append(fresh_beat())
    assert long_gen.steps >= n - 4 and long_gen.late_steps == 0 and long_q.dropped == 0
    first_ms, last_ms = float(np.median(first)), float(np.median(last))
    assert abs(last_ms - first_ms) <= 0.10 * first_ms, (first_ms, last_ms)
    assert rss["late"] - rss["early"] < 4 * 2**20, rss


def test_live_worker_thread_keeps_ahead_of_a_running_clock_and_applies_requests():
    t0 = time.monotonic()

    def clock_now():
        return int((time.monotonic() - t0) * SR)

    q = EventQueue(8192)
    log = EventLog()
    # live, the music starts a little after "now", so the first steps are not late
    gen, _, clock = make(bpm=240, margin=2, clock_source=clock_now, sinks=[q, log], start_sample=clock_now() + SR // 10)
    gen.start()
    try:
        time.sleep(0.6)
        gen.set_tempo(120)
        gen.set_mute("bass", True)
        time.sleep(0.9)
    finally:
        gen.stop()
    m = gen.metrics()
    assert gen.error is None
    assert m.late_steps == 0 and m.lead_ms_min > 0 and m.steps > 16
    segs = clock.segments
    assert len(segs) == 2 and segs[1].bpm == 120 and segs[1].step % 4 == 0
    times = [e[0] for e in log.events]
    assert times == sorted(times)
    # after the request was applied, the bass part stays silent
    bass_after = [e for e in note_ons(log, P.BASS.channel) if e[0] > clock.step_time(segs[1].step)]
    assert not bass_after


def test_tempo_following_moves_the_band_to_the_players_tempo_at_a_beat():
    now = [0]
    gen, log, clock = make(bpm=100, clock_source=lambda: now[0], follow_tempo=True)
    beat_108 = SR * 60 / 108
    for i in range(12):  # the player is at 108 BPM
        t = int(i * beat_108)
        gen.melody_event(t, 60 + i % 5, True)
        gen.melody_event(t + 2000, 60 + i % 5, False)
        now[0] = t
        gen.pump()
    segs = clock.segments
    assert len(segs) >= 2 and abs(segs[-1].bpm - 108) < 4
    assert all(s.step % 4 == 0 for s in segs[1:])
    times = [e[0] for e in log.events]
    assert times == sorted(times)


def test_a_style_change_lands_on_the_next_bar_line_and_bad_controls_are_refused():
    import pytest

    now = [0]
    gen, log, clock = make(clock_source=lambda: now[0], chunk=3)
    gen.pump(clock.step_time(18), until_step=21)  # into bar 2 (steps 16-31)
    gen.set_style("chorale")  # chorales have no drums
    gen.pump(clock.step_time(60), until_step=64)
    drums = [e[0] for e in note_ons(log, P.DRUMS.channel)]
    assert any(t >= clock.step_time(21) for t in drums)  # the pop bar plays out
    assert not [t for t in drums if t >= clock.step_time(32)]  # silent from the bar line
    assert gen.style == "chorale"
    with pytest.raises(ValueError, match="density"):
        gen.set_controls(0.9, 1.5, 0.5)
    with pytest.raises(ValueError, match="style"):
        gen.set_style("polka")


def test_a_fixed_key_keeps_the_real_models_band_in_its_scale():
    # the shipped checkpoint, a melody in C major, and the player fixes F# major (two
    # shared pitch classes): the band's notes keep to F# major, which free they do not
    from engine.keyfind import key_pitch_classes
    from models.runtime import load_accompanist

    melody = [(i * 4, i * 4 + 3, (60, 62, 64, 65, 67, 69, 71, 72)[i % 8]) for i in range(32)]
    eb = key_pitch_classes(6, "major")
    share = {}
    acc = load_accompanist()
    for fixed in (False, True):
        gen, log, clock = make(acc, seed=3)
        if fixed:
            gen.set_key(eb)
        melody_into(gen, melody)
        while gen.next_step < 128:
            gen.pump(clock.step_time(gen.next_step), until_step=128)
        band = [e for e in note_ons(log) if e[2] in (P.BASS.channel, P.KEYS.channel, P.PAD.channel)]
        assert len(band) > 20
        share[fixed] = np.mean([(e[3] % 12) in eb for e in band])
    assert share[True] > 0.9 and share[False] < 0.6, share


class OfflineToyBand(ToyBand):
    """ToyBand as an offline teacher: the frame of t hears the melody of t + 4."""

    lookahead = -4

    def reset(self, style: str, meter: str) -> None:
        super().reset(style, meter)
        self.primed: list[int] = []

    def prime_melody(self, tokens) -> None:
        self.primed = [int(x) for x in tokens]


def test_a_live_generator_refuses_a_model_that_hears_the_future():
    import pytest

    with pytest.raises(ValueError, match="offline"):
        make(model=OfflineToyBand(), clock_source=lambda: 0)


def test_an_offline_generator_hands_the_model_the_melody_a_beat_ahead():
    from models.tokens import REST, note_on

    model = OfflineToyBand()
    notes = [(i * 4, i * 4 + 3, 60 + (i * 5) % 12) for i in range(8)]
    gen, log, clock = make(model=model, clock_source=lambda: 0, offline=True, count_in_bars=1)
    melody_into(gen, notes)
    gen.pump(clock.step_time(31), until_step=32)
    assert model.primed == [note_on(60), 2, 2, REST]  # steps 0-3: onset, holds, rest
    # band step k heard the melody of step k + 4 (a beat ahead): onsets at 4, 8, ...
    assert model.heard[0] == note_on(65) and model.heard[4] == note_on(70)
    # so its chord changes on the melody's onset, not a beat after it
    chords = [r[1] for r in gen.recent]
    assert chords[4] != chords[3] and chords[4] == chords[7]


def test_listening_first_plays_drums_only_until_the_player_gives_notes_or_a_key():
    """No key fixed (issue 14 item 5): the tonal parts stay silent until the melody has
    given LISTEN_ONSETS notes, then enter on the next beat in the key the notes imply;
    a key fixed while it listens, or a chord source's chord, ends the listening at once."""
    from engine.band_key import LISTEN_ONSETS
    from engine.quantiser import MelodyEvent

    tonal = (P.BASS.channel, P.KEYS.channel, P.PAD.channel)
    gen, log, clock = make(listen=True)
    gen.pump(clock.step_time(32), until_step=32)
    assert note_ons(log, P.DRUMS.channel) and not [e for e in note_ons(log) if e[2] in tonal]
    assert gen.listening and gen.band_key == "" and gen.entered_step is None
    for i, p in enumerate((64, 67, 71, 66)[:LISTEN_ONSETS]):  # E G B at steps 33, 35, 37
        gen.quantiser.push(MelodyEvent(clock.step_time(33 + 2 * i) + 10, p, True))
        gen.quantiser.push(MelodyEvent(clock.step_time(34 + 2 * i) + 10, p, False))
    gen.pump(clock.step_time(64), until_step=64)
    first = min(clock.step_at(e[0]) for e in note_ons(log) if e[2] in tonal)
    assert gen.entered_step == first == 40  # the third note heard at 38, the next beat
    assert gen.band_key == "E minor"
    # a key fixed while it listens: the band plays in it from the next step
    gen, log, clock = make(listen=True)
    gen.pump(clock.step_time(10), until_step=10)
    gen.set_key(frozenset({0, 2, 4, 5, 7, 9, 11}), "C major")
    gen.pump(clock.step_time(20), until_step=20)
    assert gen.entered_step == 10 and not gen.listening and gen.band_key == "C major"
    # silent before it enters, playing by the next beat (the toy's beat onset, or an
    # off-beat one the sampler draws)
    assert 10 <= min(clock.step_at(e[0]) for e in note_ons(log) if e[2] in tonal) <= 12
    # the key let go with nothing played yet: the band stays in (and shows) the key it plays in
    gen.set_key(None)
    gen.pump(clock.step_time(24), until_step=24)
    assert gen.band_key == "C major" and gen.sampler.out_of_key[1] == 1.0  # C# still out of key
    # without listen (offline render, a fixed key at the start) nothing changes
    gen, log, clock = make()
    gen.pump(clock.step_time(4), until_step=4)
    assert [e for e in note_ons(log) if e[2] in tonal] and gen.entered_step == 0


def _keys_heard(melody: list[int], penalised: list[int] | None = None) -> list[str]:
    """The band's key per step, live with no key fixed, over quarter-note ``melody``
    pitches (one per beat from step 0); ``penalised`` gets the number of pitch classes
    the sampler holds the band's chords off, per step."""
    from engine.quantiser import MelodyEvent

    gen, log, clock = make(listen=True)
    for i, p in enumerate(melody):
        gen.quantiser.push(MelodyEvent(clock.step_time(4 * i) + 10, p, True))
        gen.quantiser.push(MelodyEvent(clock.step_time(4 * i + 3) + 10, p, False))
    keys = []
    for k in range(4 * len(melody)):
        gen.pump(clock.step_time(k), until_step=k + 1)
        keys.append(gen.band_key)
        if penalised is not None:
            penalised.append(int(gen.sampler.out_of_key.sum()))
    return keys


C_TUNE = [60, 64, 67, 72, 71, 67, 65, 62, 64, 60, 62, 67, 69, 65, 64, 60] * 2  # 8 bars of C major


def test_live_the_band_follows_a_key_jump_within_two_beats_into_the_tunes_own_key_moved():
    """Issue 14: a singer who jumps the song up a tritone. The band (no key fixed) lets go
    of the old key once two of the melody's last four notes leave it, and two beats after
    the jump keeps to the old key moved by the jump's interval: F# major, the tune's own
    key moved. Waiting for the slow profile held the old key's penalty for 12-13 beats;
    a generic key profile on the jump's first few notes named a neighbour (Bb minor, Db
    major: six of F# major's seven notes), whose penalty holds the band off a chord of
    the new key (in Bb minor, F# major's dominant C# major, with its E#)."""
    jump = len(C_TUNE)  # beat of the jump
    keys = _keys_heard(C_TUNE + [p + 6 for p in C_TUNE])
    assert set(keys[16 : 4 * jump]) == {"C major"}, set(keys[16 : 4 * jump])
    settled = keys[4 * (jump + 2) :]
    assert set(settled) == {"F# major"}, sorted(set(settled))


def test_live_a_chromatic_passing_note_does_not_move_the_band_off_its_key():
    """One note outside the key (a passing C#, a blue Eb) is melody, not a key jump: the
    key stays, and the band does not hold its chords against that note while it is one of
    the melody's last four (the key's penalty pauses, then returns)."""
    tune = list(C_TUNE)
    tune[5], tune[13], tune[22] = 61, 63, 66  # C#, Eb, F# in three separate bars
    penalised: list[int] = []
    keys = _keys_heard(tune, penalised)
    assert set(keys[16:]) == {"C major"}, sorted(set(keys[16:]))
    heard = 4 * 13 + 1  # the Eb (beat 13) reaches the band a step later
    assert penalised[heard - 1] == 5 and penalised[heard] == 0  # C major's five foreign pitch classes
    assert penalised[heard + 4 * 4 - 1] == 0 and penalised[heard + 4 * 4] == 5  # four notes on


def test_the_plan_is_a_beat_past_the_committed_step_and_never_changes_what_sounds():
    """Issue 14 item 4 on the shipped model: with plan=True the generator keeps a greedy
    beat of tentative frames past its last committed step, made from a saved copy of the
    model's state; the events the band sends (what the synth plays) are bit for bit those
    of the same band without a plan, so a tentative frame never sounds nor steers it."""
    from engine.quantiser import MelodyEvent
    from models.contract import PLAN_EVERY
    from models.runtime import load_accompanist

    logs, plans = [], []
    for plan in (False, True):
        gen, log, clock = make(model=load_accompanist(), seed=3, plan=plan)
        for i in range(24):  # quarter notes from step 2
            gen.quantiser.push(MelodyEvent(clock.step_time(2 + 4 * i) + 5, (64, 67, 71, 69)[i % 4], True))
            gen.quantiser.push(MelodyEvent(clock.step_time(5 + 4 * i) + 5, (64, 67, 71, 69)[i % 4], False))
        for k in range(0, 96):
            gen.pump(clock.step_time(k))  # a step at a time, as the live worker commits
            if plan and gen.plan is not None:
                plans.append((gen.next_step - 1, gen.plan))
        logs.append(log.events)
        if plan:
            assert gen.metrics().plan_ms_p99 > 0.0
    assert logs[0] == logs[1]
    assert len(plans) >= 96 // PLAN_EVERY - 4
    for committed, p in plans:
        # made after a commit, and kept until the next plan (PLAN_EVERY steps later)
        assert committed - PLAN_EVERY + 1 < p.first_step <= committed + 1
        assert p.first_step + len(p.frames) - 1 >= committed + 4 - (PLAN_EVERY - 1)  # ~a beat beyond
        assert p.frames.shape == (4, 4) and p.parts
    assert any((p.frames[:, 1:] > 2).any() for _, p in plans)  # onsets are planned, not only holds


def test_under_a_chart_the_plan_plays_the_charts_chords_and_the_key_comes_from_them():
    """A chart leads: the band plays from its first chord (no listening), the key shown
    is the one the chords imply, and the plan's chords are the chart's at their steps."""
    from engine.chart import ChartSource, parse_chart

    chart = parse_chart("| Am | F | C | G |")
    gen, log, clock = make(model=band_for_tests(), listen=True, plan=True, chart=chart)
    src = ChartSource(chart, "4/4")
    plans = []
    for k in range(0, 64):
        gen.pump(clock.step_time(k))
        if gen.plan is not None:
            plans.append(gen.plan)
    assert gen.entered_step == 0 and not gen.listening
    assert gen.band_key in ("A minor", "C major"), gen.band_key
    assert len(plans) > 20
    for p in plans:
        assert [int(c) for c in p.frames[:, 0]] == [src.token_at(p.first_step + i) for i in range(len(p.frames))]
