"""`liveband bench sync`: how far the band's beat is from another device's beat (ms).

MIDI clock: a drum machine in another process (its own JACK MIDI client, clock at 120
BPM, then start) drives a session on a private JACK dummy server. For every beat, the
band's beat is where its sample reaches the DAC (the stream's DAC line, sampled every
20 ms, since a dropout moves it) and the device's is when it sent the beat's tick. Link:
an aalink peer in this process, the device's beat is where Link has it at that moment.

Each beat is measured while the run goes, as it is heard (``BeatWatch``): its DAC time,
with the lock's offset in force for it, against the device's beat then (Link: the peer's
beat read at once; Link peers agree on the phase within the quantum, not on the beat's
number, so the error is taken modulo a bar) or the time the device sent it (MIDI clock,
matched after the run). So a band restart, a re-lock or a dropout during the run is
measured as the player heard it, and counted.

Prints JSON: per source, |error| p50/p99/max over the beats after the first two seconds,
the signed mean (a transport's constant delay shows there), the lock's own error against
the clock as received, how late each tick arrived after it was sent (MIDI clock), xruns,
late steps, band starts, re-locks, audio stalls (moves of the DAC line, which a frozen
audio server makes without an xrun) and the first events with their times. Real-time
stall watchers (liveband.bench.stallwatch, one per CPU) run beside it: ``max_ms_without_a_stall``
is the largest error of the beats with no stall, of a CPU or of the audio server's time, in
the beat before them (a stall delays all that is scheduled; the lock corrects at the next
beat), beside ``max_ms_after_a_stall``.
``--seconds`` (default 60) per source;
``--clock-delay MS``: the MIDI clock delay setting (Setup's "delay"), default 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Callable

import numpy as np

SENDER = r"""
import os, sys, time, json
os.environ.setdefault("JACK_NO_START_SERVER", "1")
import rtmidi
part, bpm, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name="bench clock")
deadline = time.monotonic() + 10
while not [n for n in out.get_ports() if part in n]:
    if time.monotonic() > deadline:
        sys.exit("LiveBand's MIDI input not found")
    time.sleep(0.1)
out.open_port([i for i, n in enumerate(out.get_ports()) if part in n][0])
per = 60.0 / (bpm * 24)
t = time.monotonic()
beats = []
for i in range(int(round(1.0 / per))):          # a second of clock before start
    t += per
    while (d := t - time.monotonic()) > 0:
        time.sleep(d - 0.001 if d > 0.002 else 0)
    out.send_message([0xF8])
out.send_message([0xFA])
song = 0
ticks = []
end = time.monotonic() + seconds
while time.monotonic() < end:
    t += per
    while (d := t - time.monotonic()) > 0:
        time.sleep(d - 0.001 if d > 0.002 else 0)
    now = time.monotonic()
    out.send_message([0xF8])
    ticks.append(now)
    if song % 24 == 0:
        beats.append((song / 24, now))
    song += 1
