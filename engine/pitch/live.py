"""HumTracker: audio blocks in (any rate, any channel count), melody events out.

The chain per block: sanitise (NaN/inf -> 0, counted), remove DC (one-pole high-pass
at 30 Hz), mix to mono, resample to 16 kHz, cut into 10 ms hops; per hop: tracker ->
(f0, confidence), level (dBFS over the last 20 ms), segmenter -> note events.

Clock: ``MelodyEvent.time`` is in samples of ``clock_rate`` on the *input* sample
counter (sample 0 = the first sample fed), shifted by ``clock_offset`` and minus the
input latency the stream reports, so the session can place events on its audio clock.
Offline, the same class runs over a file (``transcribe_wav``), so live and offline
transcription are one code path.

Thread: ``feed`` and ``finish`` from one thread (the pitch worker; a microphone's
callback only fills a ring buffer). ``poll`` may be called from another thread: events
pass through a deque, whose append/popleft are atomic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from scipy.signal import butter, lfilter

from engine.pitch.onset_net import FRAME, OnsetFrontEnd, OnsetNet
from engine.pitch.resample import StreamResampler
from engine.pitch.segmenter import TRACKER_DEFAULTS, NoteSegmenter, SegmenterConfig
from engine.pitch.tracker import HOP, TRACKER_RATE, PitchTracker, make_tracker
from engine.quantiser import MelodyEvent

PERIODICITY_WINDOW = 320  # 20 ms at 16 kHz
SAMPLE_LIMIT = 1e3  # input samples beyond +-this (full scale is 1) are clipped to it
OCTAVE_MARGIN = 0.15  # periodicity at twice the period must beat it by this to halve f0
# the tracker's f0 times 2 or 3 is taken when the newest audio repeats at that shorter
# period this well, and about as well as at the tracker's own (see HumTracker._refine)
SUBHARMONIC_PERIODICITY = 0.9
SUBHARMONIC_SLACK = 0.06
# a hop is voice-like only where the autocorrelation dips this far below its peak at the
# period between half the period and the period (see HumTracker._dips_before)
VALLEY_MARGIN = 0.3


def heard(events: list[MelodyEvent]) -> list[MelodyEvent]:
    """``events`` without the notes the segmenter took back: an early note it replaced
    or withdrew ends where it began (its note-off at its own onset time), so no listener
    hears it; a session may still have passed it on (see engine.pitch.segmenter)."""
    gone: set[int] = set()
    open_at: dict[int, int] = {}
    for i, ev in enumerate(events):
        if ev.on:
            open_at[ev.pitch] = i
        elif ev.pitch in open_at:
            k = open_at.pop(ev.pitch)
            if ev.time <= events[k].time:
                gone.update((k, i))
    return [ev for i, ev in enumerate(events) if i not in gone]


@dataclass
class HumStats:
    hops: int = 0
    nonfinite_samples: int = 0
    clipped_samples: int = 0
    level_db: float = -120.0  # last hop, dBFS
    peak_db: float = -120.0  # last block's sample peak, dBFS
    voiced: bool = False
    f0_hz: float = 0.0  # the tracker's own f0, last hop
    confidence: float = 0.0  # ... and its own confidence
    # the voice's pitch for display (a pitch line, a note name), last hop: the refined f0
    # the segmenter was handed, while a note sounds and the gate passes this hop on its
    # own; else 0. A note's last hops, held open by the gate's hysteresis, and its first,
    # before the onset rule has named it, can read a harmonic or a subharmonic of the voice
    pitch_hz: float = 0.0


class DcBlock:
    """The input's DC and rumble removed: a one-pole high-pass at ``cutoff_hz``
    (y[n] = x[n] - x[n-1] + a*y[n-1]), its state kept between blocks. Thread: one at a time."""

    def __init__(self, rate: int, cutoff_hz: float = 30.0) -> None:
        self._a = float(np.exp(-2 * np.pi * cutoff_hz / rate))
        self.reset()

    def reset(self) -> None:
        self._x = self._y = 0.0

    def process(self, x: np.ndarray) -> np.ndarray:
        """x: (n,) float32 -> (n,) float32."""
        if x.size == 0:
            return np.asarray(x, np.float32)
        y, _ = lfilter([1.0, -1.0], [1.0, -self._a], x, zi=np.array([self._y * self._a - self._x]))
        self._x = float(x[-1])
        self._y = float(y[-1])
        return y.astype(np.float32)


class HumTracker:
    """Streaming hum -> notes. See the module docstring for clock and threads."""

    def __init__(
        self,
        tracker: str | PitchTracker = "pesto",
        input_rate: int = TRACKER_RATE,
        channels: int = 1,
        segmenter: SegmenterConfig | None = None,
        clock_rate: int | None = None,
        clock_offset: int = 0,
        input_latency_s: float = 0.0,
        gain_db: float = 0.0,
        keep_frames: bool = False,
        use_periodicity: bool = True,
        keep_history: bool = True,
        onset_net: OnsetNet | bool = True,
        **tracker_kw,
    ) -> None:
        if input_rate < 4000 or input_rate > 384000:
            raise ValueError(f"unsupported input sample rate {input_rate} Hz")
        self.tracker: PitchTracker = make_tracker(tracker, **tracker_kw) if isinstance(tracker, str) else tracker
        name = getattr(self.tracker, "name", "pesto")
        self.seg_config = replace(
            segmenter or TRACKER_DEFAULTS.get(name, SegmenterConfig()),
            pitch_delay_hops=self.tracker.delay_samples / HOP,
        )
        self.keep_history = keep_history
        self.segmenter = NoteSegmenter(self.seg_config, keep_history)
        self.input_rate = int(input_rate)
        self.channels = int(channels)
        self.clock_rate = int(clock_rate or input_rate)
        self.clock_offset = int(clock_offset)
        self.input_latency_s = float(input_latency_s)
        self.gain = float(10 ** (gain_db / 20))
        self._resampler = StreamResampler(self.input_rate, TRACKER_RATE)
        self._hopbuf = np.zeros(HOP, np.float32)
        self._hopfill = 0
        self._recent = np.zeros(PERIODICITY_WINDOW + 2 * HOP, np.float32)  # newest 16 kHz audio
        self._recent_lp = np.zeros_like(self._recent)  # ... low-passed
        self._lp_b, self._lp_a = butter(2, 2000.0 / (TRACKER_RATE / 2))
        self._lp_z = np.zeros(2)
        self.use_periodicity = use_periodicity
        # the learned front end that names a note from its first 10-30 ms (onset_net;
        # docs/hum.md, hum29-hum30); False runs the rules alone
        self.onset_net: OnsetFrontEnd | None = (
            OnsetFrontEnd(onset_net if isinstance(onset_net, OnsetNet) else OnsetNet.load()) if onset_net else None
        )
        self._dc_block = DcBlock(self.input_rate)
        self.events: deque[MelodyEvent] = deque()
        self.stats = HumStats()
        self.samples_in = 0
        self.keep_frames = keep_frames
        # kept for benches only (keep_frames): per-hop (f0, conf, level) and each event
        # with the input sample count at the moment it was emitted
        self.frames: list[tuple[float, float, float]] = []
        self.emitted: list[tuple[MelodyEvent, int]] = []

    # -- clock -------------------------------------------------------------------------
    def _hop_to_clock(self, hop: float) -> int:
        """Input-clock time of the newest sample of a hop, latency-compensated (the
        resampler's delay, not its look-ahead: a look-ahead filter's outputs lie where
        their input did, they only come out later)."""
        t_s = (hop + 1) * HOP / TRACKER_RATE - self._resampler.delay_samples / self.input_rate
        t_s -= self.input_latency_s
        return self.clock_offset + int(round(t_s * self.clock_rate))

    def reset(self) -> None:
        """Forget all audio history and queued events (a new take); ``finish`` first to
        end an open note."""
        self.tracker.reset()
        self.segmenter.reset()
        self._resampler.reset()
        self._hopfill = 0
        self._recent[:] = 0
        self._recent_lp[:] = 0
        self._lp_z[:] = 0
        if self.onset_net is not None:
            self.onset_net.reset()
        self._dc_block.reset()
        self.samples_in = 0
        self.stats = HumStats()
        self.events.clear()
        self.frames.clear()
        self.emitted.clear()

    # -- input ---------------------------------------------------------------------------
    def feed(self, block: np.ndarray) -> list[MelodyEvent]:
        """block: (n,) or (n, channels) samples at input_rate, any float/int dtype.
        Returns the events this block produced (they are also queued for ``poll``)."""
        x = np.asarray(block)
        if np.issubdtype(x.dtype, np.integer):  # scaled before a stereo mix casts it
            x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
        if x.ndim == 2:
            x = x.astype(np.float32).mean(axis=1) if x.shape[1] > 1 else x[:, 0]
        x = np.asarray(x, np.float32).reshape(-1)
        if x.size == 0:
            return []
        self.samples_in += x.size
        mag = np.abs(x)
        peak = float(mag.max())
        if not np.isfinite(peak):
            # NaN or inf somewhere (the peak is then NaN/inf: one pass finds out)
            bad = ~np.isfinite(x)
            self.stats.nonfinite_samples += int(bad.sum())
            x = np.where(bad, 0.0, x).astype(np.float32)
            mag = np.abs(x)
            peak = float(mag.max())
        if peak > SAMPLE_LIMIT:
            # garbage from a broken driver: kept finite through the gain, the filters'
            # state and the level's squares (an overflow there stayed NaN for good)
            x = np.clip(x, -SAMPLE_LIMIT, SAMPLE_LIMIT)
            mag = np.abs(x)
            peak = SAMPLE_LIMIT
        if self.gain != 1.0:
            x = x * self.gain
            mag *= self.gain
            peak *= self.gain
        self.stats.clipped_samples += int(np.count_nonzero(mag >= 0.999))
        self.stats.peak_db = float(20 * np.log10(max(peak, 1e-6)))
        y = self._resampler.process(self._dc_block.process(x))
        new: list[MelodyEvent] = []
        i = 0
        while i < len(y):
            # fill up to the next 5 ms frame's end (the onset net's), or the hop's
            edge = HOP if self.onset_net is None or self._hopfill >= FRAME else FRAME
            take = min(edge - self._hopfill, len(y) - i)
            self._hopbuf[self._hopfill : self._hopfill + take] = y[i : i + take]
            self._hopfill += take
            i += take
            if self._hopfill == HOP:
                self._hopfill = 0
                new.extend(self._hop(self._hopbuf))
                if self.onset_net is not None:  # after the hop's own step: the rules speak first
                    new.extend(self._net_frame(self._hopbuf[FRAME:], 0.0))
            elif self._hopfill == FRAME and self.onset_net is not None:
                new.extend(self._net_frame(self._hopbuf[:FRAME], 0.5))
        return new

    def _net_frame(self, frame: np.ndarray, past: float) -> list[MelodyEvent]:
        """One 5 ms frame through the onset net. ``past``: where its end lies, in hops
        after the end of the hop the segmenter stepped last (0 or 0.5)."""
        assert self.onset_net is not None
        named = self.onset_net.push(frame)
        if named is None:
            return []
        pitch, prob, frames = named
        return self._publish(self.segmenter.hint(pitch, self.segmenter.hop + past, prob, frames * FRAME / HOP))

    def _refine(self, f0: float) -> tuple[float, float, bool]:
        """-> (refined f0, periodicity, voice-like) from the newest 20 ms of audio.

        The tracker settles the octave and the rough pitch; the autocorrelation of the
        newest audio, searched within +-6 % of the tracker's period and interpolated
        parabolically, gives a pitch that is both finer (PESTO reports in 1/3-semitone
        steps) and more current (the models' windows are centred 28-64 ms in the past,
        which keeps a note's scoop in view for long). Periodicity (the normalised
        autocorrelation peak) is 0-0.25 for noise and 0.85-1 for a steady voice. The
        signal is low-passed at 2 kHz first: above that a hum is mostly breath noise,
        which would blur the peak (high notes especially). Voice-like: the audio's
        autocorrelation dips between half the period and the period (``_dips_before``);
        True where there is nothing to test.
        """
        e = self._recent_lp
        n = PERIODICITY_WINDOW
        a = e[-n:]
        ea = float(np.dot(a, a))
        f0 = self._subharmonic(e, a, ea, f0)
        if not 60.0 <= f0 <= 1100.0:
            return f0, 0.0, True
        period = TRACKER_RATE / f0
        lo = max(2, int(np.floor(period / 1.06)))
        hi = min(len(e) - n - 1, int(np.ceil(period * 1.06)))
        if ea <= 0 or hi <= lo:
            return f0, 0.0, True
        lags = np.arange(lo - 1, hi + 2)
        r = self._acf(e, a, ea, lo - 1, hi + 1)
        k = int(np.argmax(r[1:-1])) + 1
        peak = float(r[k])
        y0, y1, y2 = r[k - 1], r[k], r[k + 1]
        d = y0 - 2 * y1 + y2
        shift = 0.5 * (y0 - y2) / d if d < 0 else 0.0
        lag = lags[k] + float(np.clip(shift, -0.5, 0.5))
        below = self._octave_below(e, a, ea, lag, peak)
        if peak < 0.6:
            f, per = (f0 / 2, below) if below else (f0, max(peak, 0.0))
        else:
            f, per = (TRACKER_RATE / (2 * lag), below) if below else (TRACKER_RATE / lag, peak)
        return f, per, not 60.0 <= f <= 1100.0 or self._dips_before(e, a, ea, TRACKER_RATE / f)

    @staticmethod
    def _dips_before(e: np.ndarray, a: np.ndarray, ea: float, period: float) -> bool:
        """Does the autocorrelation of the newest window ``a`` of ``e`` fall VALLEY_MARGIN
        below its peak at ``period`` somewhere between half the period and 0.9 of it? A
        voice's does (a sine's reaches -1 at half its period), even in noise. Low-frequency
        noise (wind on the capsule, traffic or air-conditioning rumble) does not: its
        autocorrelation only decays with the lag, and PESTO's voicing as well as the
        periodicity took it for a low voice (brown noise: 11-19 notes in 10 s)."""
        n = len(a)
        lo, hi = max(2, int(0.5 * period)), int(np.ceil(period)) + 1
        if hi > len(e) - n or hi - lo <= 3:
            return True  # no room to look: leave it be
        r = HumTracker._acf(e, a, ea, lo, hi)
        lags = np.arange(lo, hi + 1)
        peak = float(r[lags >= np.floor(period) - 1].max())
        return float(r[lags <= 0.9 * period].min()) <= peak - VALLEY_MARGIN

    def _subharmonic(self, e: np.ndarray, a: np.ndarray, ea: float, f0: float) -> float:
        """``f0`` times 3 or 2 where the tracker named a subharmonic of the voice, else f0.

        PESTO's window is centred 28 ms back, so on a note's first hops it has heard
        little of the voice and names a pitch an octave or an octave and a fifth low
        about one time in ten (sung dev clips: 37 of 370 notes after a gap, first
        voiced hop). The newest 20 ms then repeat at the true period as well as at the
        named one (a multiple of it): the shortest such period is the voice's. A voice
        whose fundamental a microphone removed still has odd harmonics at its own
        period, so it repeats much less well at half of it (``_octave_below``). ``a``: the
        newest window of ``e``, ``ea`` its energy."""
        if ea <= 0 or not 20.0 <= f0 <= 600.0:
            return f0
        own = self._periodicity_near(e, a, ea, TRACKER_RATE / f0) if f0 >= 60.0 else 0.0
        for mult in (3, 2):
            if f0 * mult > 1100.0:
                continue
            r = self._periodicity_near(e, a, ea, TRACKER_RATE / (f0 * mult))
            if r >= SUBHARMONIC_PERIODICITY and r >= own - SUBHARMONIC_SLACK:
                return f0 * mult
        return f0

    @staticmethod
    def _periodicity_near(e: np.ndarray, a: np.ndarray, ea: float, period: float, tol: float = 0.03) -> float:
        """The best normalised autocorrelation of the newest window ``a`` at lags within
        ``tol`` of ``period`` (0 where such lags do not fit the buffer)."""
        lo, hi = max(2, int(np.floor(period / (1 + tol)))), min(len(e) - len(a), int(np.ceil(period * (1 + tol))))
        return HumTracker._periodicity_in(e, a, ea, lo, hi)

    @staticmethod
    def _periodicity_in(e: np.ndarray, a: np.ndarray, ea: float, lo: int, hi: int) -> float:
        """The best normalised autocorrelation (>= 0) of the newest window ``a`` of ``e``
        with ``e`` delayed by lags ``lo`` .. ``hi`` (0 when hi < lo)."""
        if hi < lo:
            return 0.0
        return float(max(0.0, HumTracker._acf(e, a, ea, lo, hi).max()))

    @staticmethod
    def _acf(e: np.ndarray, a: np.ndarray, ea: float, lo: int, hi: int) -> np.ndarray:
        """(hi - lo + 1,): the normalised autocorrelation of the newest window ``a`` of
        ``e`` (energy ``ea``) with ``e`` delayed by lags lo, lo + 1, ..., hi."""
        n = len(a)
        # (hi - lo + 1, n): the window delayed by lags lo ... hi, a view (as
        # sliding_window_view makes it, without its checks: called ~5 times a hop)
        seg = e[len(e) - n - hi : len(e) - lo]
        step = seg.strides[0]
        win = np.lib.stride_tricks.as_strided(seg, (hi - lo + 1, n), (step, step), writeable=False)[::-1]
        return (win @ a) / (np.sqrt(ea * np.einsum("ij,ij->i", win, win)) + 1e-12)

    def _octave_below(self, e: np.ndarray, a: np.ndarray, ea: float, lag: float, peak: float) -> float:
        """The periodicity at twice ``lag`` when it beats ``peak`` by OCTAVE_MARGIN, else 0.

        A voice whose fundamental a small microphone or a band-pass has taken away still
        repeats once per true period, but its odd harmonics cancel at half that period:
        the tracker then names the octave above, and the autocorrelation shows it."""
        lo, hi = int(np.floor(2 * lag * 0.98)), int(np.ceil(2 * lag * 1.02))
        if hi > len(e) - len(a) or lo < 2:
            return 0.0
        best = self._periodicity_in(e, a, ea, lo, hi)
        return best if best >= peak + OCTAVE_MARGIN and best >= 0.6 else 0.0

    def _hop(self, hop: np.ndarray) -> list[MelodyEvent]:
        f0, conf = self.tracker.process(hop)
        self._recent[:-HOP] = self._recent[HOP:]
        self._recent[-HOP:] = hop
        self._recent_lp[:-HOP] = self._recent_lp[HOP:]
        self._recent_lp[-HOP:], self._lp_z = lfilter(self._lp_b, self._lp_a, hop, zi=self._lp_z)
        level = float(10 * np.log10(float(np.mean(self._recent[-2 * HOP :] ** 2)) + 1e-12))
        st = self.stats
        st.f0_hz, st.confidence = f0, conf
        if self.keep_frames:
            self.frames.append((f0, conf, level))  # the tracker's own output
        if self.use_periodicity:
            # the models' own confidences are crude on hums (PESTO's voicing head gives
            # 0.2-0.3 on a clean "oo"); periodicity at the detected pitch backs them up
            f0, per, voice_like = self._refine(f0)
            # low-frequency noise that shows no period is no voice, whatever the model says
            conf = max(conf, per) if voice_like else 0.0
        st.hops += 1
        st.level_db = level
        evs = self.segmenter.step(f0, conf, level)
        st.voiced = self.segmenter.voiced
        held = self.segmenter.note is not None and self.segmenter.hop_voiced
        st.pitch_hz = float(f0) if held else 0.0
        return self._publish(evs)

    def _publish(self, evs) -> list[MelodyEvent]:
        out = []
        for kind, pitch, hop, vel in evs:
            ev = MelodyEvent(pitch=int(pitch), on=kind == "on", time=self._hop_to_clock(hop), velocity=int(vel))
            self.events.append(ev)
            if self.keep_frames:
                self.emitted.append((ev, self.samples_in))
            out.append(ev)
        return out

    def finish(self) -> list[MelodyEvent]:
        """End of input: close any open note."""
        return self._publish(self.segmenter.finish())

    def notice(self, invalid: bool = True) -> str | None:
        """A one-line hint about the input, or None. ``invalid=False`` leaves out the
        (cumulative) count of NaN/inf samples, for a caller that reports only new ones."""
        st = self.stats
        if invalid and st.nonfinite_samples:
            return f"{st.nonfinite_samples} invalid (NaN/inf) input samples were replaced by silence"
        if st.peak_db >= -0.1 and st.clipped_samples:
            return "the input clips; lower the input gain"
        if self.segmenter.talking:
            return "that sounds like talking: hum or sing steady notes to play"
        return None

    def poll(self) -> list[MelodyEvent]:
        """Events since the last poll, oldest first. Thread: any (one poller)."""
        out = []
        while self.events:
            out.append(self.events.popleft())
        return out

    def notes(self) -> list[tuple[int, float, float, int, float]]:
        """All notes so far: (announced pitch, start s, end s, velocity, median pitch)
        on the input clock (end = now for an open note)."""
        res = []
        for n in self.segmenter.notes:
            off = n.off_hop if n.off_hop is not None else self.segmenter.hop + 1
            res.append(
                (
                    n.pitch,
                    self._hop_to_clock(n.on_hop) / self.clock_rate,
                    self._hop_to_clock(off) / self.clock_rate,
                    n.velocity,
                    n.median_pitch,
                )
            )
        return res

    def with_segmenter(self, **changes) -> None:
        """Change segmenter settings (e.g. key snapping); restarts segmentation."""
        self.seg_config = replace(self.seg_config, **changes)
        self.segmenter = NoteSegmenter(self.seg_config, self.keep_history)
