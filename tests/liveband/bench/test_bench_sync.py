"""`liveband bench sync` on the real pieces, short: both sources report beats and the
error statistics (only loose bounds: the numbers are for the bench JSON, not a test)."""
from __future__ import annotations

import pytest

from liveband.bench.sync import bench_link, bench_midi_clock


@pytest.mark.timeout(180)
def test_sync_bench_reports_beat_errors_for_midi_clock_and_link(jack_server, liveband_home):
    for run in (bench_midi_clock, bench_link):
        r = run(6.0, 256, lambda m: None)
        assert "error" not in r, r
        assert r["beats"] >= 5, r
        assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r
        assert r["p50_ms"] < 40.0, r                 # locked: a beat is 500 ms at 120 BPM
        assert r["late_steps"] == 0 and "lock_vs_received" in r, r
        if run is bench_midi_clock:          # every tick's lateness as received, none lost
            late = r["clock_as_received_late_ms"]
            assert late["ticks"] >= 200 and late["lost"] == 0 and 0 <= late["p50"] <= late["max"], late


def test_a_clock_delay_out_of_range_is_one_line_before_anything_runs(capsys):
    from liveband.cli import main

    assert main(["bench", "sync", "--clock-delay", "500"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["liveband bench: --clock-delay must be 0-100 ms, got 500"], err
