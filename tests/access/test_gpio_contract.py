"""One contract, every GPIO backend: the mock, and the RPi.GPIO-API backend driven
through a fake module object with the RPi.GPIO API."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from edge.access.gpio import BACKENDS, GpioConfig, open_backend
from edge.access.gpio.mock import MockGpio, read_state_file
from edge.access.gpio.rpi import RpiGpio, import_gpio_module
from edge.clock import FakeClock
from edge.errors import ConfigError, ExitCode, GpioError, HardwareError


class FakeRPiGPIO:
    """The parts of the RPi.GPIO API the backend uses, with RPi.GPIO's constants and
    its refusal to set up a pin before setmode()."""

    BCM, BOARD = 11, 10
    OUT, IN = 0, 1
    HIGH, LOW = 1, 0
    PUD_OFF, PUD_DOWN, PUD_UP = 20, 21, 22

    def __init__(self) -> None:
        self.mode = None
        self.levels: dict[int, int] = {}
        self.directions: dict[int, int] = {}
        self.pulls: dict[int, int] = {}
        self.cleaned: list[int] = []

    def setwarnings(self, flag: bool) -> None:
        self.warnings = flag

    def setmode(self, mode: int) -> None:
        self.mode = mode

    def setup(self, channel, direction, pull_up_down=PUD_OFF, initial=-1):
        if self.mode is None:
            raise RuntimeError("Please set pin numbering mode using GPIO.setmode")
        if channel == 5:  # a pin this pretend board reserves
            raise ValueError("The channel sent is invalid on a Raspberry Pi")
        self.directions[channel] = direction
        if direction == self.OUT:
            self.levels[channel] = initial
        else:
            self.pulls[channel] = pull_up_down
            self.levels[channel] = 1 if pull_up_down == self.PUD_UP else 0

    def output(self, channel, value):
        if self.directions.get(channel) != self.OUT:
            raise RuntimeError("The GPIO channel has not been set up as an OUTPUT")
        self.levels[channel] = value

    def input(self, channel):
        return self.levels[channel]

    def cleanup(self, chanlist=None):
        self.cleaned.extend(chanlist if chanlist is not None else list(self.directions))


class Harness:
    """A backend plus how to set an input's electrical level from outside."""

    def __init__(self, backend, drive, driven):
        self.backend = backend
        self.drive = drive  # (pin, level) -> None
        self.driven = driven  # pin -> level the hardware sees on an output


def mock_harness() -> Harness:
    gpio = MockGpio(FakeClock())
    return Harness(gpio, gpio.drive, gpio.level)


def mock_file_harness(tmp_path) -> Harness:
    """The mock with a state file; outputs are read back from the file, as another
    process sees them."""
    state = tmp_path / "gpio.json"
    gpio = MockGpio(FakeClock(), state)
    return Harness(gpio, gpio.drive, lambda pin: read_state_file(state)[pin])


def rpi_harness() -> Harness:
    fake = FakeRPiGPIO()
    backend = RpiGpio(fake)
    return Harness(
        backend,
        lambda pin, level: fake.levels.__setitem__(pin, int(level)),
        lambda pin: bool(fake.levels[pin]),
    )


@pytest.fixture(params=["mock", "mock_file", "rpi"])
def hw(request, tmp_path) -> Harness:
    if request.param == "mock_file":
        return mock_file_harness(tmp_path)
    return {"mock": mock_harness, "rpi": rpi_harness}[request.param]()


def test_every_registered_backend_is_under_contract():
    assert set(BACKENDS) == {"mock", "rpi"}


@pytest.mark.parametrize("level", [True, False])
def test_output_drives_its_initial_level_from_setup(hw, level):
    hw.backend.setup_output(17, level)
    assert hw.driven(17) is level
    assert hw.backend.read(17) is level


def test_write_changes_the_output_level(hw):
    hw.backend.setup_output(17, False)
    hw.backend.write(17, True)
    assert hw.driven(17) is True
    hw.backend.write(17, False)
    assert hw.driven(17) is False


