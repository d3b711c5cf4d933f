"""Health advice: the player gets one understandable sentence when the machine cannot keep up."""

from types import SimpleNamespace

from ui.health import BAD, OK, WARN, HealthMonitor, larger_blocksize


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def snap(**kw):
    base = dict(playing=True, counting_in=False, xruns=0, late_steps=0, cpu_percent=20.0, lead_ms=250.0)
    base.update(kw)
    return SimpleNamespace(**base)


def test_steady_playing_is_ok():
    clock = Clock()
    mon = HealthMonitor(clock=clock)
    for i in range(50):
        clock.t = i * 0.1
        v = mon.update(snap(xruns=3), 256)  # old dropouts from before, not growing
    assert v.level == OK and v.message == ""


def test_growing_xruns_ask_for_a_larger_buffer():
    clock = Clock()
    mon = HealthMonitor(clock=clock)
    mon.update(snap(xruns=0), 128)
    clock.t = 1.0
    v = mon.update(snap(xruns=3), 128)
    assert v.level == BAD
    assert "buffer size" in v.message and "256" in v.message


def test_a_single_dropout_is_a_warning_not_a_verdict():
    clock = Clock()
    mon = HealthMonitor(clock=clock)
    mon.update(snap(xruns=7), 256)
    clock.t = 1.0
    v = mon.update(snap(xruns=8), 256)
    assert v.level == WARN and "512" in v.message


def test_xruns_stop_counting_against_the_machine_after_the_window():
    clock = Clock()
    mon = HealthMonitor(window_s=4.0, clock=clock)
    mon.update(snap(xruns=0), 256)
    clock.t = 1.0
    assert mon.update(snap(xruns=5), 256).level == BAD
    clock.t = 6.0
    mon.update(snap(xruns=5), 256)
    clock.t = 6.5
    assert mon.update(snap(xruns=5), 256).level == OK


def test_band_falling_behind_is_reported():
    clock = Clock()
    mon = HealthMonitor(clock=clock)
    v = mon.update(snap(lead_ms=-40.0), 256)
    assert v.level == BAD and "falling behind" in v.message and "512" in v.message


def test_high_cpu_warns_before_dropouts():
    clock = Clock()
    mon = HealthMonitor(clock=clock, cpu_limit=85)
    for i in range(10):
        clock.t = i * 0.1
        v = mon.update(snap(cpu_percent=97.0), 512)
    assert v.level == WARN and "CPU" in v.message and "1024" in v.message


def test_nothing_to_say_while_stopped():
    mon = HealthMonitor(clock=Clock())
    assert mon.update(snap(playing=False, lead_ms=-100.0, cpu_percent=99.0), 256).level == OK


def test_larger_blocksize_doubles_up_to_the_limit():
    assert larger_blocksize(128) == 256
    assert larger_blocksize(4096) == 4096
