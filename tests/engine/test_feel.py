"""Feel through the real render path (shipped checkpoint, real SoundFont): swing moves the
off-beat 8ths of band and drums by the set ratio in the rendered MIDI; humanise spreads
timing and velocity, the same for the same seed; fills and half/double time in the
drummer; bad values are one line naming the option."""

import subprocess
import sys
from pathlib import Path

import mido
import pytest
from test_styles import TUNE, tune

from engine import parts as P
from engine.events import NOTE_ON
from engine.feel import Feel, swing_fraction
from engine.groove import SNARE, TOM_HIGH, Groove
from engine.offline import RenderSettings, render_melody
from models.runtime import DEFAULT_CHECKPOINT

ROOT = Path(__file__).resolve().parents[2]
SR = 48000


def _melody_file(path: Path) -> Path:
    mid = mido.MidiFile(type=1, ticks_per_beat=480)
    tr = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(100))])
    for p in TUNE:
        tr += [mido.Message("note_on", note=p, velocity=90, time=0), mido.Message("note_off", note=p, time=480)]
    mid.tracks.append(tr)
    mid.save(str(path))
    return path


def _render_cli(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "liveband.cli",
            "render",
            str(_melody_file(tmp_path / "in.mid")),
            "-o",
            str(tmp_path / "out.wav"),
            "--midi-out",
            str(tmp_path / "out.mid"),
            "--checkpoint",
            str(DEFAULT_CHECKPOINT),
            "--backend",
            "torch-cpu",
            "--seed",
            "3",
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _onset_phases(path: Path) -> dict[int, list[int]]:
    """channel -> onset positions within their beat, in ticks (480 a beat)."""
    mid = mido.MidiFile(str(path))
    out: dict[int, list[int]] = {}
    for tr in mid.tracks:
        tick = 0
        for m in tr:
            tick += m.time
            if m.type == "note_on" and m.velocity > 0:
                out.setdefault(m.channel, []).append(tick % mid.ticks_per_beat)
    return out


@pytest.mark.parametrize("swing", [0.0, 0.6])
def test_swing_moves_the_off_beat_eighths_by_the_set_ratio_in_the_rendered_midi(tmp_path, swing):
    # rock: 8th-note bass, guitar and hi-hat, so every part has off-beat 8ths
    run = _render_cli(tmp_path, "--style", "rock", "--swing", str(swing))
    assert run.returncode == 0, run.stderr
    off_beat = round(480 * (0.5 + swing / 6))  # 0.6 -> 288 ticks (long:short 1.5:1)
    phases = _onset_phases(tmp_path / "out.mid")
    for ch in (P.BASS.channel, P.KEYS.channel, P.DRUMS.channel):
        ph = phases[ch]
        offs = [p for p in ph if 120 < p < 400]
        assert len(offs) >= 8, (ch, sorted(set(ph)))
        assert all(abs(p - off_beat) <= 1 for p in offs), (ch, swing, sorted(set(offs)))
    # the melody itself is the player's and is never swung
    assert all(p <= 1 for p in phases[P.MELODY.channel])


def test_swing_warps_each_beat_and_leaves_six_eight_straight():
    assert swing_fraction(2, "4/4", 1.0) == pytest.approx(2 / 3)  # triplet: 8th at 2/3 of the beat
    assert swing_fraction(2, "4/4", 0.6) == pytest.approx(0.4)
    assert swing_fraction(0, "4/4", 0.6) == 0 and swing_fraction(4, "3/4", 0.6) == 0
    assert 0 < swing_fraction(1, "4/4", 0.6) < swing_fraction(2, "4/4", 0.6) < 1
    assert swing_fraction(3, "4/4", 0.6) == pytest.approx(0.2)  # 16ths between move with it
    assert swing_fraction(2, "6/8", 1.0) == 0


def _band(r):
    return [e for e in r.events if e[1] == NOTE_ON and e[2] != P.MELODY.channel]


@pytest.fixture(scope="module")
def band():
    from engine.backends import open_accompanist

    return open_accompanist("torch-cpu", str(DEFAULT_CHECKPOINT))[0]


def test_humanise_is_the_same_for_a_seed_and_spreads_timing_and_velocity(band, soundfont):
    def render(seed, humanise):
        s = RenderSettings(style="pop", tempo=100, meter="4/4", seed=seed, feel=Feel(humanise=humanise))
        return render_melody(tune("4/4"), band, s, soundfont)

    a, b, other, straight = render(4, 0.5), render(4, 0.5), render(5, 0.5), render(4, 0.0)
    assert a.events == b.events
    assert [e[0] for e in _band(a)] != [e[0] for e in _band(other)]
    # the same band as without humanise (the model's sampler is untouched), moved and re-voiced
    assert sorted((e[2], e[3]) for e in _band(a)) == sorted((e[2], e[3]) for e in _band(straight))
    late_ms = [(t - a.clock.step_time(a.clock.step_at(t))) * 1000 / SR for t, *_ in _band(a)]
    assert all(0 <= d <= 0.5 * 12.0 + 0.05 for d in late_ms) and max(late_ms) > 2.0
    vel_a = [e[4] for e in _band(a)]
    vel_s = [e[4] for e in _band(straight)]
    assert len(vel_a) == len(vel_s) and vel_a != vel_s


def test_fills_off_phrase_more_and_half_double_time():
    def toms(fills, bars=8):
        g = Groove("pop", "4/4", seed=1, fills=fills)
        return {s // 16 for s in range(bars * 16) if any(k == TOM_HIGH for k, _ in g.hits(s, 0.5))}

    assert toms("off") == set()
    assert toms("phrase") == {3, 7}
    assert toms("more") == {1, 3, 5, 7}

    def snares(time):
        g = Groove("pop", "4/4", seed=1, fills="off", time=time)
        return [s for s in range(32) if any(k == SNARE for k, _ in g.hits(s, 0.5))]

    assert snares("normal") == [4, 12, 20, 28]
    assert snares("half") == [8, 24]  # the backbeat on 3, once a bar
    assert snares("double") == [2, 6, 10, 14, 18, 22, 26, 30]


def test_a_bad_feel_value_is_one_line_naming_the_option(tmp_path):
    for args, name in (
        (["--swing", "1.5"], "--swing"),
        (["--humanise", "x"], "--humanise"),
        (["--fills", "sometimes"], "--fills"),
    ):
        run = _render_cli(tmp_path, *args)
        assert run.returncode == 2 and name in run.stderr, run.stderr
        assert not (tmp_path / "out.wav").exists()


def test_a_feel_set_while_the_band_plays_applies_from_the_next_step():
    """PartRenderer.set_feel (the live session's path): swing, fills and time change at the
    next step, not at the next play."""
    import numpy as np

    from engine.clock import Clock
    from engine.renderer import EventLog, PartRenderer
    from models.tokens import chord_token

    clock = Clock(SR, 120, "4/4")
    log = EventLog()
    r = PartRenderer([log], "rock", "4/4", seed=1, density=0.6, clock=clock)
    frame = np.array([chord_token(0, "maj"), 3 + 36, 3 + 60, 3 + 64])
    hold = np.array([chord_token(0, "maj"), 2, 2, 2])
    n = 16 * 8
    for k in range(n):
        if k == 64:  # bar 4: swing 0.6, no fills, half time from here
            r.set_feel(Feel(swing=0.6, fills="off", time="half"))
        r.render_step(k, clock.step_time(k), frame if k % 16 == 0 else hold, clock.step_in_bar(k))
    length = clock.step_time(1) - clock.step_time(0)

    def late(k):  # how far after its step the bass's onsets of step k fall, in steps
        ts = [t for t, kind, ch, *_ in log.events if kind == NOTE_ON and ch == P.BASS.channel and clock.step_at(t) == k]
        assert ts, k
        return (ts[0] - clock.step_time(k)) / length

    assert late(2) == late(58) == 0.0  # straight before
    assert late(66) == pytest.approx(0.4, abs=1e-3) == late(126)  # the off-beat 8th at 0.6 of the beat after
    drums = [(clock.step_at(t), d1) for t, kind, ch, d1, _ in log.events if kind == NOTE_ON and ch == P.DRUMS.channel]
    assert any(d == TOM_HIGH and s < 64 for s, d in drums)  # rock's fill at the end of bar 4
    assert not any(d == TOM_HIGH and s >= 64 for s, d in drums)  # none once fills are off
    assert [s for s, d in drums if d == SNARE and 32 <= s < 48] == [36, 44]  # the backbeat on 2 and 4
    assert [s for s, d in drums if d == SNARE and 64 <= s < 96] == [72, 88]  # half time: on 3, once a bar


def test_humanise_set_while_the_band_plays_spreads_from_the_next_step():
    import numpy as np

    from engine.clock import Clock
    from engine.renderer import EventLog, PartRenderer
    from models.tokens import chord_token

    clock = Clock(SR, 120, "4/4")
    log = EventLog()
    r = PartRenderer([log], "rock", "4/4", seed=1, density=0.6, clock=clock)
    frame = np.array([chord_token(0, "maj"), 3 + 36, 3 + 60, 3 + 64])
    for k in range(64):
        if k == 32:
            r.set_feel(Feel(humanise=1.0))
        r.render_step(k, clock.step_time(k), frame, clock.step_in_bar(k))
    late_ms = {k: [] for k in range(64)}
    for t, kind, ch, *_ in log.events:
        if kind == NOTE_ON and ch != P.MELODY.channel:
            k = clock.step_at(t)
            late_ms[k].append((t - clock.step_time(k)) * 1000 / SR)
    assert all(d == 0 for k in range(32) for d in late_ms[k])
    after = [d for k in range(32, 64) for d in late_ms[k]]
    assert len(after) > 32 and max(after) > 4.0 and all(0 <= d <= 12.05 for d in after)