print(json.dumps(ticks), flush=True)
print(json.dumps(beats), flush=True)     # no stop: the bench reads the band still playing
"""


class BeatWatch:
    """Every 20 ms on a thread: each band beat once it has reached the DAC, as
    ``(beat, DAC time, lock offset for it, device beat then or None)``; and what happened
    during the run: band starts (a new clock), re-locks, moves of the stream's DAC line.
    ``device_beat(t)``: the device's beat at monotonic time ``t``, read at once (Link)."""

    JUMP_S = 0.005

    def __init__(self, session, device_beat: Callable[[float], float] | None = None) -> None:
        self.session = session
        self.device_beat = device_beat
        self.beats: list[tuple[int, float, float, float | None]] = []
        self.events: list[tuple[float, str, str]] = []
        self.band_starts = 0
        self.relocks = 0
        self.line_jumps: list[float] = []  # ms, each DAC line move over JUMP_S
        self.jump_times: list[float] = []  # monotonic time each of them was seen
        self.t0 = time.monotonic()
        self._clock: Any = None
        self._next_q = 0
        self._relocks_seen = 0
        self._off: float | None = None
        self._peers = 0
        self.max_peers = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _event(self, kind: str, detail: str = "") -> None:
        self.events.append((round(time.monotonic() - self.t0, 2), kind, detail))

    def _run(self) -> None:
        s = self.session
        rate = s.sample_rate
        checked = time.monotonic()
        while not self._stop.wait(0.02):
            off = s.audio.dac_offset()
            now = time.monotonic()
            if off is None:
                continue
            if self._off is not None and abs(off - self._off) > self.JUMP_S:
                self.line_jumps.append((off - self._off) * 1000.0)
                # the line moved some time since the last look: a beat heard in between
                # already came after it
                self.jump_times.append(checked)
                self._event("audio stall", f"{(off - self._off) * 1000.0:+.1f} ms")
            self._off, checked = off, now
            link = s.sync.link
            peers = link.num_peers if link is not None else 0
            if peers != self._peers:
                # Link's session is every peer on the network: another app's play/stop
                # starts/stops this band too (other tests on a shared machine)
                self._peers = peers
                self.max_peers = max(self.max_peers, peers)
                self._event("link peers", str(peers))
            clock, lock = s.clock, s.sync.beat_lock
            if clock is None or lock is None:
                if self._clock is not None:
                    self._clock = None
                    self._event("band stop", "; ".join(s.snapshot().notices))
                continue
            if clock is not self._clock:
                self._clock, self._relocks_seen = clock, 0
                self._next_q = -(-clock.first_step // 4)
                self.band_starts += 1
                self._event("band start", f"offset {lock.offset:g}")
            if lock.relocks != self._relocks_seen:
                self.relocks += lock.relocks - self._relocks_seen
                self._relocks_seen = lock.relocks
                self._event("re-lock", f"offset {lock.offset:g}")
            heard = int((now - off) * rate)  # the sample at the DAC now
            while (smp := clock.beat_to_sample(self._next_q)) <= heard:
                q = self._next_q
                t = smp / rate + off
                dev = self.device_beat(t) if self.device_beat is not None else None
                self.beats.append((q, t, lock.offset_at(q * 4), dev))
                self._next_q += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1)

    def report(self) -> dict[str, Any]:
        jumps = np.abs(np.asarray(self.line_jumps, float))
        return {
            "band_starts": self.band_starts,
            "band_stops": sum(e[1] == "band stop" for e in self.events),
            "relocks": self.relocks,
            "link_peers_max": self.max_peers,
            "audio_stalls": {"count": int(jumps.size), "max_ms": round(float(jumps.max()), 1) if jumps.size else 0.0},
            "audio_restarts": int(self.session.audio.restarts),
            "notices_at_end": list(self.session.snapshot().notices),
            "events": [list(e) for e in self.events[:20]],
            "_audio_stalls": [(t, abs(ms)) for t, ms in zip(self.jump_times, self.line_jumps)],
        }


def stalled_beats(times: list[float], beat_s: float, stalls: list[tuple[float, float]]) -> np.ndarray:
    """Which beats (DAC times, monotonic s) had a stall (start s, length ms) in the beat
    before them: a CPU taken away or the audio server losing time delays everything
    already scheduled by its length, and the lock takes it out only at the next beat."""
    t = np.asarray(times, float)
    hit = np.zeros(t.size, bool)
    for start, ms in stalls:
        hit |= (t >= start) & (t <= start + ms / 1000.0 + beat_s)
    return hit


def pair_ticks(sent: list[float], arrivals: list[float], per: float) -> tuple[np.ndarray, int]:
    """How late each tick arrived after it was sent (ms), and how many never arrived.

    Ticks are paired in order, but a lost tick would pair every later arrival with the
    tick sent before it (a whole period "late" for the rest of the run): once four
    arrivals in a row, all but the first at the usual spacing ``per``, each came after the
    *next* tick was sent, one tick was lost. A stall's burst (ticks late, then on time
    again) is not at the usual spacing."""
    late: list[float] = []
    lost = run = 0
    for i, a in enumerate(arrivals):
        j = i + lost
        if j >= len(sent):
            break
        steady = i > 0 and abs(a - arrivals[i - 1] - per) < 0.3 * per
        run = run + 1 if j + 1 < len(sent) and a >= sent[j + 1] and (run == 0 or steady) else 0
        late.append(a - sent[j])
        if run >= 4:  # the run's ticks were the ones after a lost tick
            lost += 1
            for m in range(run):
                k = len(late) - 1 - m
                late[k] = arrivals[k] - sent[k + lost]
            run = 0
    return np.asarray(late, float) * 1000.0, lost


