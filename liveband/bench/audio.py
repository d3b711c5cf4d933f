"""`liveband bench audio`: a live soak of the whole session against a software audio server.

For each block size (256, then 128 frames at 48 kHz) it starts a private PulseAudio null
sink, opens a ``liveband.session.Session`` (the band generator running: the shipped model
or, without one, the rule-based band; the microphone pitch tracker running on a hum fed
into the fake microphone when it can load; recording on), plays for ``seconds`` and
reports, as JSON:

- blocks, xruns (PortAudio output underflows), late mixer events;
- callback work time p50/p99/max in ms and as a fraction of the block's duration, over
  every block of the soak (the mixer's ring is drained every second);
- player-note-to-sound latency: a note is injected through the same path a MIDI note
  takes (``Session.key_event``: immediate event queue + melody event) about once a
  second, and the time from the injection to the moment its first non-zero sample
  reaches the DAC (PortAudio's DAC time for that block + the sample's offset) is
  measured: "non-zero" as the 16-bit sink plays it, at least one LSB (-90 dBFS), the
  "first non-zero output sample" the target is set on. The first sample above -60 dBFS
  (clearly audible, ~40 frames further into the piano's attack) is reported beside it.
  The band is muted *at the mixer* for this (the synth still renders every band voice,
  so the load is the same; muted, it stays below one LSB) so the probe note is the only
  thing above the threshold, and a probe is struck only after 0.15 s of digital silence
  (the previous one's release and reverb);
- the player latency the notes were stamped with (``AudioOut.player_latency``: notes are
  timed on arrival and sound that fixed delay later, so the spread of note-to-sound is
  the jitter) and each callback's start delay (PortAudio's call to our first line,
  mostly waiting for the GIL, not counted in the work time);
- the generator's late steps, per-step time and lead over the clock;
- ``arranger_chords`` (liveband.bench.chords, a session of its own): arranger-mode chords
  in to the band's first onset in them (p50/p99, on the same basis as MIDI-in to sound),
  and the step the band's chord stream takes each one up on (1 = the next 16th).

The soak starts once the audio stream is STREAM_WARMUP_S old (steady play: a new
PulseAudio stream's leads settle over its first ~15 s); real-time stall watchers
(liveband.bench.stallwatch), one per CPU, tell the xruns the machine caused from ours.

Runs on the machine it is on: the 2-core build machines are shared, so xruns there say
as much about the neighbours as about LiveBand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np

from liveband.bench import audio_report as report
from liveband.bench import chords, gil, stallwatch

PROBE_THRESHOLD = 1.0 / 32768  # one LSB of the 16-bit sink: the first non-zero sample
AUDIBLE_THRESHOLD = 1e-3  # -60 dBFS: the first clearly audible sample
STREAM_WARMUP_S = 20.0  # the stream's age when the soak starts (see soak)
PROBE_QUIET_S = 0.15  # digital silence before a probe (monitor onsets need 0.1 s)


class _Probe:
    """Mixer tap: once armed, finds the first sample at or after ``armed_from`` above
    PROBE_THRESHOLD (``hit``) and the first above AUDIBLE_THRESHOLD (``hit_audible``);
    tracks the last sample above PROBE_THRESHOLD (``last_loud``, on the audio clock) and
    the end of what it has seen (``upto``) so a probe starts from silence; forwards every
    block to the next tap (the recorder). Thread: audio (write), or the mixer's tap
    thread behind the C callback, which hands blocks on a few ms (under load, tens of ms)
    after they were rendered: hence ``armed_from`` and ``upto``, not the mixer's clock."""

    def __init__(self, nxt, max_block: int) -> None:
        self.next = nxt
        self.armed = False
        self.armed_from = 0
        self.upto = 0
        self.hit: int | None = None
        self.hit_audible: int | None = None
        self.last_loud = 0
        self._abs = np.zeros(max_block, np.float32)
        self._mask = np.zeros(max_block, bool)

    def write(self, block: np.ndarray, clock: int) -> bool:
        nxt = self.next
        if nxt is not None:
            nxt.write(block, clock)
        n = block.shape[0]
        a = self._abs[:n]
        np.abs(block[:, 0], out=a)
        m = self._mask[:n]
        np.greater(a, PROBE_THRESHOLD, out=m)
        if m.any():
            self.last_loud = clock + n - 1 - int(m[::-1].argmax())
            # samples rendered before the probe was armed never count as its hit
            lo = max(0, self.armed_from - clock)
            if self.armed and self.hit is None and lo < n and m[lo:].any():
                self.hit = clock + lo + int(m[lo:].argmax())
        if self.armed and self.hit is not None:
            np.greater(a, AUDIBLE_THRESHOLD, out=m)
            lo = max(0, self.hit - clock)
            if lo < n and m[lo:].any():
                self.hit_audible = clock + lo + int(m[lo:].argmax())
                self.armed = False
        self.upto = clock + n
        return True

    def quiet_since(self, clock: int) -> int:
        """Samples of digital silence before ``clock``. Thread: any."""
        return clock - self.last_loud


