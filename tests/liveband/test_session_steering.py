"""The session's harmony steering on the shipped model's band (a simulated clock, the real
generator): which source drives the chord stream (lock > arranger > chart > the model),
a chart file loaded and saved with its text kept, a section looped, the form position the
UI shows, and bad input refused in one line with nothing lost."""

import threading

import pytest

from engine.chart import ChartError, parse_chart
from engine.clock import Clock
from engine.generator import StreamingGenerator
from engine.renderer import EventLog, PartRenderer
from liveband.session_steering import Steering
from models.sampling import ControlledSampler
from models.tokens import chord_name

SR = 48000
SONG = "# practice\nA: | C | Am |\nB: | F | G7 |\n"


@pytest.fixture(scope="module")
def live_model():
    from models.runtime import load_accompanist

    return load_accompanist()


def band(model):
    clock = Clock(SR, 120.0, "4/4")
    gen = StreamingGenerator(
        model, clock, PartRenderer([EventLog()], "pop", "4/4", seed=2), style="pop", sampler=ControlledSampler(2)
    )
    return gen, clock


def run(gen, clock, to):
    while gen.next_step < to:
        gen.pump(clock.step_time(gen.next_step), until_step=gen.next_step + 1)
    return {f[0]: chord_name(f[1]) for f in gen.recent}


def test_chart_arranger_and_lock_take_turns_on_the_real_band(live_model, tmp_path):
    st = Steering(threading.RLock())
    song = tmp_path / "song.txt"
    song.write_text(SONG)
    st.load_chart(song)
    assert st.chart_text() == SONG and st.sections() == ["A", "B"]
    gen, clock = band(live_model)
    st.attach(gen, clock)
    names = run(gen, clock, 64)
    assert [names[s] for s in (0, 16, 32, 48)] == ["C", "Am", "F", "G7"]  # the chart from bar 1
    s = st.state(40.0)
    assert (s.bar, s.form_bar, s.form_bars, s.section, s.source, s.loop) == (3, 3, 4, "B", "chart", 1)
    # arranger on: the left hand's chord wins from the next step (a chart stays loaded underneath)
    st.set_arranger(True, split=60)
    assert st.note(clock.step_time(70), 50, True) and st.note(clock.step_time(70), 53, True)
    assert st.note(clock.step_time(70), 57, True) and not st.note(clock.step_time(70), 72, True)
    names = run(gen, clock, 96)
    assert names[71] == "Dm" and names[95] == "Dm" and st.state(80.0).source == "arranger"
    assert st.state(80.0).chord == "Dm"
    # lock 2 bars: from the next bar line the band loops bars 5-6 as it played them
    st.lock(2)
    names = run(gen, clock, 96 + 64)
    assert [names[s] for s in range(96, 128)] == [names[s] for s in range(64, 96)]
    assert [names[s] for s in range(128, 160)] == [names[s] for s in range(64, 96)]
    assert st.state(100.0).source == "locked" and st.state(100.0).form_bars == 2
    saved = st.save_chart(tmp_path / "locked.txt", locked=True)
    back = parse_chart(saved.read_text())  # the locked form as a chart plays back step for step
    assert [chord_name(back.token_at(k, "4/4")) for k in range(32)] == [names[s] for s in range(64, 96)]
    # unlock: the arranger's chord again; arranger off: the chart again (from a bar line)
    st.unlock()
    names = run(gen, clock, 176)
    assert names[161] == "Dm" and st.state(170.0).source == "arranger"
    st.set_arranger(False)
    st.loop_section("B")
    names = run(gen, clock, 240)
    start = next(s for s in range(176, 240) if s % 16 == 0 and names[s] == "F")
    assert [names[s] for s in (start, start + 16, start + 32)] == ["F", "G7", "F"]
    assert st.state(float(start + 20)).section == "B" and st.state(float(start + 20)).source == "section"
    st.clear_chart()
    st.set_tempo_ramp(2.0, every=1)
    assert st.chart_text() == "" and st.state(0.0).ramp == "+2 BPM every 1"


def test_bad_input_is_one_line_and_keeps_what_was_loaded(tmp_path, live_model):
    st = Steering(threading.RLock())
    st.set_chart_text("| C | G |", "typed chart")
    bad = tmp_path / "bad.txt"
    bad.write_text("| C | Hm7 |\n")
    with pytest.raises(ChartError, match=f"{bad} line 1: not a chord symbol"):
        st.load_chart(bad)
    with pytest.raises(ChartError, match="missing.txt"):
        st.load_chart(tmp_path / "missing.txt")
    assert st.chart_text() == "| C | G |"
    with pytest.raises(ValueError, match="no section 'X'"):
        st.loop_section("X")
    with pytest.raises(ValueError, match="not playing"):
        st.lock(4)
    with pytest.raises(ValueError, match="2, 4, 8 bars"):
        st.lock(3)
    with pytest.raises(ValueError, match="split point"):
        st.set_arranger(True, split=200)
    with pytest.raises(ValueError, match="no locked form"):
        st.save_chart(tmp_path / "x.txt", locked=True)
    assert not st.arranger_on and not list(tmp_path.glob("*.tmp")) and not (tmp_path / "x.txt").exists()
