"""Every test is in one tier (unit, checkpoint, realtime: tests/conftest.py), chosen from
what it uses, and the tiers run fast first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ["tests/models/test_runtime.py", "tests/liveband/test_session_live.py", "tests/engine/test_ring.py"]
TIERS = ("unit", "checkpoint", "realtime")
# collects FILES as `pytest` does and prints each test's tier markers, in run order
SHOW = f"""
import sys, pytest
class Show:
    def pytest_collection_finish(self, session):
        for item in session.items:
            tiers = [m.name for m in item.iter_markers() if m.name in {TIERS!r}]
            print("TIER", item.nodeid, ",".join(tiers), sep="\\t")
sys.exit(pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]], plugins=[Show()]))
"""


def test_each_test_is_in_one_tier_and_the_tiers_run_fast_first():
    out = subprocess.run([sys.executable, "-c", SHOW, *FILES], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split("\t")[1:] for line in out.stdout.splitlines() if line.startswith("TIER\t")]
    assert len(rows) > 10 and all(t in TIERS for _, t in rows), rows  # one tier each
    tier = dict(rows)
    assert tier["tests/models/test_runtime.py::test_shipped_checkpoint_loads_and_plays"] == "checkpoint"
    # a test on the PulseAudio fixture, and one that starts its own server
    assert (
        tier["tests/liveband/test_session_live.py::test_played_note_is_heard_within_one_block_plus_latency"]
        == "realtime"
    )
    assert (
        tier["tests/liveband/test_session_live.py::test_server_gone_mid_session_gives_notice_and_keeps_the_recording"]
        == "realtime"
    )
    assert {t for n, t in rows if n.startswith(("tests/engine/test_ring.py::", "tests/models/test_runtime.py::"))} >= {
        "unit"
    }
    ranks = [TIERS.index(t) for _, t in rows]
    assert ranks == sorted(ranks)  # unit first, realtime last