def summary(errors_ms: list[float], session, lock) -> dict:
    e = np.asarray(errors_ms, float)
    a = np.abs(e)
    m = session.generator.metrics() if session.generator is not None else None
    own = np.abs(np.asarray(list(lock.errors_ms)[2:], float)) if lock is not None else np.zeros(0)
    out: dict[str, Any] = {"beats": int(e.size)}
    if e.size:
        out.update(
            {
                "p50_ms": round(float(np.percentile(a, 50)), 3),
                "p99_ms": round(float(np.percentile(a, 99)), 3),
                "max_ms": round(float(a.max()), 3),
                "mean_signed_ms": round(float(e.mean()), 3),
                # a delay that grows over the run (a transport falling behind) shows here
                "mean_signed_ms_by_tenth": [round(float(x.mean()), 2) for x in np.array_split(e, 10) if x.size],
            }
        )
    if own.size:
        out["lock_vs_received"] = {
            "p50_ms": round(float(np.percentile(own, 50)), 3),
            "p99_ms": round(float(np.percentile(own, 99)), 3),
            "max_ms": round(float(own.max()), 3),
        }
    out["xruns"] = int(session.mixer.audible_xruns)
    out["late_steps"] = int(m.late_steps) if m else None
    return out


def bench_midi_clock(seconds: float, blocksize: int, log, delay_ms: float = 0.0) -> dict:
    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import VIRTUAL_IN_NAME, Session

    with Session(EngineConfig(tempo=100.0, count_in_bars=0), AudioConfig(blocksize=blocksize)) as s:
        if not s.audio.active:
            return {"error": "; ".join(s.snapshot().notices)}
        # each tick's arrival after the start, against when the sender sent it: how late
        # the clock is as received (the transport), apart from how the band follows it
        clock_in = s.sync.clock_in
        arrivals: list[float] = []
        feed = clock_in.feed

        def noted(kind: str, arrived: float, value: int = 0) -> None:
            if kind == "start":
                arrivals.clear()
            elif kind == "clock":
                arrivals.append(arrived)
            feed(kind, arrived, value)

        clock_in.feed = noted  # type: ignore[method-assign]  # a tap on the session's own clock input
        s.open_midi_input(VIRTUAL_IN_NAME)
        s.set_sync("midi clock")
        s.set_sync_delay(delay_ms)
        s.prepare(120)
        watch = BeatWatch(s)
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "sender.py")
            with open(script, "w") as f:
                f.write(SENDER)
            log(f"bench sync: MIDI clock at 120 BPM from another process for {seconds:g} s")
            proc = subprocess.run(
                [sys.executable, script, VIRTUAL_IN_NAME, "120", str(seconds)],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
        watch.stop()
        if proc.returncode != 0:
            return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "sender failed"}
        lines = proc.stdout.strip().splitlines()
        beats, sent = json.loads(lines[-1]), json.loads(lines[-2])
        lock = s.sync.beat_lock
        if not watch.beats:
            return {"error": "the band did not start on the clock's start", **watch.report()}
        sent_at = {int(round(p)): t for p, t in beats}
        t0 = beats[0][1] + 2.0 if beats else 0.0
        # band beat q sounds the clock's beat q + offset (the offset in force for it)
        timed = [
            (t, (t - sent_at[p]) * 1000.0)
            for q, t, off, _ in watch.beats
            if (p := int(round(q + off))) in sent_at and sent_at[p] >= t0
        ]
        result = {**summary([e for _, e in timed], s, lock), **watch.report(), "_timed": timed}
        sent = [x for x in sent if x <= sent[-1] - 0.1] if sent else []  # the last may be in flight
        late, lost = pair_ticks(sent, arrivals, 60.0 / (120.0 * 24))
        n = int(late.size)
        if n:
            result["clock_as_received_late_ms"] = {
                "ticks": n,
                "lost": lost,
                "lost_counted_in_by_the_band": int(clock_in.lost),
                "p50": round(float(np.percentile(late, 50)), 3),
                "p99": round(float(np.percentile(late, 99)), 3),
                "max": round(float(late.max()), 3),
                "mean_by_tenth": [round(float(x.mean()), 2) for x in np.array_split(late, 10) if x.size],
            }
        s.stop()
    return result