def _dac_line(audio) -> tuple[int, float] | None:
    """(clock, DAC time) of the last block the callback reported (what arrival_time uses)."""
    n = audio.timing.n
    if n == 0:
        return None
    last = audio.timing.rows(n - 1, n)
    return int(last.clock[0]), float(last.dac[0])


def timing_rows(audio, lo: int, hi: int) -> np.ndarray:
    """AudioOut's timing rows of blocks ``lo`` to ``hi - 1`` (those still in its ring) as
    rows of (clock, callback time, DAC time, lead, entry delay, xrun): shape (n, 6) float64."""
    r = audio.timing.rows(lo, hi)
    return np.stack([r.clock.astype(np.float64), r.time, r.dac, r.lead, r.entry, r.xrun.astype(np.float64)], axis=1)


def _hum_file(folder: str, sample_rate: int, seconds: float) -> str | None:
    """A hummed melody for the fake microphone (looped by the caller)."""
    try:
        from engine.wav import write_wav
        from liveband.bench.synth_hum import HumSpec, make_hum
    except ImportError:
        return None
    clip = make_hum(HumSpec(seed=7, sample_rate=sample_rate, n_notes=max(4, int(seconds / 0.6))))
    path = os.path.join(folder, "hum.wav")
    write_wav(path, clip.audio, sample_rate)
    return path


