"""`liveband bench sync` on the real pieces, short: both sources report beats and the
error statistics (only loose bounds: the numbers are for the bench JSON, not a test),
every beat of the run is measured as it is heard, and what happened is counted."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from liveband.bench.sync import bench_link, bench_midi_clock


@pytest.mark.timeout(180)
def test_sync_bench_reports_beat_errors_for_midi_clock_and_link(jack_server, liveband_home):
    for run in (bench_midi_clock, bench_link):
        r = run(6.0, 256, lambda m: None)
        assert "error" not in r, r
        # every beat after the first two seconds: 2 a second at 120 BPM
        assert 6 <= r["beats"] <= 9, r
        assert 0 <= r["p50_ms"] <= r["p99_ms"] <= r["max_ms"], r
        assert r["p50_ms"] < 40.0, r  # locked: a beat is 500 ms at 120 BPM
        assert r["late_steps"] == 0 and "lock_vs_received" in r, r
        assert r["band_starts"] == 1 and r["band_stops"] == 0 and r["audio_restarts"] == 0, r
        # MIDI clock counts from the song position; Link may renumber its bars once as the
        # peers' sessions merge (a whole-bar re-lock, the phase kept)
        assert r["relocks"] <= (1 if run is bench_link else 0), r
        # the band's own events: it started, and nothing stopped it (an audio stall of a
        # busy machine may come first; it is counted, not the band's doing)
        assert [e[1] for e in r["events"] if e[1] in ("band start", "band stop")] == ["band start"], r
        if run is bench_midi_clock:  # every tick's lateness as received, none lost
            late = r["clock_as_received_late_ms"]
            assert late["ticks"] >= 200 and late["lost"] == 0 and 0 <= late["p50"] <= late["max"], late


@pytest.mark.timeout(180)
def test_link_bench_measures_each_beat_as_heard_through_a_frozen_audio_server(jack_server, liveband_home):
    # 3 s into the run the audio server freezes for 4 s (as on a starved machine): the band
    # is 4 s late and re-locks two bars on; each beat is measured with the lock in force
    # for it, and the stall and the re-lock are counted
    server = jack_server._procs[0].pid

    def freeze() -> None:
        time.sleep(3.0)
        os.kill(server, signal.SIGSTOP)
        try:
            time.sleep(4.0)
        finally:
            os.kill(server, signal.SIGCONT)

    threads: list[threading.Thread] = []

    def log(msg: str) -> None:  # said just before the band starts
        threads.append(threading.Thread(target=freeze, daemon=True))
        threads[-1].start()

    r = bench_link(12.0, 256, log)
    threads[0].join()
    assert "error" not in r, r
    # one band, moved onto Link's bars once the stall is over (Link may also renumber its
    # bars by a whole bar as the peers' sessions merge at the start: that is a re-lock too)
    kinds = [e[1] for e in r["events"]]
    assert r["band_starts"] == 1 and "audio stall" in kinds, r["events"]
    assert "re-lock" in kinds[kinds.index("audio stall") :] and r["relocks"] <= 2, r["events"]
    assert r["audio_stalls"]["count"] >= 1 and r["audio_stalls"]["max_ms"] > 3500, r
    # 10 s after the first two, 4 of them silent: ~12 beats heard, nearly all on Link's
    assert 9 <= r["beats"] <= 14, r
    assert r["p50_ms"] < 40.0, r


def test_a_clock_delay_out_of_range_is_one_line_before_anything_runs(capsys):
    from liveband.cli import main

    assert main(["bench", "sync", "--clock-delay", "500"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["liveband bench: --clock-delay must be 0-100 ms, got 500"], err


def test_a_beat_counts_as_after_a_stall_only_within_a_beat_of_its_end():
    from liveband.bench.sync import stalled_beats

    # beats every 0.5 s; one 10 ms stall starting at 1.2 s, one at 3.0 s of 5 ms
    beats = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    hit = stalled_beats(beats, 0.5, [(1.2, 10.0), (3.0, 5.0)])
    assert list(hit) == [False, False, True, False, False, True, True, False]
    assert not stalled_beats(beats, 0.5, []).any()


def test_ticks_pair_with_their_sends_through_a_stall_burst_and_a_lost_tick():
    from liveband.bench.sync import pair_ticks

    per = 60.0 / (120.0 * 24)
    sent = [i * per for i in range(200)]
    arrived = [t + 0.003 for t in sent]
    for i in range(50, 56):  # a 120 ms stall: six ticks held back, delivered at once
        arrived[i] = sent[55] + 0.004
    del arrived[120]  # one tick never arrives
    late, lost = pair_ticks(sent, arrived, per)
    assert lost == 1 and late.size == 199
    assert abs(late[-1] - 3.0) < 1e-6 and abs(late[130] - 3.0) < 1e-6  # not 23.8 ms
    assert late[50] > 100.0  # the stall's first tick was late, not lost
    assert abs(sorted(late)[len(late) // 2] - 3.0) < 1e-6
