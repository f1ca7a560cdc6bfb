"""The web app in a real browser: Debian's headless Chromium, driven by Selenium, on the
real ``facegate web`` (uvicorn, TLS with a certificate made by ``facegate web cert``, on
127.0.0.1 and a free port) beside a real ``facegate run`` on the replay camera with the
mock door. A screenshot of each page goes to the pytest temporary folder (its path is
printed); look at them.

Skipped, saying why, where chromium or chromedriver is not installed (Debian packages
``chromium`` and ``chromium-driver``; .ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.evaluation.demo_sequence import write_sequence
from tests.helpers import FACES, REPO, config_text

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="real-browser tests need Debian's chromium and chromium-driver packages",
)
PASSWORD = "correct horse battery"
WAIT_S = 60.0  # for processes to start and pages to settle on a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def facegate(*argv: str, config: Path, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "edge", *argv, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=WAIT_S,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Process:
    """A facegate command in the background, its output kept for a failure's message."""

    def __init__(self, *argv: str, config: Path):
        self.output: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", *argv, "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=WAIT_S)


def wait_for_tls(port: int, proc: Process) -> None:
    deadline = time.monotonic() + WAIT_S
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, "facegate web stopped:\n" + "".join(proc.output)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw:
                with context.wrap_socket(raw):
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("facegate web did not answer:\n" + "".join(proc.output))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A door service and the web app beside it; yields the web app's base URL."""
    folder = tmp_path_factory.mktemp("site")
    replay = folder / "replay"
    write_sequence([FACES / "obama_2.jpg"], replay, frames_per_person=8, gap_frames=4)
    port = free_port()
    text = config_text(
        folder,
        replay,
        camera={"loop": True, "realtime": True},
        models={"threads": 1},
        control={"socket": str(folder / "control.sock"), "allow_remote_unlock": True},
        enrolment={"min_templates": 1},
        web={
            "listen": "127.0.0.1",
            "port": port,
            "cert": str(folder / "web" / "cert.pem"),
            "key": str(folder / "web" / "key.pem"),
        },
    )
    config = folder / "facegate.toml"
    config.write_text(text)
    facegate("init", config=config)
    facegate("admin", "add", "alice", "--password-stdin", config=config, stdin=PASSWORD + "\n")
    print(facegate("web", "cert", "--hostname", "localhost", "--ip", "127.0.0.1", config=config))
    daemon = Process("run", config=config)
    web = Process("web", config=config)
    try:
        wait_for_tls(port, web)
        yield f"https://127.0.0.1:{port}"
    finally:
        web.stop()
        daemon.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots in {folder}")
    return folder


def new_browser(downloads: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root in a container
        "--disable-dev-shm-usage",
        "--ignore-certificate-errors",  # the device's self-signed certificate
        "--window-size=1280,960",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    return driver


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(site, downloads):
    driver = new_browser(downloads)
    yield driver
    driver.quit()


def wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.2).until(condition, message=what)


def by_css(selector: str):
    from selenium.webdriver.common.by import By

    return (By.CSS_SELECTOR, selector)


def find(driver, selector: str):
    return driver.find_element(*by_css(selector))


def sign_in(driver, site: str) -> None:
    driver.get(site + "/login")
    find(driver, "input[name=name]").send_keys("alice")
    find(driver, "input[name=password]").send_keys(PASSWORD)
    find(driver, "form[action='/login'] button").click()
    wait(
        driver,
        lambda d: d.current_url == site + "/",
        "the dashboard after signing in, not:\n" + driver.page_source,
    )


# --- in order: sign in, enrol (camera, upload), watch, erase, export ----------------------


def test_1_refused_without_a_session(site, shots, downloads):
    driver = new_browser(downloads)
    try:
        for path in ("/people", "/attendance.csv", "/camera"):
            driver.get(site + path)
            assert driver.current_url.startswith(site + "/login?next=")
        assert find(driver, "h1").text == "Sign in"
        driver.save_screenshot(str(shots / "login.png"))
    finally:
        driver.quit()


def test_2_sign_in_and_see_the_dashboard(site, browser, shots):
    sign_in(browser, site)
    assert find(browser, "[data-field=door]").text == "locked"
    wait(browser, lambda d: find(d, "[data-field=camera]").text == "ok", "camera ok")