def _burners(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep a CPU busy (a pure-Python loop) beside the soak: the
    laptop on stage with other work running."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def soak(
    blocksize: int,
    seconds: float,
    *,
    use_mic: bool = True,
    checkpoint: str | None = None,
    log=None,
    notes_path: str | None = None,
    load: int = 0,
) -> dict:
    from engine import parts as P
    from engine.mixer_body import WORK_RING
    from engine.native import TIMING_RING
    from liveband.bench.softaudio import PrivateHome, SoftwareAudioServer
    from liveband.config import AudioConfig, EngineConfig
    from liveband.session import Session

    rate = 48000
    private_home = PrivateHome()
    home = private_home.path
    srv = SoftwareAudioServer("pulse").start()
    # a real-time stall watcher per CPU (liveband.bench.stallwatch), to tell an xrun the machine
    # caused (a CPU taken away) from one of ours; started before the session, so their
    # start-up (a fork, two interpreters) is not part of the soak
    watchers = stallwatch.start(home, seconds + 600.0)
    result: dict = {
        "blocksize": blocksize,
        "block_ms": round(1000.0 * blocksize / rate, 3),
        "busy_processes": int(load),
        "server_main_thread_realtime": srv.main_thread_realtime,
    }
    burners = _burners(load)
    try:
        cfg = EngineConfig(tempo=110.0, count_in_bars=0, checkpoint=checkpoint)
        with Session(cfg, AudioConfig(sample_rate=rate, blocksize=blocksize)) as s:
            if not s.audio.active:
                raise RuntimeError("; ".join(s.snapshot().notices))
            mic_player = None
            if use_mic:
                s.set_input_mode("mic")
                s.inputs.wait_mic(60)
            s.play()
            # the band renders but is silent at the mixer, so the probe note is measurable
            for part in P.BAND_PARTS:
                s.mixer.set_channel_mute(part.channel, True)
            # a piano on the player's channel: its attack is immediate, so the first sample
            # above the threshold is the note's start (the flute would add its slow attack)
            # the soak measures steady play: a new PulseAudio stream's leads shrink by
            # ~0.6 ms over its first ~15 s (and the player latency follows them down), so
            # probing starts once the stream is STREAM_WARMUP_S old
            time.sleep(max(0.6, STREAM_WARMUP_S - (time.monotonic() - s.audio.opened_at)))
            s.mixer.set_program(P.MELODY.channel, 0)
            probe = _Probe(s.mixer.tap, s.mixer.max_block)
            s.mixer.set_tap(probe)
            hum = _hum_file(home, rate, 30.0) if s.inputs.mic is not None else None
            result["pitch_tracker"] = s.pitch_tracker if s.inputs.mic is not None else None

            # the null sink's monitor: a sample-exact record of what the sink played, on the
            # sink's own steady clock (an independent check of the DAC-time arithmetic)
            monitor_wav = os.path.join(home, "monitor.wav")
            monitor = srv.record_output(monitor_wav)
            work, frames, entry, blocks_log = [], [], [], []
            read_upto = s.mixer.blocks
            entry_upto = s.audio.timing.n
            # the timing ring as the soak starts (the stream's settling)
            blocks_before = timing_rows(s.audio, 0, entry_upto)
            opened_at = s.audio.opened_at
            xruns0, late0 = s.mixer.xruns, s.mixer.late_events
            gil_events: list = []
            if os.environ.get("LIVEBAND_BENCH_GIL"):  # where the threads are at each late callback
                s.audio.slow_start_hook = gil.holder_probe(gil_events)
            t_start = time.monotonic()
            latencies, latencies_audible, beyond_fixed, notes = [], [], [], []
            next_probe = t_start + 1.0
            next_drain = t_start + 1.0
            next_log = t_start + 30.0
            while time.monotonic() - t_start < seconds:
                now = time.monotonic()
                if hum is not None and (mic_player is None or mic_player.poll() is not None):
                    mic_player = srv.play_into_mic(hum)
                if now >= next_drain:  # keep every block's work time
                    b = s.mixer.blocks
                    lo = max(read_upto, b - WORK_RING + 1)
                    idx = np.arange(lo, b) & (WORK_RING - 1)
                    work.append(s.mixer.work_ns[idx].copy())
                    frames.append(s.mixer.work_frames[idx].copy())
                    read_upto = b
                    n = s.audio.timing.n
                    lo = max(entry_upto, n - TIMING_RING + 1)
                    rows = timing_rows(s.audio, lo, n)
                    entry.append(rows[:, 4].copy())
                    blocks_log.append(rows)
                    entry_upto = n
                    next_drain = now + 1.0
                if now >= next_probe and probe.quiet_since(probe.upto) > PROBE_QUIET_S * rate:
                    probe.armed_from = s.mixer.clock
                    probe.armed = True
                    xr_before, late_before = s.mixer.xruns, s.mixer.late_events
                    line_before = _dac_line(s.audio)
                    t0 = time.monotonic()
                    s.key_event(84, True, 110)
                    returned_at = time.monotonic()
                    stamp = s.inputs.key_q.last_time
                    stamped_at = s.audio.last_stamp_time  # before the note-off re-stamps
                    fixed = s.audio.player_latency()  # the delay this note was timed with
                    end = t0 + 0.5
                    while probe.hit_audible is None and time.monotonic() < end:
                        time.sleep(0.0005)
                    s.key_event(84, False)
                    if probe.hit is not None and probe.hit_audible is not None:
                        blk = s.audio.block_at(probe.hit)
                        blk_a = s.audio.block_at(probe.hit_audible)
                        if blk is not None and blk_a is not None:
                            c, _, dac = blk
                            latencies.append(1000.0 * (dac + (probe.hit - c) / rate - t0))
                            latencies_audible.append(1000.0 * (blk_a[2] + (probe.hit_audible - blk_a[0]) / rate - t0))
                            beyond_fixed.append(latencies[-1] - 1000.0 * fixed if fixed else float("nan"))
                            notes.append(
                                report.note_record(
                                    s,
                                    t0,
                                    stamp,
                                    stamped_at,
                                    fixed,
                                    probe.hit,
                                    blk,
                                    line_before,
                                    s.mixer.xruns - xr_before,
                                    s.mixer.late_events - late_before,
                                    t_start,
                                    rate,
                                    returned_at,
                                )
                            )
                            notes[-1]["t0"], notes[-1]["hit"] = t0, int(probe.hit)
                    probe.armed = False
                    probe.hit = probe.hit_audible = None
                    next_probe = time.monotonic() + 0.6
                if log and now >= next_log:
                    log(
                        f"  {blocksize}: {now - t_start:5.0f} s, xruns {s.mixer.xruns - xruns0}, "
                        f"probes {len(latencies)}"
                    )
                    next_log = now + 30.0
                time.sleep(0.01)
            elapsed = time.monotonic() - t_start
            gen = s.generator
            m = gen.metrics() if gen is not None else None
            xruns = s.mixer.xruns - xruns0
            late = s.mixer.late_events - late0
            player_latency = s.audio.player_latency()
            s.audio.slow_start_hook = None
            snap = s.snapshot()
            s.stop()
            monitor.terminate()
            monitor.wait(timeout=10)
            if mic_player is not None and mic_player.poll() is None:
                mic_player.terminate()
        stalls, watch_rt = stallwatch.collect(watchers, t_start, elapsed)  # the soak's
        w = np.concatenate(work).astype(np.float64) / 1e6 if work else np.zeros(0)
        fr = np.concatenate(frames).astype(np.float64) if frames else np.zeros(0)
        block_load = w / (fr * 1000.0 / rate) if w.size else w
        blocks = np.concatenate(blocks_log) if blocks_log else np.zeros((0, 6))
        lat = np.asarray(latencies)
        fixed_ms = np.asarray([n["player_latency_ms"] or np.nan for n in notes])
        beyond_fixed = list(lat - fixed_ms)
        monitor_check = report.monitor_check(monitor_wav, notes, rate)
        xrun_causes = report.xrun_causes(blocks, blocksize / rate)
        ent = np.concatenate(entry) if entry else np.zeros(0)
        ent = 1000.0 * (ent - ent.min()) if ent.size else ent
        result.update(
            {
                "seconds": round(elapsed, 1),
                "blocks": int(w.size),
                "xruns": int(xruns),
                "xruns_per_minute": round(60.0 * xruns / max(elapsed, 1e-9), 2),
                "late_mixer_events": int(late),
                # what came before each xrun (see _xrun_causes)
                "xrun_causes": xrun_causes,
                "stream_restarts": int(s.audio.restarts),
                "stream_age_at_start_s": round(t_start - opened_at, 1),
                # real-time watchers that woke > 3 ms late (their CPU ran nothing of ours),
                # and the xruns whose silent stretch such a stall overlapped
                "machine_stalls": report.stall_summary(stalls, watch_rt),
                "xruns_vs_machine_stalls": report.xruns_vs_stalls(
                    blocks, stalls, snap.audio_latency_ms / 1000.0 + blocksize / rate
                ),
                "callback_realtime": bool(s.audio.realtime),
                # "c": engine/native's callback, which never waits for the GIL; "python": the fallback
                "callback": "c" if s.mixer.native else "python",
                "server_client_threads_realtime": int(s.audio.io_threads_realtime),
                "reported_output_latency_ms": round(snap.audio_latency_ms, 2),
                "work_ms": report.percentiles(w),
                "work_fraction_of_block": report.percentiles(block_load),
                "work_p99_below_30pct": bool(block_load.size and np.percentile(block_load, 99) < 0.30),
                "note_to_sound_ms": {
                    **report.percentiles(lat),
                    "jitter_p99_minus_p1": round(float(np.percentile(lat, 99) - np.percentile(lat, 1)), 3)
                    if lat.size
                    else None,
                    "std": round(float(lat.std()), 3) if lat.size else None,
                },
                "note_to_sound_minus_output_latency_ms": report.percentiles(lat - snap.audio_latency_ms)
                if lat.size
                else None,
                # the same to the first sample above -60 dBFS (further into the piano's attack)
                "note_to_sound_60dbfs_ms": report.spread(latencies_audible),
                "note_to_sound_60dbfs_minus_output_latency_ms": report.percentiles(
                    np.asarray(latencies_audible) - snap.audio_latency_ms
                )
                if latencies_audible
                else None,
                # independent of PortAudio's DAC times: the notes' onsets in the null sink's
                # monitor recording against their key_event times (a line fitted through
                # all: the residual spread is the jitter as played)
                "monitor_check": monitor_check,
                # the fixed arrival-to-DAC delay player notes were scheduled with (measured
                # from the stream's lead over the DAC, see AudioOut.player_latency)
                "player_latency_ms": round(1000.0 * player_latency, 3) if player_latency else None,
                "player_latency_ms_over_notes": report.spread(
                    [n["player_latency_ms"] for n in notes if n["player_latency_ms"]]
                ),
                # each note's latency minus the fixed delay it was timed with: the synth-period
                # wait, the probe's attack to its first non-zero sample (6-38 frames) and
                # the DAC clock's wander; its
                # spread is the jitter left when the fixed delay itself does not move
                "note_to_sound_minus_player_latency_ms": report.spread(beyond_fixed),
                # how much later than the quickest one each callback started running Python
                # (PortAudio's call time to our first line: mostly waiting for the GIL)
                "callback_start_delay_ms": report.percentiles(ent),
                # each note's latency taken apart (see _note_record): the DAC line moving
                # between stamping and rendering, and the synth's wait after the stamp
                "note_aim_error_ms": report.spread([n["aim_error_ms"] for n in notes if "aim_error_ms" in n]),
                # how long after the key_event call the stamp was taken (our own Python path:
                # a GIL wait there moves the note as much)
                "note_stamp_delay_ms": report.spread([n["stamp_delay_ms"] for n in notes if "stamp_delay_ms" in n]),
                # from that stamp to key_event's return (the push is in between): a late note
                # whose value is long lost its thread there, after its clock read
                "note_stamp_to_return_ms": report.spread(
                    [n["stamp_to_return_ms"] for n in notes if "stamp_to_return_ms" in n]
                ),
                "late_notes_stamp_to_return_ms": [n.get("stamp_to_return_ms") for n in notes if n["late"]],
                "note_synth_wait_frames": report.spread(
                    [n["synth_wait_frames"] for n in notes if "synth_wait_frames" in n]
                ),
                "notes_late": sum(1 for n in notes if n["late"]),
                "notes_unstamped": sum(1 for n in notes if not n["stamped"]),
                "notes_with_xrun": sum(1 for n in notes if n["xruns"]),
                "generator": None
                if m is None
                else {
                    "backend": m.backend,
                    "steps": m.steps,
                    "late_steps": m.late_steps,
                    "step_ms_p50": round(m.step_ms_p50, 3),
                    "step_ms_p99": round(m.step_ms_p99, 3),
                    "lead_ms_min": round(m.lead_ms_min, 1),
                },
            }
        )
        if os.environ.get("LIVEBAND_BENCH_GIL"):
            result["slow_callback_starts"] = gil.summary(gil_events)
        if notes_path:
            with open(notes_path, "w") as f:
                json.dump(
                    {
                        "blocksize": blocksize,
                        "notes": notes,
                        "blocks": blocks.tolist(),
                        "blocks_before": blocks_before.tolist(),
                        "opened_at": opened_at,
                        "slow_callback_starts": gil_events,
                    },
                    f,
                )
        return result
    finally:
        for proc in burners:
            proc.kill()
            proc.wait()
        for proc, _ in watchers:
            if proc.poll() is None:
                proc.kill()
        srv.stop()
        private_home.close()


