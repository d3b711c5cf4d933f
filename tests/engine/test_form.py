"""Forms for the live band: a locked form loops exactly the chords the shipped model's band
played in its last N bars; a chart set while playing starts at the next bar line and
drives the chord stream; a section loops on its own; the form reports bar and section;
a practice ramp raises the tempo each time round; charts save with their sections."""

import pytest

from engine.chart import ChartSource, parse_chart
from engine.clock import Clock
from engine.form import TempoRamp, check_lock_bars, form_from_frames
from engine.generator import StreamingGenerator
from engine.renderer import EventLog, PartRenderer
from models.sampling import ControlledSampler
from models.tokens import chord_name, chord_token

SR = 48000
C, G, AM, F = chord_token(0, "maj"), chord_token(7, "maj"), chord_token(9, "min"), chord_token(5, "maj")


def test_a_form_from_frames_plays_back_every_step_including_an_offbeat_change():
    bar1 = [C] * 8 + [G] * 8
    bar2 = [AM] * 5 + [F] * 11  # a change on the 6th 16th
    frames = [(s, tok, 0, 0, 0, 0) for s, tok in enumerate(bar1 + bar2, start=32)]
    chart = form_from_frames(frames, 64, 2, "4/4")
    assert [len(b) for b in chart.bars] == [2, 6]
    assert [chart.token_at(p, "4/4") for p in range(32)] == bar1 + bar2
    waltz = [C] * 8 + [G] * 4
    chart3 = form_from_frames([(s, t) for s, t in enumerate(waltz * 4)], 48, 4, "3/4")
    assert chart3.bars[0] == (C, G) and parse_chart(chart3.text()).bars == chart3.bars
    assert form_from_frames(frames[1:], 64, 2, "4/4") is None  # a step missing: not that much played
    assert form_from_frames(frames, 16, 2, "4/4") is None
    with pytest.raises(ValueError, match="2, 4, 8 bars"):
        check_lock_bars(3)


def test_a_chart_saves_its_sections_and_a_section_is_a_chart():
    chart = parse_chart("A: | C | Am |\nB: |: F | G :|\n")
    assert parse_chart(chart.text()).sections == chart.sections == (("A", 0), ("B", 2))
    b = chart.section("B")
    assert b.bars == ((F,), (G,), (F,), (G,)) and b.sections == (("B", 0),)
    with pytest.raises(ValueError, match="no section 'C'.*A, B"):
        chart.section("C")
    src = ChartSource(chart, "4/4", start=32)
    assert src.token_at(31) is None and src.position(32 + 16 * 2) == (2, 0, "B")
    assert src.position(32 + 16 * 6) == (0, 1, "A")
    with pytest.raises(ValueError):
        TempoRamp(0.0)


@pytest.fixture(scope="module")
def live_model():
    from models.runtime import load_accompanist

    return load_accompanist()


def band(model, meter="4/4", seed=11):
    clock = Clock(SR, 120.0, meter)
    gen = StreamingGenerator(
        model, clock, PartRenderer([EventLog()], "pop", meter, seed=seed), style="pop", sampler=ControlledSampler(seed)
    )
    for i in range(0, 400, 4):  # a wandering melody so the free band changes chords
        p = (60, 65, 69, 67, 62, 71, 64, 57)[(i // 8) % 8]
        gen.melody_event(clock.step_time(i), p, True)
        gen.melody_event(clock.step_time(i + 3), p, False)
    return gen, clock


def run_to(gen, clock, step):
    stream = {}
    while gen.next_step < step:
        gen.pump(clock.step_time(gen.next_step), until_step=gen.next_step + 1)
        f = gen.recent[-1]
        stream[f[0]] = f[1]
    return stream


@pytest.mark.parametrize("bars", [2, 4])
def test_a_locked_form_repeats_exactly_the_chords_of_its_bars(live_model, bars):
    gen, clock = band(live_model)
    stream = run_to(gen, clock, 70)
    gen.lock_form(bars)  # asked mid-bar: it locks at the bar line (80)
    stream.update(run_to(gen, clock, 80 + 3 * bars * 16))
    form = [stream[s] for s in range(80 - bars * 16, 80)]
    assert len(set(form)) > 1, [chord_name(t) for t in form]  # the free band moved: a real form
    after = [stream[s] for s in range(80, 80 + 3 * bars * 16)]
    assert after == form * 3
    assert gen.form_at(80 + bars * 16 + 16) == (1, 1, "")
    # without the lock the band would have gone its own way
    free_gen, _ = band(live_model)
    free = run_to(free_gen, clock, 80 + 3 * bars * 16)
    assert [free[s] for s in range(80, 80 + 3 * bars * 16)] != form * 3
    gen.set_chart(None)  # unlock: the model chooses again
    stream.update(run_to(gen, clock, 80 + 3 * bars * 16 + 64))
    assert gen.chord_source is None


def test_a_chart_set_while_playing_starts_on_the_next_bar_and_a_section_loops(live_model):
    chart = parse_chart("A: | C | Am | F G |\nB: | Dm7 | G7 |\n")
    gen, clock = band(live_model, "3/4")
    n = clock.bar_steps
    stream = run_to(gen, clock, 2 * n + 5)
    gen.set_chart(chart)  # starts at bar 3
    stream.update(run_to(gen, clock, 3 * n + 5 * n * 2))
    start = 3 * n
    assert [stream[s] for s in range(start, start + 10 * n)] == [chart.token_at(s, "3/4") for s in range(10 * n)]
    assert gen.form_at(start + 3 * n) == (3, 0, "B")
    gen.set_chart(chart.section("B"))  # loop B from the next bar line
    at = gen.next_step + (-gen.next_step) % n
    stream.update(run_to(gen, clock, at + 4 * n))
    assert [chord_name(stream[s]) for s in range(at, at + 4 * n, n)] == ["Dmin7", "G7", "Dmin7", "G7"]


def test_a_tempo_ramp_adds_bpm_each_time_round_the_form(live_model):
    gen, clock = band(live_model)
    gen.set_chart(parse_chart("| C | G |"))
    gen.set_tempo_ramp(TempoRamp(4.0, every=2, limit=130.0))
    run_to(gen, clock, 16 * 16)
    # the form (2 bars) starts at step 0; +4 BPM every 2 times round (64 steps), to 130 at most
    assert [clock.tempo_at_step(s) for s in (0, 63, 64, 127, 128, 192, 255)] == [120, 120, 124, 124, 128, 130, 130]
