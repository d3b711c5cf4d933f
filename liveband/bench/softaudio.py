"""A software audio server for machines without a sound card (tests, benches, CI).

``SoftwareAudioServer("pulse")`` starts a private PulseAudio with a null sink
``speakers`` (whose monitor we can record) and a fake microphone ``fakemic`` fed
through the sink ``micfeed``. ``SoftwareAudioServer("jack")`` starts a JACK dummy
driver. Each instance stops only the processes it started itself.

Clients find the server through environment variables (PULSE_SERVER /
JACK_DEFAULT_SERVER) that ``start`` sets in this process; PortAudio reads the
device list when it is initialised, so ``refresh_portaudio`` re-scans it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


class AudioServerError(RuntimeError):
    pass


class PrivateHome:
    """A fresh LIVEBAND_HOME for a bench's own session (its settings, takes and logs kept out
    of the user's); ``close()`` (or leaving a ``with``) puts the old one back and removes it."""

    def __init__(self, prefix: str = "liveband-bench-") -> None:
        self.path = tempfile.mkdtemp(prefix=prefix)
        self._old = os.environ.get("LIVEBAND_HOME")
        os.environ["LIVEBAND_HOME"] = self.path

    def close(self) -> None:
        if self._old is None:
            os.environ.pop("LIVEBAND_HOME", None)
        else:
            os.environ["LIVEBAND_HOME"] = self._old
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> str:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.close()


def refresh_portaudio() -> None:
    """Make sounddevice re-scan devices (after a server started or stopped): the
    engine's one re-scan, under the lock every PortAudio call takes."""
    from engine.audio_devices import refresh_devices

    refresh_devices()