def bench_link(seconds: float, blocksize: int, log) -> dict:
    import asyncio

    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import Session

    try:
        import aalink
    except ImportError:
        return {"error": "aalink is not installed (pip install aalink)"}
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make():
        link = aalink.Link(120.0)
        link.quantum = 4
        link.enabled = True
        return link

    peer = asyncio.run_coroutine_threadsafe(make(), loop).result(5)
    try:
        with Session(EngineConfig(tempo=120.0, count_in_bars=0), AudioConfig(blocksize=blocksize)) as s:
            if not s.audio.active:
                return {"error": "; ".join(s.snapshot().notices)}
            s.set_sync("link")
            link = s.sync.link
            assert link is not None  # set_sync("link") raises when Link cannot start
            end = time.monotonic() + 10
            while link.num_peers < 1 and time.monotonic() < end:
                time.sleep(0.05)
            if link.num_peers < 1:
                return {"error": "the Link peers did not find each other in 10 s"}
            peer.tempo = 120.0
            s.prepare(120)

            def peer_beat(t: float) -> float:
                t1 = time.monotonic()
                beat = peer.beat
                t2 = time.monotonic()
                return beat + (t - (t1 + t2) / 2) * peer.tempo / 60.0

            watch = BeatWatch(s, peer_beat)
            log(f"bench sync: Ableton Link at 120 BPM for {seconds:g} s")
            s.play()
            time.sleep(seconds)
            watch.stop()
            lock = s.sync.beat_lock
            if not watch.beats:
                return {"error": "the band did not start with Link", **watch.report()}
            bar = 4.0  # Link's quantum: the peers agree on the phase within it
            t0 = watch.beats[0][1] + 2.0
            timed = [
                (t, ((q + off - dev + bar / 2) % bar - bar / 2) * 60000.0 / peer.tempo)
                for q, t, off, dev in watch.beats
                if t >= t0 and dev is not None
            ]
            result = {**summary([e for _, e in timed], s, lock), **watch.report(), "_timed": timed}
            s.stop()
    finally:
        peer.enabled = False
        loop.call_soon_threadsafe(loop.stop)
        thread.join(2)
    return result


def main(args) -> int:
    from liveband.bench import audio_report as report
    from liveband.bench import stallwatch
    from liveband.bench.softaudio import SoftwareAudioServer

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    seconds = getattr(args, "seconds", None) or (10.0 if getattr(args, "quick", False) else 60.0)
    blocksize = getattr(args, "blocksize", None) or 256
    delay = getattr(args, "clock_delay", None) or 0.0
    if not 0.0 <= delay <= 100.0:
        raise ValueError(f"--clock-delay must be 0-100 ms, got {delay:g}")
    result: dict = {
        "bench": "sync",
        "seconds": seconds,
        "blocksize": blocksize,
        "clock_delay_ms": delay,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    with tempfile.TemporaryDirectory() as tmp:
        # real-time stall watchers (one per CPU), started first so their start-up is not
        # measured: a beat off after the machine stalled is told apart from the lock's error
        watchers = stallwatch.start(tmp, 2 * seconds + 600.0)
        t_start = time.monotonic()
        try:
            with SoftwareAudioServer("jack", jack_period=blocksize):
                result["midi_clock"] = bench_midi_clock(seconds, blocksize, log, delay_ms=delay)
                result["link"] = bench_link(seconds, blocksize, log)
        finally:
            stalls, watch_rt = stallwatch.collect(watchers, t_start, time.monotonic() - t_start)
    result["machine_stalls"] = report.stall_summary(stalls, watch_rt)
    machine = [st for cpu in stalls for st in cpu]
    for key, beat_s in (("midi_clock", 0.5), ("link", 0.5)):  # both at 120 BPM
        r = result[key]
        timed = r.pop("_timed", [])
        audio = r.pop("_audio_stalls", [])
        if timed:
            errs = np.abs([e for _, e in timed])
            hit = stalled_beats([t for t, _ in timed], beat_s, machine + audio)
            clear = errs[~hit]
            r["beats_after_a_stall"] = int(hit.sum())
            r["max_ms_after_a_stall"] = round(float(errs[hit].max()), 3) if hit.any() else None
            # what no measured stall (of a CPU, or of the audio server's time) explains
            r["max_ms_without_a_stall"] = round(float(clear.max()), 3) if clear.size else None
            r["p99_ms_without_a_stall"] = round(float(np.percentile(clear, 99)), 3) if clear.size else None
            off = [
                (round(t - t_start, 2), round(float(e), 2))
                for (t, _), e, h in zip(timed, errs, hit)
                if not h and e > 2.0
            ]
            r["beats_over_2ms_without_a_stall"] = {"count": len(off), "first": off[:10]}
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=1))
    return 0
