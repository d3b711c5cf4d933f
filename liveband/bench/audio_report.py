"""`liveband bench audio`'s report: each probe note's timing taken apart, the monitor
recording's onsets against the notes, the xruns sorted by cause and against the machine's
stalls, and the percentile summaries (liveband.bench.audio runs the soak that feeds them;
liveband.bench.gil names the GIL holders at late callbacks)."""

from __future__ import annotations

import numpy as np

from engine.wav import read_wav


def note_record(
    s, t0, stamp, stamped_at, fixed, hit, blk, line_before, xruns, late, t_start, rate, returned_at: float = 0.0
) -> dict:
    """One probe note's timing, taken apart: where it was stamped, where the stamped
    sample really went out (DAC time of the block that rendered it), the synth's wait."""
    from engine.events import IMMEDIATE

    c, _, dac = blk
    rec = {
        "t": round(t0 - t_start, 3),
        "latency_ms": round(1000.0 * (dac + (hit - c) / rate - t0), 3),
        "player_latency_ms": round(1000.0 * fixed, 3) if fixed else None,
        "stamped": stamp != IMMEDIATE,
        "xruns": int(xruns),
        "late": int(late),
    }
    if stamp != IMMEDIATE:
        rec["synth_wait_frames"] = int(hit - stamp)
        sb = s.audio.block_at(stamp)
        if sb is not None and fixed:
            # DAC time of the stamped sample by the block that rendered it, minus the
            # key_event time + the fixed delay it was aimed at: the DAC line moving under
            # the stamp, and the wait between key_event and the stamp
            rec["aim_error_ms"] = round(1000.0 * (sb[2] + (stamp - sb[0]) / rate - (t0 + fixed)), 3)
        if stamped_at >= t0:
            rec["stamp_delay_ms"] = round(1000.0 * (stamped_at - t0), 3)
            if returned_at >= stamped_at:
                # the push came before key_event returned: a late note with a long one
                # lost its thread (the GIL) between the stamp and the push
                rec["stamp_to_return_ms"] = round(1000.0 * (returned_at - stamped_at), 3)
        if line_before is not None:
            rec["stamp_ahead_of_line_ms"] = round(1000.0 * ((stamp - line_before[0]) / rate), 3)
    return rec


def monitor_check(path: str, notes: list[dict], rate: int) -> dict:
    """Onsets (first sample of 2 LSB or more after 0.1 s below) in the monitor
    recording, matched to the probe notes, and a line fitted through (t0, onset time):
    the residuals' spread is the note-to-sound jitter as the sink played it."""
    try:
        audio, _ = read_wav(path)
    except (OSError, ValueError) as exc:
        return {"error": f"monitor recording unreadable: {exc}"}
    x = np.rint(audio * 32768.0).astype(np.int32)  # the sink's 16-bit steps
    # >= 2 LSB: the muted band's residue (below one LSB as floats) rounds to +-1 now and then
    above = np.flatnonzero(np.abs(x[:, 0]) > 1)
    if above.size == 0 or not notes:
        return {"n": 0}
    gaps = np.diff(above) > rate // 10
    onsets = np.concatenate(([above[0]], above[1:][gaps])) / rate
    t0 = np.asarray([n["t0"] for n in notes])
    # align on the first note, then pair every note with the onset nearest its prediction
    # (following the sink's clock, which runs hundreds of ppm off the monotonic clock)
    guess = onsets[0] - t0[0]
    pairs = []
    for t in t0:
        k = int(np.argmin(np.abs(onsets - (t + guess))))
        if abs(onsets[k] - (t + guess)) < 0.03:
            pairs.append((t, onsets[k]))
            guess = onsets[k] - t
    if len(pairs) < 10:
        return {"n": len(pairs), "onsets": int(onsets.size)}
    a = np.asarray(pairs)
    fit = np.polyfit(a[:, 0], a[:, 1], 1)
    res = 1000.0 * (a[:, 1] - np.polyval(fit, a[:, 0]))
    # an xrun shifts every later onset (the sink played silence meanwhile): measure each
    # note against the median of its 11 neighbours, so a step counts once, not forever
    half = 5
    local = np.asarray([res[i] - np.median(res[max(0, i - half) : i + half + 1]) for i in range(res.size)])
    return {
        "notes_matched": len(pairs),
        "onsets": int(onsets.size),
        "sink_clock_vs_monotonic_ppm": round(1e6 * (fit[0] - 1.0), 1),
        "residual_ms": spread(local),
        "residual_to_one_line_ms": spread(res),
    }


