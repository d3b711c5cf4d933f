"""The piano roll draws what Session.roll returns where the player expects it."""

import math

import pytest
from PyQt6.QtGui import QColor

from liveband.config import METERS
from ui import theme
from ui.pianoroll import PianoRoll


@pytest.fixture()
def roll(themed_app, qtbot):
    r = PianoRoll()
    qtbot.addWidget(r)
    r.resize(900, 420)
    r.show()
    return r


def pixel(img, x, y) -> QColor:
    return QColor(img.pixel(int(x), int(y)))


def close_to(c: QColor, hexcolor: str, tol: int = 40) -> bool:
    h = QColor(hexcolor)
    return abs(c.red() - h.red()) + abs(c.green() - h.green()) + abs(c.blue() - h.blue()) <= tol


def test_the_roll_reads_the_band_s_bar_and_beat_in_every_meter():
    """The grid and the count-in come from the band's own meter arithmetic (issue 16)."""
    import engine.clock
    import models.tokens
    import ui.pianoroll

    assert ui.pianoroll.bar_steps is models.tokens.bar_steps
    assert ui.pianoroll.beat_steps is engine.clock.beat_steps
    grid = {m: (ui.pianoroll.bar_steps(m), ui.pianoroll.beat_steps(m)) for m in METERS}
    assert grid == {"4/4": (16, 4), "3/4": (12, 4), "6/8": (12, 6), "12/8": (24, 6)}


def test_heard_notes_are_drawn_in_their_part_colour_at_their_pitch(roll):
    notes = [("bass", 40, 20.0, 28.0, False), ("melody", 67, 24.0, 30.0, False)]
    roll.set_frame(32.0, notes, meter="4/4")
    img = roll.grab().toImage()
    for part, pitch, s, e, _ in notes:
        r = roll.note_rect(part, pitch, s, e)
        assert close_to(pixel(img, r.center().x(), r.center().y()), theme.PART_COLORS[part]), part
    # The bass lane one octave up, at the same time, stays background.
    r = roll.note_rect("bass", 52, 20.0, 28.0)
    assert not close_to(pixel(img, r.center().x(), r.center().y()), theme.PART_COLORS["bass"])


def test_committed_notes_ahead_are_solid_and_the_tentative_plan_beyond_them_faded(roll):
    """Issue 14 item 4, as ReaLJam shows it: what the band committed (planned, not heard
    yet) is as solid as what was heard; its tentative plan beyond is faded but visible."""
    roll.set_frame(
        32.0,
        [
            ("keys", 64, 33.0, 36.0, True, False),
            ("keys", 64, 36.0, 40.0, True, True),
            ("keys", 64, 24.0, 32.0, False, False),
        ],
    )
    img = roll.grab().toImage()
    committed = roll.note_rect("keys", 64, 33.0, 36.0)
    tentative = roll.note_rect("keys", 64, 36.0, 40.0)
    heard = roll.note_rect("keys", 64, 24.0, 32.0)
    assert tentative.left() > committed.left() > roll.playhead_x() > heard.left()
    hc, cc, tc = (pixel(img, r.center().x(), r.center().y()) for r in (heard, committed, tentative))
    assert close_to(hc, theme.PART_COLORS["keys"]) and close_to(cc, theme.PART_COLORS["keys"])
    assert tc.lightness() < hc.lightness() - 40  # faint fill
    assert tc != QColor(theme.PANEL) and not close_to(tc, theme.PANEL, 6)  # but visible


def test_notes_scroll_left_as_the_playhead_moves(roll):
    note = [("pad", 60, 40.0, 44.0, False)]
    roll.set_frame(44.0, note)
    x1 = roll.note_rect("pad", 60, 40.0, 44.0).left()
    roll.set_frame(52.0, note)
    x2 = roll.note_rect("pad", 60, 40.0, 44.0).left()
    assert x2 == pytest.approx(x1 - 8 * roll._px_per_step())


def test_drums_have_their_own_lane_below_the_notes(roll):
    roll.set_frame(32.0, [("drums", 36, 28.0, 28.5, False), ("bass", 36, 28.0, 30.0, False)])
    kick = roll.note_rect("drums", 36, 28.0, 28.5)
    bass = roll.note_rect("bass", 36, 28.0, 30.0)
    assert kick.top() >= roll.height() - roll.DRUM_LANE
    assert bass.bottom() <= roll.height() - roll.DRUM_LANE


def test_hummed_pitch_is_a_continuous_line_up_to_the_playhead(roll):
    roll.set_frame(10.0, [], hum_pitch=62.0)
    for k in range(1, 40):
        roll.set_frame(10.0 + k * 0.25, [], hum_pitch=62.0 + 0.02 * k)
    img = roll.grab().toImage()
    lh = roll._lane_h()
    # Sample the line half way along its length: its pitch there is ~62.4.
    x = roll.x_of(15.0)
    ys = [roll.y_of(62.0 + 0.02 * 20) + lh / 2 + d for d in range(-2, 3)]
    assert any(pixel(img, x, y).lightness() > 180 for y in ys)
    assert roll.hum_pitch == pytest.approx(62.78)


def test_the_clock_going_back_starts_a_new_take(roll):
    roll.set_frame(100.0, [], hum_pitch=60.0, chord="C")
    roll.set_frame(0.0, [])
    assert roll._chords == [] and not any(math.isfinite(v) for v in roll._hum[:, 1])


def test_still_sounding_notes_reach_the_playhead(roll):
    roll.set_frame(32.0, [("melody", 60, 30.0, float("inf"), False), ("melody", 62, 31.0, None, False)])
    assert roll.note_count == 2
    assert roll._end[0] == pytest.approx(32.0) and roll._end[1] == pytest.approx(32.0)


def test_stopping_keeps_the_last_take_on_screen(roll):
    roll.set_frame(32.0, [("bass", 40, 20.0, 28.0, False)])
    roll.freeze()
    assert not roll.playing and roll.note_count == 1
    img = roll.grab().toImage()
    r = roll.note_rect("bass", 40, 20.0, 28.0)
    c = pixel(img, r.center().x(), r.center().y())
    assert c.red() > c.blue() + 20  # still the bass colour, dimmed


def test_quick_chord_changes_do_not_print_over_each_other(roll):
    roll.set_frame(10.0, [], chord="C#m7")
    roll.set_frame(10.25, [], chord="Ebm")  # a quarter step later: no room for its name
    roll.set_frame(20.0, [], chord="Ab")
    names = [name for _, name in roll.chord_marks()]
    assert names == ["C#m7", "", "Ab"]
    roll.grab()
