"""MIDI learn for the chord controls and the feel, through the real MIDI input over JACK
(a controller in its own JACK client): a pad moves the band to the chart's next section,
a foot switch locks and unlocks the form, a button turns arranger mode on, a knob sets
the swing and leaves the rest of the feel as it was."""

from __future__ import annotations

import pytest
from test_session_learn import Controller  # a controller on JACK, as there
from waiting import wait_for

from liveband.config import AudioConfig, EngineConfig
from liveband.session import VIRTUAL_IN_NAME, Session

CHART = "A: | C | Am | F | G |\nB: | Dm | G | C | C |\n"


def learn(s: Session, target: str, press) -> None:
    s.midi_learn(target)
    press()
    assert wait_for(lambda: target in [b.target for b in s.midi_bindings()], 3.0), s.midi_bindings()


@pytest.mark.timeout(240)
def test_section_lock_arranger_and_swing_from_a_controller_over_jack(jack_server, liveband_home, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=256)) as s:
        assert s.audio.active, s.snapshot().notices
        s.open_midi_input(VIRTUAL_IN_NAME)
        assert s.prepare(60)
        s.set_chart_text(CHART)
        s.set_feel(swing=0.0, fills="more", time_feel="half", humanise=0.2)
        s.play()
        box = Controller(VIRTUAL_IN_NAME)
        try:
            assert wait_for(lambda: s.form_state().section == "A", 10.0), s.form_state()
            # next section: a pad (note 40) loops B from the next bar line, then A again
            learn(s, "next_section", lambda: box.note(40, 100))
            box.note(40, 100)
            assert wait_for(lambda: s.form_state().source == "section" and s.form_state().section == "B", 8.0), (
                s.form_state()
            )
            box.note(40, 100)
            assert wait_for(lambda: s.form_state().section == "A", 8.0), s.form_state()
            # lock form: a foot switch (CC 64) locks the last 4 bars, and unlocks them
            learn(s, "lock_form", lambda: box.cc(64, 127))
            box.cc(64, 0)
            box.cc(64, 127)
            assert wait_for(lambda: s.form_state().locked_bars == 4, 3.0), (s.form_state(), s.control.errors)
            box.cc(64, 0)
            box.cc(64, 127)
            assert wait_for(lambda: s.form_state().locked_bars == 0, 3.0), s.form_state()
            # arranger mode on a button (CC 82)
            learn(s, "arranger", lambda: box.cc(82, 127))
            box.cc(82, 0)
            box.cc(82, 127)
            assert wait_for(lambda: s.form_state().arranger, 3.0)
            # swing on a knob (CC 23): the rest of the feel stays
            learn(s, "swing", lambda: box.cc(23, 10))
            box.cc(23, 127)
            assert wait_for(lambda: s.engine_config.swing == 1.0, 3.0), s.engine_config
            cfg = s.engine_config
            assert (cfg.fills, cfg.time_feel, cfg.humanise) == ("more", "half", 0.2)
            assert s.snapshot().playing and s.generator.error is None
        finally:
            box.close()
            s.stop()
