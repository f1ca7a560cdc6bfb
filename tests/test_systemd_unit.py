"""The systemd unit says what the service needs, and agrees with scripts/install.sh."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from edge.errors import ExitCode

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "systemd" / "facegate.service"
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


def test_restart_on_failure_but_not_for_faults_a_person_must_fix(service, unit):
    assert service["Restart"] == "on-failure"
    prevented = {int(code) for code in service["RestartPreventExitStatus"].split()}
    assert prevented == {ExitCode.CONFIG, ExitCode.GALLERY_KEY, ExitCode.MODEL}
    assert unit["Unit"]["StartLimitIntervalSec"] == ["0"]


def test_user_groups_and_state(service):
    assert service["User"] == install_var("SERVICE_USER") == "facegate"
    assert set(service["SupplementaryGroups"].split()) >= {"gpio", "video"}
    assert service["StateDirectory"] == "facegate"
    assert install_var("STATE_DIR") == "/var/lib/facegate"
    assert "/var/lib/facegate" in service["ReadWritePaths"].split()


def test_hardening_without_hiding_devices(service):
    for key, value in {
        "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
        "ProtectHome": "yes", "ProtectKernelModules": "yes", "RestrictSUIDSGID": "yes",
    }.items():
        assert service.get(key) == value, key
    assert service["CapabilityBoundingSet"] == ""
    # these would hide /dev/gpiomem, /dev/gpiochip*, /dev/video*, /dev/dma_heap
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in service, key
    assert "AF_UNIX" in service["RestrictAddressFamilies"].split()  # sd_notify


def test_stop_by_sigterm_with_a_bounded_wait(service, unit):
    assert service["KillSignal"] == "SIGTERM"
    assert 5 <= int(service["TimeoutStopSec"]) <= 60
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    # verify wants the binary and user to exist; everything else is checked as shipped
    text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", UNIT.read_text(), flags=re.M)
    text = re.sub(r"^(User|Group)=.*$", r"\1=root", text, flags=re.M)
    copy = tmp_path / "facegate.service"
    copy.write_text(text)
    result = subprocess.run(["systemd-analyze", "verify", str(copy)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if str(copy) in line]
    assert result.returncode == 0 and problems == [], result.stderr


# -- scripts/install.sh ----------------------------------------------------------


@pytest.mark.parametrize("model,expected", [
    ("Raspberry Pi 5 Model B Rev 1.0", "pi rpi-lgpio RPi.GPIO"),
    ("Raspberry Pi Compute Module 5 Rev 1.0", "pi rpi-lgpio RPi.GPIO"),
    ("Raspberry Pi 4 Model B Rev 1.4", "pi RPi.GPIO RPi.GPIO"),
    ("Raspberry Pi 3 Model B Plus Rev 1.3", "pi RPi.GPIO RPi.GPIO"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "jetson Jetson.GPIO Jetson.GPIO"),
])
def test_install_picks_the_gpio_package_from_the_board_model(tmp_path, model, expected):
    model_file = tmp_path / "model"
    model_file.write_bytes(model.encode() + b"\0")  # device-tree strings end in NUL
    result = subprocess.run(["bash", str(INSTALL), "--detect"], capture_output=True, text=True,
                            env={"FACEGATE_MODEL_FILE": str(model_file), "PATH": "/usr/bin:/bin"},
                            timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected


def test_install_refuses_an_unknown_board(tmp_path):
    model_file = tmp_path / "model"
    model_file.write_bytes(b"Generic x86 PC\0")
    result = subprocess.run(["bash", str(INSTALL), "--detect"], capture_output=True, text=True,
                            env={"FACEGATE_MODEL_FILE": str(model_file), "PATH": "/usr/bin:/bin"},
                            timeout=30)
    assert result.returncode != 0
    assert "unsupported board 'Generic x86 PC'" in result.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed")
def test_install_script_is_shellcheck_clean():
    result = subprocess.run(["shellcheck", str(INSTALL)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout
