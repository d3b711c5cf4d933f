"""What the player is told (liveband.session_notices): a problem stays until solved, a
happening fades after EVENT_SECONDS, a confirmation after CONFIRM_SECONDS."""

from __future__ import annotations

from liveband.session_notices import CONFIRM_SECONDS, EVENT_SECONDS, Notices


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_problem_stays_until_it_is_solved_one_per_topic():
    now = Clock()
    n = Notices(now)
    n.problem("audio", "no output")
    n.problem("audio", "output lost")  # the newer text replaces the older
    now.t += 10 * EVENT_SECONDS
    assert n.current() == ("output lost",) and n.has("audio")
    n.problem("audio", None)
    assert n.current() == () and not n.has("audio")


def test_problems_come_first_then_fresh_happenings_which_fade():
    now = Clock()
    n = Notices(now)
    n.happened("MIDI input 'Keys' appeared")
    n.problem("midi", "no MIDI ports")
    assert n.current() == ("no MIDI ports", "MIDI input 'Keys' appeared")
    now.t += EVENT_SECONDS + 0.1
    assert n.current() == ("no MIDI ports",)


def test_only_the_latest_happenings_are_kept():
    n = Notices(Clock(), keep_events=2)
    for k in range(3):
        n.happened(f"event {k}")
    assert n.current() == ("event 1", "event 2")


def test_a_confirmation_is_not_a_notice_and_is_brief():
    now = Clock()
    n = Notices(now)
    n.confirm("take saved: 2026-12-02_2300")
    assert n.current() == () and n.confirmation() == "take saved: 2026-12-02_2300"
    now.t += CONFIRM_SECONDS + 0.1
    assert n.confirmation() == ""