def test_3_enrol_at_the_door_camera_with_live_guidance(site, browser, shots):
    browser.get(site + "/people/new")
    form = find(browser, "form#capture")
    form.find_element(*by_css("input[name=name]")).send_keys("Barack Obama")
    form.find_element(*by_css("button")).click()
    wait(browser, lambda d: "/people/capture/" in d.current_url, "the capture's page")
    seen: set[str] = set()

    def finished(driver) -> bool:
        seen.add(find(driver, "[data-field=guidance]").text)
        return bool(find(driver, "[data-field=result]").text)

    wait(browser, finished, "the capture's end")
    browser.save_screenshot(str(shots / "capture.png"))
    assert "is enrolled as #1" in find(browser, "[data-field=result]").text
    assert seen & {"good: keep looking at the camera", "step in front of the camera", "done"}


def test_4_enrol_by_upload_and_see_the_person_listed(site, browser, shots):
    browser.get(site + "/people/new")
    form = find(browser, "form#upload")
    form.find_element(*by_css("input[name=name]")).send_keys("Joe Biden")
    form.find_element(*by_css("input[type=file]")).send_keys(str(FACES / "biden_1.jpg"))
    form.find_element(*by_css("button")).click()
    wait(browser, lambda d: "Enrolment of" in d.page_source, "the enrolment's verdicts")
    assert "Enrolled as" in browser.page_source, browser.page_source
    assert find(browser, "#verdicts td.ok").text == "ok"
    browser.save_screenshot(str(shots / "enrolled.png"))
    browser.get(site + "/people")
    names = [a.text for a in browser.find_elements(*by_css("#people td a"))]
    assert names == ["Barack Obama", "Joe Biden"]
    browser.save_screenshot(str(shots / "people.png"))


def test_5_the_camera_page_shows_a_face_box(site, browser, shots):
    browser.get(site + "/camera")
    wait(browser, lambda d: d.find_elements(*by_css("#seen-faces li")), "a face in the info")
    boxed = """
        const img = document.getElementById('preview');
        if (!img.naturalWidth) return 0;
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        const px = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;  // the box's green (good face) or amber (not) pixels
        for (let i = 0; i < px.length; i += 4) {
            const [r, g, b] = [px[i], px[i + 1], px[i + 2]];
            if ((r < 70 && g > 150 && b < 70) || (r > 200 && g > 120 && g < 200 && b < 70)) n++;
        }
        return n;
    """
    wait(browser, lambda d: d.execute_script(boxed) > 200, "a face box drawn on the preview")
    browser.save_screenshot(str(shots / "camera.png"))
    # the info stream runs beside the image: the replay's empty frames say "nobody" between
    wait(
        browser,
        lambda d: any(w in find(d, "#seen-person").text for w in ("similarity", "face")),
        "the person at the door described",
    )


def test_6_decisions_arrive_live_on_the_dashboard(site, browser, shots):
    browser.get(site + "/")
    wait(
        browser,
        lambda d: d.find_elements(*by_css("#decisions tr[data-live] td.kind-granted")),
        "a granted decision streamed to the dashboard",
    )
    browser.save_screenshot(str(shots / "dashboard.png"))


def test_7_delete_a_person(site, browser, shots):
    browser.get(site + "/people")
    browser.find_element(*by_css("#people a[href^='/people/2']")).click()
    find(browser, "a.danger").click()
    wait(browser, lambda d: "Delete Joe Biden?" in d.page_source, "the erasure's confirmation")
    browser.save_screenshot(str(shots / "delete.png"))
    find(browser, "input[name=confirm]").send_keys("Joe Biden")
    find(browser, "form#erase button").click()
    wait(browser, lambda d: d.current_url == site + "/people", "back on the list")
    names = [a.text for a in browser.find_elements(*by_css("#people td a"))]
    assert names == ["Barack Obama"]
    assert "erased Joe Biden" in browser.page_source


def test_8_download_the_attendance_csv(site, browser, shots, downloads):
    browser.get(site + "/attendance")
    browser.save_screenshot(str(shots / "attendance.png"))
    find(browser, "#attendance-csv").click()
    found = wait(browser, lambda d: list(downloads.glob("facegate-attendance-*.csv")), "a CSV")
    text = found[0].read_text()
    lines = text.splitlines()
    assert lines[0] == "day,person_id,name,first_in,last_out,hours,passes"
    assert any(",Barack Obama," in line for line in lines[1:])  # granted at the door above


def test_9_the_other_pages(site, browser, shots):
    for name, path in (
        ("events", "/events"),
        ("admins", "/admins"),
        ("person", "/people/1"),
        ("new_person", "/people/new"),
    ):
        browser.get(site + path)
        assert "Not done" not in browser.page_source
        browser.save_screenshot(str(shots / f"{name}.png"))