def test_inputs_idle_at_their_pull_and_follow_the_driven_level(hw):
    hw.backend.setup_input(22, "up")
    hw.backend.setup_input(23, "down")
    assert hw.backend.read(22) is True
    assert hw.backend.read(23) is False
    hw.drive(22, False)
    hw.drive(23, True)
    assert hw.backend.read(22) is False
    assert hw.backend.read(23) is True


@pytest.mark.parametrize("pin", [-1, 28, 3.0, True, "17"])
def test_pin_outside_the_bcm_header_is_refused(hw, pin):
    with pytest.raises(GpioError, match="BCM number"):
        hw.backend.setup_output(pin, False)


def test_bad_pull_is_refused_and_claims_nothing(hw):
    with pytest.raises(GpioError, match="pull must be one of"):
        hw.backend.setup_input(22, "sideways")
    hw.backend.setup_input(22, "up")  # still free


def test_a_pin_is_set_up_once(hw):
    hw.backend.setup_output(17, False)
    with pytest.raises(GpioError, match="already set up as an output"):
        hw.backend.setup_input(17, "up")
    assert hw.driven(17) is False


def test_writing_an_input_or_an_unknown_pin_is_refused(hw):
    hw.backend.setup_input(22, "up")
    with pytest.raises(GpioError, match="is an input"):
        hw.backend.write(22, True)
    with pytest.raises(GpioError, match="never set up"):
        hw.backend.write(24, True)
    with pytest.raises(GpioError, match="never set up"):
        hw.backend.read(24)


def test_close_keeps_outputs_driven_and_refuses_further_use(hw):
    hw.backend.setup_output(17, False)
    hw.backend.setup_input(22, "up")
    hw.backend.close()
    hw.backend.close()  # idempotent
    assert hw.backend.closed
    assert hw.driven(17) is False
    for action in (
        lambda: hw.backend.write(17, True),
        lambda: hw.backend.read(22),
        lambda: hw.backend.setup_output(18, False),
    ):
        with pytest.raises(GpioError, match="closed"):
            action()
    assert hw.driven(17) is False


# -- backend specifics ----------------------------------------------------------


def test_mock_records_output_changes_with_clock_time():
    clock = FakeClock(start=50.0)
    gpio = MockGpio(clock)
    gpio.setup_output(17, False)
    clock.advance(1.5)
    gpio.write(17, True)
    gpio.setup_input(22, "up")
    assert gpio.history(17) == [(50.0, False), (51.5, True)]
    assert gpio.setup_order == [17, 22]
    gpio.close()
    assert gpio.released == [22]


def test_mock_state_file_keeps_levels_from_every_process_and_outlives_them(tmp_path):
    state = tmp_path / "gpio.json"
    daemon = MockGpio(FakeClock(), state)
    daemon.setup_output(17, False)
    daemon.setup_output(24, False)
    daemon.write(17, True)
    del daemon  # killed mid-pulse: the pin keeps its level
    assert read_state_file(state) == {17: True, 24: False}
    locker = MockGpio(FakeClock(), state)  # what 'facegate lock' opens
    locker.setup_output(17, False)
    assert read_state_file(state) == {17: False, 24: False}


def test_mock_state_file_that_cannot_be_written_fails_the_write(tmp_path):
    gpio = MockGpio(FakeClock(), tmp_path / "missing" / "gpio.json")
    with pytest.raises(GpioError, match="state file"):
        gpio.setup_output(17, False)


def test_rpi_uses_bcm_numbering_and_releases_only_inputs():
    fake = FakeRPiGPIO()
    backend = RpiGpio(fake)
    assert fake.mode == FakeRPiGPIO.BCM
    backend.setup_output(17, False)
    backend.setup_input(22, "up")
    backend.setup_input(23, "off")
    assert fake.pulls == {22: FakeRPiGPIO.PUD_UP, 23: FakeRPiGPIO.PUD_OFF}
    backend.close()
    assert fake.cleaned == [22, 23]


def test_rpi_library_errors_become_gpio_errors():
    fake = FakeRPiGPIO()
    backend = RpiGpio(fake)
    with pytest.raises(GpioError, match="invalid on a Raspberry Pi"):
        backend.setup_output(5, False)


class LgpioError(Exception):
    """What lgpio raises: a plain Exception subclass, neither RuntimeError nor OSError."""


