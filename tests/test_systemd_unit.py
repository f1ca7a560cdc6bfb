"""The systemd unit says what the service needs, and agrees with scripts/install.sh."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.config import WebConfig
from edge.control import ControlConfig
from edge.errors import ExitCode
from edge.gallery.store import GalleryConfig

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "facegate.service"
JETSON_DROP_IN = REPO / "systemd" / "jetson.conf"
INSTALL = REPO / "scripts" / "install.sh"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values in order (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        assert current is not None, f"setting outside a section: {line}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text())


@pytest.fixture(scope="module")
def service(unit) -> dict[str, str]:
    return {key: " ".join(values) for key, values in unit["Service"].items()}


def install_var(name: str) -> str:
    match = re.search(rf"^{name}=(\S+)$", INSTALL.read_text(), re.MULTILINE)
    assert match, f"{name}= not set in install.sh"
    value = match.group(1)
    for ref in re.findall(r"\$(\w+)", value):
        value = value.replace(f"${ref}", install_var(ref))
    return value


def test_notify_type_and_watchdog(service):
    assert service["Type"] == "notify"
    assert 10 <= int(service["WatchdogSec"]) <= 120


def test_exec_start_matches_the_install_paths(service):
    venv, config = install_var("VENV"), install_var("CONFIG")
    assert service["ExecStart"] == f"{venv}/bin/facegate run --config {config}"


def test_every_stop_ends_with_the_relay_locked(service):
    venv, config = install_var("VENV"), install_var("CONFIG")
    assert service["ExecStopPost"] == f"{venv}/bin/facegate lock --config {config}"


def test_restart_on_failure_but_not_for_faults_a_person_must_fix(service, unit):
    assert service["Restart"] == "on-failure"
    prevented = {int(code) for code in service["RestartPreventExitStatus"].split()}
    assert prevented == {ExitCode.HARDWARE, ExitCode.CONFIG, ExitCode.GALLERY_KEY, ExitCode.MODEL}
    assert unit["Unit"]["StartLimitIntervalSec"] == ["0"]


def test_user_groups_and_state(service):
    assert service["User"] == install_var("SERVICE_USER") == "facegate"
    assert set(service["SupplementaryGroups"].split()) >= {"gpio", "video"}
    assert service["StateDirectory"] == "facegate"
    assert install_var("STATE_DIR") == "/var/lib/facegate"
    assert "/var/lib/facegate" in service["ReadWritePaths"].split()


def test_the_key_folder_is_writable_for_rekey(service):
    key_dir = str(Path(GalleryConfig().key_file).parent)
    assert key_dir == install_var("KEY_DIR") == "/etc/facegate/key"
    assert key_dir in service["ReadWritePaths"].split()


def test_the_control_socket_has_a_folder_only_the_service_may_enter(service):
    socket = Path(ControlConfig().socket)
    assert socket.parent == Path("/run") / service["RuntimeDirectory"]
    assert service["RuntimeDirectoryMode"] == "0700"


def test_lgpio_can_make_its_fifo_in_a_writable_folder(service):
    # ProtectSystem=strict leaves / read-only; lgpio writes in $LG_WD or the cwd
    assert service["WorkingDirectory"] == "/var/lib/facegate"
    assert "LG_WD=/var/lib/facegate" in service["Environment"].split()


def test_hardening_without_hiding_devices(service):
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "ProtectKernelModules": "yes",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert service.get(key) == value, key
    assert service["CapabilityBoundingSet"] == ""
    # these would hide /dev/gpiomem, /dev/gpiochip*, /dev/video*, /dev/dma_heap
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in service, key
    assert "AF_UNIX" in service["RestrictAddressFamilies"].split()  # sd_notify
    assert service["SystemCallFilter"].split() == ["@system-service", "~@privileged"]
    for key, value in {
        "ProtectProc": "invisible",
        "RemoveIPC": "yes",
        "PrivateMounts": "yes",
    }.items():
        assert service.get(key) == value, key
    # the GPIO libraries read /proc/device-tree at import
    assert "ProcSubset" not in service


def test_jetson_drop_in_lets_the_argus_socket_through():
    drop_in = parse_unit(JETSON_DROP_IN.read_text())
    assert drop_in == {"Service": {"PrivateTmp": ["no"]}}
    assert "jetson.conf" in INSTALL.read_text()


def test_stop_by_sigterm_with_a_bounded_wait(service, unit):
    assert service["KillSignal"] == "SIGTERM"
    assert 5 <= int(service["TimeoutStopSec"]) <= 60
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def runnable_copy(folder: Path) -> Path:
    """The unit (and the Jetson drop-in beside it) as systemd-analyze can load it
    here: the binaries and the user must exist; everything else is as shipped."""
    text = re.sub(r"^(ExecStart|ExecStopPost)=\S+", r"\1=/bin/true", UNIT.read_text(), flags=re.M)
    text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)
    copy = folder / "facegate.service"
    copy.write_text(text)
    (folder / "facegate.service.d").mkdir()
    (folder / "facegate.service.d" / "jetson.conf").write_text(JETSON_DROP_IN.read_text())
    return copy


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit_and_the_drop_in(tmp_path):
    copy = runnable_copy(tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and problems == [], result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_rates_the_unit_well_hardened(tmp_path):
    (tmp_path / "facegate.service").write_text(UNIT.read_text())
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "facegate.service"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    match = re.search(r"Overall exposure level for facegate.service: ([0-9.]+)", result.stdout)
    if match is None:
        pytest.skip(f"this systemd-analyze cannot rate a unit offline: {result.stderr.strip()}")
    assert float(match.group(1)) <= 1.5, result.stdout  # 3.3 before issue 11's item 15


# -- scripts/install.sh ----------------------------------------------------------


def detect(tmp_path, model: str, *options: str) -> subprocess.CompletedProcess:
    model_file = tmp_path / "model"
    model_file.write_bytes(model.encode() + b"\0")  # device-tree strings end in NUL
    return subprocess.run(
        ["bash", str(INSTALL), *options, "--detect"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"FACEGATE_MODEL_FILE": str(model_file), "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.parametrize(
    "model,expected",
    [
        # Raspberry Pi OS packages: rpi-lgpio drives the Pi 5's RP1, RPi.GPIO the older ones
        ("Raspberry Pi 5 Model B Rev 1.0", "pi python3-rpi-lgpio RPi.GPIO"),
        ("Raspberry Pi Compute Module 5 Rev 1.0", "pi python3-rpi-lgpio RPi.GPIO"),
        ("Raspberry Pi 4 Model B Rev 1.4", "pi python3-rpi.gpio RPi.GPIO"),
        ("Raspberry Pi 3 Model B Plus Rev 1.3", "pi python3-rpi.gpio RPi.GPIO"),
        ("NVIDIA Jetson Orin Nano Developer Kit", "jetson Jetson.GPIO Jetson.GPIO"),
    ],
)
def test_install_picks_the_gpio_package_from_the_board_model(tmp_path, model, expected):
    result = detect(tmp_path, model)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_generic_board_has_no_gpio_library_whatever_the_machine(tmp_path):
    result = detect(tmp_path, "Generic x86 PC", "--board", "generic")
    assert result.returncode == 0 and result.stdout.strip() == "generic - -", result.stderr


def test_a_board_option_that_contradicts_the_device_tree_is_refused(tmp_path):
    result = detect(tmp_path, "Raspberry Pi 5 Model B Rev 1.0", "--board", "jetson")
    assert result.returncode != 0
    assert "--board jetson, but" in result.stderr and "Raspberry Pi 5" in result.stderr


def test_install_refuses_an_unknown_board(tmp_path):
    result = detect(tmp_path, "Generic x86 PC")
    assert result.returncode != 0
    assert (
        "unsupported board 'Generic x86 PC'" in result.stderr and "--board generic" in result.stderr
    )


@pytest.mark.parametrize("os_name", ["bookworm", "trixie", "jammy"])
def test_every_supported_os_has_constraints_that_keep_numpy_and_opencv_together(os_name):
    pins = {
        line.split("==")[0].split(">")[0].split("<")[0]: line
        for line in (REPO / "constraints" / f"{os_name}.txt").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert {"numpy", "opencv-python-headless"} <= set(pins)
    numpy_1 = "<2" in pins["numpy"]
    # OpenCV 5 wheels need numpy 2; 4.11 is the last that takes the numpy 1 of
    # Bookworm's picamera2 and JetPack's OpenCV
    assert pins["opencv-python-headless"].endswith("4.11.0.86" if numpy_1 else "5.0.0.93")
    assert numpy_1 == (os_name in ("bookworm", "jammy"))


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_install_and_ci_scripts_are_shellcheck_clean():
    scripts = [
        INSTALL,
        REPO / "scripts" / "wheelhouse.sh",
        REPO / "scripts" / "setup.sh",
        REPO / "scripts" / "lint.sh",
        REPO / ".ci" / "run",
    ]
    result = subprocess.run(
        ["shellcheck", *map(str, scripts)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout


# -- the web app's unit ------------------------------------------------------------

WEB_UNIT = REPO / "systemd" / "facegate-web.service"


@pytest.fixture(scope="module")
def web_service() -> dict[str, str]:
    return {k: " ".join(v) for k, v in parse_unit(WEB_UNIT.read_text())["Service"].items()}


def test_the_web_unit_runs_facegate_web_as_the_service_user(web_service):
    venv, config = install_var("VENV"), install_var("CONFIG")
    assert web_service["ExecStart"] == f"{venv}/bin/facegate web --config {config}"
    assert web_service["User"] == install_var("SERVICE_USER")
    assert install_var("WEB_UNIT_NAME") == WEB_UNIT.name
    assert str(Path(WebConfig().cert).parent) == install_var("WEB_DIR")
    assert Path(WebConfig().key).parent == Path(WebConfig().cert).parent


def test_the_door_does_not_depend_on_the_web_app_and_stays_offline(service, unit):
    for section in unit.values():
        for values in section.values():
            assert not any("facegate-web" in v for v in values)
    assert service["IPAddressDeny"] == "any"
    assert "AF_INET" not in service["RestrictAddressFamilies"].split()


def test_the_web_unit_never_removes_the_doors_socket_folder(web_service):
    # a RuntimeDirectory here would be deleted whenever the web app stops
    assert "RuntimeDirectory" not in web_service
    assert "AF_UNIX" in web_service["RestrictAddressFamilies"].split()


def test_the_web_unit_is_hardened(web_service):
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateDevices": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert web_service.get(key) == value, key
    assert web_service["CapabilityBoundingSet"] == ""  # its port is above 1023
    assert WebConfig().port > 1023
    assert web_service["SystemCallFilter"].split() == ["@system-service", "~@privileged"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_web_unit(tmp_path):
    text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", WEB_UNIT.read_text(), flags=re.M)
    text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)
    copy = tmp_path / WEB_UNIT.name
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and problems == [], result.stderr


# -- the broker client's unit --------------------------------------------------------

MQTT_UNIT = REPO / "systemd" / "facegate-mqtt.service"


def test_the_broker_client_reaches_nothing_but_what_the_installer_allows():
    mqtt = {k: " ".join(v) for k, v in parse_unit(MQTT_UNIT.read_text())["Service"].items()}
    assert mqtt["IPAddressDeny"] == "any" and "IPAddressAllow" not in mqtt
    assert mqtt["ExecStart"] == (
        f"{install_var('VENV')}/bin/facegate mqtt --config {install_var('CONFIG')}"
    )
    assert mqtt["User"] == install_var("SERVICE_USER")
    assert set(mqtt["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    # the door daemon's own unit stays off the network whatever MQTT does
    assert parse_unit(UNIT.read_text())["Service"]["IPAddressDeny"] == ["any"]
    assert "IPAddressAllow" not in parse_unit(UNIT.read_text())["Service"]
    assert install_var("MQTT_UNIT_NAME") == MQTT_UNIT.name


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_broker_clients_unit_with_a_drop_in(tmp_path):
    text = MQTT_UNIT.read_text().replace(
        "/opt/facegate/venv/bin/facegate", shutil.which("true") or "/bin/true"
    )
    copy = tmp_path / MQTT_UNIT.name
    copy.write_text(text)
    (tmp_path / f"{MQTT_UNIT.name}.d").mkdir()
    (tmp_path / f"{MQTT_UNIT.name}.d" / "broker.conf").write_text(
        "[Service]\nIPAddressAllow=192.0.2.7 2001:db8::7\n"
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and problems == [], result.stderr