def xrun_causes(blocks: np.ndarray, block_s: float) -> dict:
    """Sort the xruns by what preceded them, from the per-block log:

    - ``gil``: one of the two callbacks before it (or its own) started running Python
      more than 2 ms after PortAudio called it (waiting for the GIL, held by another of
      our threads that the scheduler had put aside);
    - ``no_callback``: no GIL wait, but PortAudio called us more than 2 blocks after the
      previous callback (its thread was not woken: the server or the client library's
      I/O thread was late);
    - ``server``: callbacks on time and prompt, yet the server ran dry (it, or the
      client's I/O thread moving our data to it, was starved).
    """
    if blocks.shape[0] == 0:
        return {}
    t, ent, xr = blocks[:, 1], blocks[:, 4], blocks[:, 5]
    ent = 1000.0 * (ent - ent.min())
    out = {"gil": 0, "no_callback": 0, "server": 0}
    for j in np.flatnonzero(xr):
        lo = max(0, j - 2)
        if ent[lo : j + 1].max() > 2.0:
            out["gil"] += 1
        elif j > 0 and np.diff(t[lo : j + 1]).max(initial=0.0) > 2 * block_s:
            out["no_callback"] += 1
        else:
            out["server"] += 1
    return out


def xruns_vs_stalls(blocks: np.ndarray, stalls: list[list[tuple[float, float]]], buffer_s: float = 0.0) -> dict:
    """Each xrun against the machine stalls (liveband.bench.stallwatch: a real-time watcher per
    CPU that woke late, i.e. that CPU ran nothing of ours). An xrun's silent stretch is
    the time from three callbacks before it to its own, and at least ``buffer_s`` (the
    server's buffer plus a block: a stall that long before the flag can have emptied it;
    three small blocks are shorter than the buffer); it counts as ``on_any_cpu_stall``
    when a stall on some CPU overlaps that gap (a virtual CPU taken away while one of
    the audio threads ran on it: the guest cannot move that thread elsewhere) and as
    ``on_all_cpus_stall`` when every CPU had one (the whole machine stood still).
    ``stalls``: per CPU, (start on the monotonic clock in s, length in ms)."""
    t, xr = blocks[:, 1], blocks[:, 5]
    longest: list[float] = []
    out: dict = {"xruns": 0, "on_any_cpu_stall": 0, "on_all_cpus_stall": 0, "longest_stall_ms": longest}
    for j in np.flatnonzero(xr):
        if j == 0:
            continue
        # PortAudio flags the underflow a block or two after the late call: the stretch
        # from three callbacks before it
        lo, hi = min(t[max(0, j - 3)], t[j] - buffer_s), t[j]
        per_cpu = [max((g for a, g in cpu if a < hi and a + g / 1000.0 > lo), default=0.0) for cpu in stalls]
        out["xruns"] += 1
        out["on_any_cpu_stall"] += int(any(per_cpu))
        out["on_all_cpus_stall"] += int(bool(per_cpu) and all(per_cpu))
        longest.append(round(max(per_cpu, default=0.0), 1))
    return out


def stall_summary(stalls: list[list[tuple[float, float]]], realtime: list[bool]) -> dict:
    g = np.asarray([x for cpu in stalls for _, x in cpu], dtype=np.float64)
    return {
        "watchers_realtime": realtime,
        "per_cpu": [len(c) for c in stalls],
        "over_10ms": int((g > 10.0).sum()),
        "max_ms": round(float(g.max()), 1) if g.size else 0.0,
    }


def percentiles(x: list[float] | np.ndarray) -> dict:
    a = np.asarray(x, dtype=np.float64)
    if a.size == 0:
        return {"n": 0}
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 3),
        "p99": round(float(np.percentile(a, 99)), 3),
        "max": round(float(a.max()), 3),
    }


def spread(x: list[float] | np.ndarray) -> dict:
    a = np.asarray(x, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"n": 0}
    return {
        **percentiles(a),
        "p1": round(float(np.percentile(a, 1)), 3),
        "p99_minus_p1": round(float(np.percentile(a, 99) - np.percentile(a, 1)), 3),
    }