def main(args) -> int:
    if (getattr(args, "load", 0) or 0) < 0:
        from liveband.cli import UserError

        raise UserError(f"--load must be 0 or more busy processes, got {args.load}")
    quick = bool(getattr(args, "quick", False))
    seconds = getattr(args, "seconds", None) or (20.0 if quick else 600.0)
    sizes = [args.blocksize] if getattr(args, "blocksize", None) else [256, 128]

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    out: dict[str, Any] = {
        "bench": "audio",
        "server": "pulseaudio null sink (SoftwareAudioServer)",
        "sample_rate": 48000,
        "seconds_per_blocksize": seconds,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "probe": "Session.key_event (the MIDI-in path after rtmidi) -> first non-zero sample (>= 1 LSB of "
        "16 bits) at the DAC; note_to_sound_60dbfs_ms: to the first sample above -60 dBFS",
        "runs": [],
    }
    notes = os.environ.get("LIVEBAND_BENCH_NOTES")  # per-note / per-block timing dump (JSON)
    for bs in sizes:
        log(f"bench audio: {bs} frames for {seconds:g} s")
        out["runs"].append(
            soak(
                bs,
                seconds,
                checkpoint=getattr(args, "checkpoint", None),
                log=log,
                load=int(getattr(args, "load", 0) or 0),
                notes_path=f"{notes}.{bs}.json" if notes else None,
            )
        )
        # beside MIDI-in to sound: arranger chords in to the band's first onset in them
        log(f"bench audio: {bs} frames, arranger chords")
        out["runs"][-1]["arranger_chords"] = chords.run(
            bs, chords=12 if quick else 40, checkpoint=getattr(args, "checkpoint", None), log=log
        )
    out["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))
    return 0