def test_a_chip_that_cannot_be_opened_is_a_hardware_error_with_the_fix():
    fake = FakeRPiGPIO()

    def setmode(mode):
        raise LgpioError("can not open gpiochip")

    fake.setmode = setmode
    with pytest.raises(HardwareError, match="can not open gpiochip.*'gpio' group") as caught:
        RpiGpio(fake)
    assert caught.value.exit_code == ExitCode.HARDWARE == 71


def test_a_failure_while_driving_a_set_up_pin_is_a_gpio_error():
    fake = FakeRPiGPIO()
    backend = RpiGpio(fake)
    backend.setup_output(17, False)

    def output(channel, value):
        raise LgpioError("GPIO not allocated")

    fake.output = output
    with pytest.raises(GpioError, match="GPIO not allocated") as caught:
        backend.write(17, True)
    assert not isinstance(caught.value, HardwareError)


def test_missing_gpio_module_names_the_package_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", None)  # makes the import fail
    with pytest.raises(HardwareError, match="install 'Jetson.GPIO'"):
        import_gpio_module("Jetson.GPIO")
    monkeypatch.setitem(sys.modules, "RPi.GPIO", None)
    with pytest.raises(HardwareError, match="python3-rpi-lgpio") as caught:
        open_backend(GpioConfig(backend="rpi", module="RPi.GPIO"), FakeClock())
    assert caught.value.exit_code == ExitCode.HARDWARE


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError("This module can only be run on a Raspberry Pi!"),
        NotImplementedError("This module does not understand old-style revision codes"),
        LgpioError("xCreatePipe: Can't set permissions (436) for .lgd-nfy-3"),
    ],
)
def test_a_module_that_fails_at_import_is_a_hardware_error(monkeypatch, error):
    import importlib

    def refuse(name):
        raise error

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(HardwareError, match=f"cannot start: {type(error).__name__}: ") as caught:
        import_gpio_module("RPi.GPIO")
    assert str(error) in str(caught.value) and "\n" not in str(caught.value)


def test_missing_gpio_module_stops_the_service_with_the_no_restart_code(tmp_path):
    """A real `facegate run` whose GPIO library is absent: one line, exit 71, which
    the unit lists in RestartPreventExitStatus."""
    config = tmp_path / "config.toml"
    config.write_text(
        '[gpio]\nbackend = "rpi"\nmodule = "Jetson.GPIO"\n'
        f'[camera]\nsource = "replay"\nreplay_path = "{tmp_path}"\n'
        f'[gallery]\npath = "{tmp_path / "g.db"}"\nkey_file = "{tmp_path / "g.key"}"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == ExitCode.HARDWARE, result.stderr
    assert result.stderr.startswith("facegate: GPIO module Jetson.GPIO cannot be imported")
    assert result.stderr.count("\n") == 1


def test_rpi_backend_opens_through_the_configured_module(monkeypatch):
    fake = FakeRPiGPIO()
    package = types.ModuleType("Jetson")
    package.GPIO = fake
    monkeypatch.setitem(sys.modules, "Jetson", package)
    monkeypatch.setitem(sys.modules, "Jetson.GPIO", fake)
    backend = open_backend(GpioConfig(backend="rpi", module="Jetson.GPIO"), FakeClock())
    assert isinstance(backend, RpiGpio)
    backend.setup_output(17, True)
    assert fake.levels[17] == FakeRPiGPIO.HIGH


def test_registry_lists_valid_names_on_a_wrong_one():
    # GpioConfig's choices stop this at load time; the registry still says it plainly.
    config = GpioConfig(backend="pigpio")
    with pytest.raises(ConfigError, match=r"unknown backend 'pigpio' \(valid: mock, rpi\)"):
        open_backend(config, FakeClock())


def test_gpio_section_validates_backend_and_module():
    from edge.schema import build_section

    assert build_section(GpioConfig, {"backend": "mock"}, "gpio").backend == "mock"
    with pytest.raises(ConfigError, match="gpio.module: 'pigpio' is not one of"):
        build_section(GpioConfig, {"module": "pigpio"}, "gpio")
    with pytest.raises(ConfigError, match="gpio.backend: 'fake' is not one of"):
        build_section(GpioConfig, {"backend": "fake"}, "gpio")
