"""Streaming resampling to the trackers' 16 kHz.

Integer decimation (48, 32, 96 kHz -> 16 kHz), the default (``causal=True``): an
elliptic low-pass (8th order, flat to 7/8 of the output Nyquist, -36 dB at it and -70 dB
beyond) run as a causal IIR with its state kept between blocks, then every ``down``-th
sample, the newest of each group. It needs no future input: every output is ready as
soon as its input sample has arrived, so a 10 ms hop is complete the moment its last
input sample is in, with no wait for the next audio block (with 5 ms blocks a look-ahead
filter made every hop wait one whole block). Its delay is the filter's group delay,
~5 input samples (0.1 ms at 48 kHz) for voice frequencies. The stream equals filtering
the whole signal at once.

Rational ratios down (44.1 kHz -> 16 kHz, 160/441) run the same causal low-pass and
interpolate linearly between its two newest samples around each output position: one
more input sample of delay, where the look-ahead filter below needs 10 ms.

Otherwise (``causal=False``, or an upsampling 8 kHz device) scipy.signal.resample_poly
with our own short linear-phase filter. resample_poly
itself is stateless. We feed it overlapping chunks: each call resamples
[left context | new samples | right context] and keeps only the outputs that belong to
the new samples, so the stream equals resampling the whole signal at once (up to float
rounding). The right context costs ``latency_samples`` of look-ahead (1.6 ms for 48 kHz
-> 16 kHz, 10 ms for 44.1 kHz whose ratio 160/441 forces 441-sample steps).
"""

from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import ellip, firwin, group_delay, resample_poly, sos2tf, sosfilt, sosfilt_zi


class StreamResampler:
    """Thread: one thread at a time."""

    def __init__(self, rate_in: int, rate_out: int, half_taps: int = 24, causal: bool = True) -> None:
        if rate_in <= 0 or rate_out <= 0:
            raise ValueError("sample rates must be positive")
        g = gcd(int(rate_in), int(rate_out))
        self.up, self.down = int(rate_out) // g, int(rate_in) // g
        self.rate_in, self.rate_out = int(rate_in), int(rate_out)
        self.identity = self.up == self.down == 1
        m = max(self.up, self.down)
        # our own short low-pass (half_taps taps of the slower rate each side) keeps the delay low;
        # unit DC gain: resample_poly scales a given filter by `up` itself (scaling it here
        # too made an 8 kHz device 6 dB hot, and 44.1 kHz with causal=False 38 dB)
        self._h = h = None if self.identity else firwin(2 * half_taps * m + 1, 1.0 / m, window=("kaiser", 6.0))
        # context in input samples covering the filter's half length, a multiple of
        # `down` so output indices stay integral
        half_in = -(-half_taps * m // self.up) + 1
        ctx = -(-half_in // self.down) * self.down
        self.ctx = ctx
        # latency: how long after its input an output is out (look-ahead here); delay:
        # how far an output's content lies behind its own time (none: linear phase)
        self.latency_samples = 0 if self.identity else ctx  # at rate_in
        self.delay_samples = 0
        self._pending = np.zeros(ctx, np.float32)  # left context (zeros at start)
        self._new = 0  # samples after the context
        # Integer decimation (48, 32, 96 kHz -> 16 kHz): each output is one dot product of
        # the filter with the input around it, computed here directly: the same sums as
        # resample_poly at a tenth of its per-call cost (which is mostly set-up).
        self._dec_h = None if h is None or self.up != 1 else h.astype(np.float32)
        # the causal decimator (see the module docstring)
        self._sos = None
        if causal and self.rate_in > self.rate_out:
            self._sos = ellip(8, 0.1, 70, 0.875 * rate_out / 2, fs=rate_in, output="sos")
            gd = group_delay(sos2tf(self._sos), w=[300.0], fs=rate_in)[1][0]
            # delay, not look-ahead (a rational ratio interpolates between the two newest
            # filtered samples: up to one more input sample)
            self.latency_samples = int(round(float(gd))) + (self.up > 1)
            self.delay_samples = self.latency_samples  # out at once, its content that late
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(self.ctx, np.float32)
        self._new = 0
        if self._sos is not None:
            self._zi = sosfilt_zi(self._sos) * 0.0
            self._phase = 0  # input samples since the last output, mod down
            self._n_in = 0  # input samples so far (rational ratios)
            self._m = 0  # next output index (rational ratios)
            self._ylast = 0.0  # the last filtered input sample

    def _interpolate(self, y: np.ndarray) -> np.ndarray:
        """Rational ratios (44.1 kHz): output m lies at input position m * down / up;
        it is the linear interpolation of the two filtered samples around it, out as
        soon as the later one is in. The low-pass leaves the voice oversampled ~3x, where
        linear interpolation costs < 1 dB at 7 kHz and nothing below 2 kHz."""
        n0 = self._n_in  # global index of y[0]
        self._n_in += len(y)
        buf = np.concatenate([[self._ylast], y])  # buf[j] is input n0 - 1 + j
        self._ylast = float(y[-1])
        # every m whose position's right neighbour (index i + 1) has arrived
        m_end = ((self._n_in - 1) * self.up - 1) // self.down + 1
        if m_end <= self._m:
            return np.zeros(0, np.float32)
        m = np.arange(self._m, m_end, dtype=np.int64)
        self._m = m_end
        pos = m * self.down
        i = pos // self.up
        frac = (pos - i * self.up) / self.up
        j = i - (n0 - 1)
        return (buf[j] * (1.0 - frac) + buf[j + 1] * frac).astype(np.float32)

    def process(self, x: np.ndarray) -> np.ndarray:
        """x: (n,) float32 at rate_in -> (m,) float32 at rate_out (m may be 0)."""
        x = np.asarray(x, np.float32)
        if self.identity:
            return x
        if self._sos is not None:
            if x.size == 0:
                return np.zeros(0, np.float32)
            y, self._zi = sosfilt(self._sos, x, zi=self._zi)
            if self.up == 1:
                # output the newest sample of each group of `down` input samples
                first = self.down - 1 - self._phase
                self._phase = (self._phase + x.size) % self.down
                return y[first :: self.down].astype(np.float32)
            return self._interpolate(y)
        buf = np.concatenate([self._pending, x])
        avail = len(buf) - self.ctx - self.ctx  # new samples with right context
        steps = avail // self.down
        if steps <= 0:
            self._pending = buf
            return np.zeros(0, np.float32)
        n_in = steps * self.down
        seg = buf[: self.ctx + n_in + self.ctx]
        if self._dec_h is not None:
            half = (len(self._dec_h) - 1) // 2
            # output i is centred on input ctx + i * down
            win = np.lib.stride_tricks.sliding_window_view(seg, len(self._dec_h))
            out = win[self.ctx - half : self.ctx - half + n_in : self.down] @ self._dec_h
            self._pending = buf[n_in:]
            return out
        y = resample_poly(seg, self.up, self.down, window=self._h)
        a = self.ctx * self.up // self.down
        out = y[a : a + n_in * self.up // self.down]
        self._pending = buf[n_in:]
        return out.astype(np.float32)