class SoftwareAudioServer:
    """Context manager around a private PulseAudio or JACK dummy server."""

    def __init__(self, kind: str = "pulse", rate: int = 48000, jack_period: int = 256, name: str | None = None) -> None:
        if kind not in ("pulse", "jack"):
            raise ValueError("kind must be 'pulse' or 'jack'")
        self.kind = kind
        self.rate = rate
        self.jack_period = jack_period
        self.name = name or f"liveband{os.getpid()}"
        self.root = Path(tempfile.mkdtemp(prefix=f"liveband-{kind}-"))
        self._procs: list[subprocess.Popen] = []
        self._saved_env: dict[str, str | None] = {}
        self.started = False
        self.main_thread_realtime = False  # PulseAudio's main thread made SCHED_RR

    # -- helpers -------------------------------------------------------------
    def _setenv(self, key: str, value: str) -> None:
        if key not in self._saved_env:
            self._saved_env[key] = os.environ.get(key)
        os.environ[key] = value

    def _spawn(self, args: list[str], **kw) -> subprocess.Popen:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
        self._procs.append(p)
        return p

    @staticmethod
    def _need(binary: str, package: str) -> str:
        path = shutil.which(binary)
        if path is None:
            raise AudioServerError(f"'{binary}' not found; install it with 'sudo apt-get install {package}'")
        return path

    def _pactl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> "SoftwareAudioServer":
        if self.kind == "pulse":
            self._start_pulse()
        else:
            self._start_jack()
        self.started = True
        return self

    def _start_pulse(self) -> None:
        self._need("pulseaudio", "pulseaudio")
        self._need("pactl", "pulseaudio-utils")
        runtime = self.root / "xdg"
        runtime.mkdir(mode=0o700)
        home = self.root / "home"
        home.mkdir()
        sock = runtime / "native"
        self._setenv("PULSE_SERVER", f"unix:{sock}")
        self._setenv("PULSE_RUNTIME_PATH", str(runtime))
        env = dict(os.environ, HOME=str(home), XDG_RUNTIME_DIR=str(runtime))
        r = self.rate
        self._spawn(
            [
                "pulseaudio",
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--system=false",
                # real-time IO threads where the system allows it (as a desktop's PipeWire/
                # PulseAudio gets through rtkit): a starved server is what underruns here
                "--realtime=true",
                "--high-priority=true",
                "--disallow-exit",
                f"--log-target=file:{self.root / 'pulse.log'}",
                "-L",
                f"module-native-protocol-unix socket={sock} auth-anonymous=1",
                "-L",
                f"module-null-sink sink_name=speakers rate={r} sink_properties=device.description=NullSpeakers",
                "-L",
                f"module-null-sink sink_name=micfeed rate={r} channels=1 sink_properties=device.description=MicFeed",
                "-L",
                "module-remap-source master=micfeed.monitor source_name=fakemic "
                "source_properties=device.description=FakeMic",
                "-L",
                "module-always-sink",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while self._pactl("info").returncode != 0:
            if time.monotonic() > deadline or self._procs[0].poll() is not None:
                log = (
                    (self.root / "pulse.log").read_text(errors="replace")[-2000:]
                    if (self.root / "pulse.log").exists()
                    else ""
                )
                self.stop()
                raise AudioServerError(f"PulseAudio did not start: {log}")
            time.sleep(0.1)
        self.main_thread_realtime = self._realtime_main_thread(self._procs[0].pid)
        self._pactl("set-default-sink", "speakers")
        self._pactl("set-default-source", "fakemic")
        # Keep-alive clients: without them the null sink's timer sleeps up to 2 s and
        # each new stream stalls after its first callbacks.
        self._spawn(
            [
                "pacat",
                "--playback",
                "--device=speakers",
                "--latency-msec=10",
                f"--rate={r}",
                "--channels=1",
                "--format=s16le",
                "/dev/zero",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._spawn(
            ["parec", "--device=fakemic", "--latency-msec=10", f"--rate={r}", "--channels=1", "--format=s16le"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            si = self._pactl("list", "short", "sink-inputs").stdout.strip()
            so = self._pactl("list", "short", "source-outputs").stdout.strip()
            if si and so:
                break
            time.sleep(0.1)
        time.sleep(2.5)  # the null-sink timer may still be in its previous long sleep
        refresh_portaudio()

    @staticmethod
    def _realtime_main_thread(pid: int) -> bool:
        """Give PulseAudio's main thread the real-time class its IO threads get.

        Why: PulseAudio asks a client for the next block from its main thread (the
        native protocol lives there), which ``--realtime`` leaves at nice -11; a busy
        neighbour then holds it up and a client's stream underruns with no stall of
        ours. A desktop's audio graph (PipeWire, JACK) runs that path real-time.
        Whether it worked (needs root or CAP_SYS_NICE)."""
        if not hasattr(os, "sched_setscheduler"):
            return False
        try:
            os.sched_setscheduler(pid, os.SCHED_RR, os.sched_param(5))
            return True
        except (OSError, ValueError):
            return False

    def _start_jack(self) -> None:
        self._need("jackd", "jackd2")
        self._setenv("JACK_DEFAULT_SERVER", self.name)
        self._setenv("JACK_NO_AUDIO_RESERVATION", "1")
        self._spawn(
            [
                "jackd",
                "-n",
                self.name,
                "-d",
                "dummy",
                "-r",
                str(self.rate),
                "-p",
                str(self.jack_period),
                "-C",
                "2",
                "-P",
                "2",
            ],
            stdout=open(self.root / "jackd.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while True:
            ok = (
                subprocess.run(["jack_lsp"], capture_output=True, timeout=10).returncode == 0
                if shutil.which("jack_lsp")
                else (self.root / "jackd.log").read_text(errors="replace").count("dummy") > 0
            )
            if ok:
                break
            if time.monotonic() > deadline or self._procs[0].poll() is not None:
                log = (self.root / "jackd.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise AudioServerError(f"JACK did not start: {log}")
            time.sleep(0.1)
        refresh_portaudio()

    def play_into_mic(self, wav_path: str | os.PathLike) -> subprocess.Popen:
        """Feed a WAV file into the fake microphone (pulse only). Returns the paplay process."""
        if self.kind != "pulse":
            raise AudioServerError("the fake microphone exists only on the pulse server")
        return self._spawn(
            ["paplay", "--device=micfeed", str(wav_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def record_output(self, wav_path: str | os.PathLike) -> subprocess.Popen:
        """Record what is played to the speakers (the null sink's monitor) into a WAV file
        (pulse only). Stop it with ``proc.terminate()``; the file is then complete."""
        if self.kind != "pulse":
            raise AudioServerError("recording the output is done on the pulse server")
        return self._spawn(
            [
                "parec",
                "--device=speakers.monitor",
                "--file-format=wav",
                f"--rate={self.rate}",
                "--channels=2",
                "--format=s16le",
                "--latency-msec=10",
                str(wav_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        # PortAudio must let go of the server before it disappears (its JACK host API
        # asserts otherwise); it is re-initialised once the server is gone.
        from engine.audio_devices import PA_LOCK

        pa_terminated = False
        if self.started:
            try:
                import sounddevice as sd

                with PA_LOCK:
                    sd._terminate()
                pa_terminated = True
            except Exception:
                pass
        for p in reversed(self._procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for p in reversed(self._procs):
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        self._procs.clear()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        self.started = False
        if pa_terminated:
            import sounddevice as sd

            with PA_LOCK:
                sd._initialize()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SoftwareAudioServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
