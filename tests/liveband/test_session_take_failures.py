"""A take whose writing fails (a full disk) is told to the player while it fails, and no
longer once writing works again; what the failure cost is told once, as a happening."""

from __future__ import annotations

from liveband.session_notices import Notices
from liveband.session_takes import Takes

FULL = "recording to /takes/20261206-1200 failed: [Errno 28] No space left on device"
LOST = "the take lost 1.5 s of audio while writing failed ([Errno 28] No space left on device); silence ..."


class Take:
    """What the session reads of a take's recorder (engine.recorder.Recorder)."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.reports: list[str] = []

    def pop_reports(self) -> list[str]:
        reports, self.reports = self.reports, []
        return reports


def test_a_full_disk_is_a_problem_until_writing_works_again_then_its_cost_is_told_once():
    notices = Notices()
    takes = Takes(mixer=None, audio=None, notices=notices, sample_rate=48000, settle=lambda blocks: None)
    take = takes.recorder = Take()
    take.error = FULL
    takes.check()
    assert notices.current() == (FULL,)
    take.error = None  # the disk has room again
    take.reports = [LOST]
    takes.check()
    assert notices.current() == (LOST,)
    takes.check()
    assert notices.current() == (LOST,)
