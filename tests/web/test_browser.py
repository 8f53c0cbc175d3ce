"""The UI in a real browser: Debian's headless Chromium driven by playwright.

* In-process (the Flask app under waitress on 127.0.0.1): sign in, register a system through the form,
  see the field errors for a bad MAC and an unknown profile, laptop and phone layouts.
* In test namespaces (the real daemon, a simulated PXE client, Chromium in a peer namespace): an unknown
  machine boots, shows up under Discovered, is registered with one click, and its boot timeline fills in
  live while it boots again (DHCP, TFTP, boot script, answer file, completion).

Screenshots go to ``artifacts/web/<test>/``.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.servers.http import HttpServer
from netboot.webapp import create_app

from .conftest import ADMIN, REPO

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}

playwright_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    pytest.skip("Debian's chromium is not installed (scripts/install-deps.sh test)", allow_module_level=True)


def launch(pw: object, executable: str = CHROMIUM) -> object:
    return pw.chromium.launch(executable_path=executable, headless=True, args=ARGS)  # type: ignore[attr-defined]


@pytest.fixture
def served_app(runtime: Runtime) -> Iterator[str]:
    server = HttpServer(create_app(runtime), "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)


def sign_in(page: object, base: str, name: str, password: str) -> None:
    page.goto(f"{base}/ui/")  # type: ignore[attr-defined]
    page.fill("#name", name)  # type: ignore[attr-defined]
    page.fill("#password", password)  # type: ignore[attr-defined]
    page.click("button:has-text('Sign in')")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/ui/systems$"))  # type: ignore[attr-defined]


def no_dialogs(page: object) -> list[str]:
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(d.message), d.dismiss()))  # type: ignore[attr-defined]
    return seen


def test_sign_in_register_and_field_errors(served_app: str, runtime: Runtime, web_artifacts: Path) -> None:
    base = served_app
    with playwright_api.sync_playwright() as pw:
        browser = launch(pw)
        page = browser.new_page(viewport=LAPTOP)  # type: ignore[attr-defined]
        dialogs = no_dialogs(page)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{base}/ui/")
        assert page.title() == "Sign in · netboot"
        page.screenshot(path=str(web_artifacts / "01-sign-in.png"))
        page.fill("#name", ADMIN[0])
        page.fill("#password", "wrong-password")
        page.click("button:has-text('Sign in')")
        assert "Wrong user name or password" in page.inner_text(".error-box")
        sign_in(page, base, *ADMIN)
        page.screenshot(path=str(web_artifacts / "02-systems-empty.png"))

        page.click("text=Register a system")
        page.fill("#f-mac", "52:54:00:zz:00:01")
        page.fill("#f-profile", "debian12-preseed")
        page.fill("#f-hostname", "web1")
        page.click("button:has-text('Register')")
        assert "not a MAC address" in page.inner_text("[data-field=mac]")
        page.screenshot(path=str(web_artifacts / "03-bad-mac.png"), full_page=True)

        page.fill("#f-mac", "52:54:00:12:34:56")
        page.fill("#f-profile", "debian12-presed")
        page.click("button:has-text('Register')")
        message = page.inner_text("[data-field=profile]")
        assert "unknown profile 'debian12-presed'" in message and "debian12-preseed" in message
        page.screenshot(path=str(web_artifacts / "04-unknown-profile.png"), full_page=True)
        assert runtime.store.systems.list() == []

        page.fill("#f-profile", "debian12-preseed")
        page.fill("#f-vars", '{"disk": "/dev/vda"}')
        page.click("button:has-text('Register')")
        page.wait_for_url(f"{base}/ui/systems/52:54:00:12:34:56")
        assert page.inner_text("#state") == "install"
        assert "registered by admin" in page.inner_text("#timeline")
        page.screenshot(path=str(web_artifacts / "05-system.png"), full_page=True)
        system = runtime.store.systems.get(MacAddress.parse("52:54:00:12:34:56"))
        assert system is not None and system.hostname == "web1" and system.variables == {"disk": "/dev/vda"}

        for i in range(2, 7):
            runtime.store.systems.seen(
                MacAddress.parse(f"52:54:00:00:00:0{i}"), arch="uefi-x64", uuid=None, now=time.time() - 60 * i
            )
        page.goto(f"{base}/ui/systems/bulk")
        page.fill(
            "#f-lines", "52:54:00:00:01:01,db1,rocky9-kickstart\n52:54:00:00:01:02,db2,ubuntu24-autoinstall\n"
        )
        page.click("button:has-text('Register all')")
        page.wait_for_url(f"{base}/ui/systems")
        assert "Registered 2 systems" in page.inner_text(".flash")
        page.screenshot(path=str(web_artifacts / "06-systems-laptop.png"), full_page=True)

        phone = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)  # type: ignore[attr-defined]
        sign_in(phone, base, *ADMIN)
        phone.screenshot(path=str(web_artifacts / "07-systems-phone.png"), full_page=True)
        phone.goto(f"{base}/ui/systems/52:54:00:12:34:56")
        phone.screenshot(path=str(web_artifacts / "08-system-phone.png"), full_page=True)
        # the loaders table turns into cards too: a row per firmware, and no sideways scrolling
        rows, width = phone.evaluate(
            "[document.querySelectorAll('#loaders tr[data-firmware]').length,"
            " document.documentElement.scrollWidth]"
        )
        assert rows == 4 and width <= PHONE["width"], f"{rows} loader rows, the page is {width} px wide"
        phone.goto(f"{base}/ui/discovered")
        phone.screenshot(path=str(web_artifacts / "09-discovered-phone.png"), full_page=True)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page scrolls sideways on a phone ({width} px)"

        page.goto(f"{base}/ui/profiles")
        page.screenshot(path=str(web_artifacts / "10-profiles.png"), full_page=True)
        browser.close()  # type: ignore[attr-defined]
    assert dialogs == [] and errors == []


# ------------------------------------------------------------------------------- in test namespaces


def _chromium_in(ns: str, workdir: Path) -> str:
    """A wrapper that starts Debian's chromium inside namespace ``ns`` (playwright talks to it by pipe)."""
    wrapper = workdir / "chromium-in-netns"
    wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {ns} {CHROMIUM} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.netns
@pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")
def test_discovered_one_click_and_live_timeline(tmp_path: Path, web_artifacts: Path) -> None:
    from netlab import PYTHON, Lab
    from served import NETBOOT, start_netboot

    from netboot.boot.urls import done_url

    if not shutil.which("curl"):
        pytest.skip("curl is needed for the simulated client")

    class WebLab(Lab):
        def __init__(self) -> None:
            super().__init__()
            self.id = "nbw-" + secrets.token_hex(3)  # project rule: namespaces of this suite start with nbw-
            from netlab import Netns

            self.bridge = Netns(f"{self.id}-br")

    probe = str(REPO / "tests" / "tools" / "dhcp_probe.py")
    with WebLab() as lab:
        srv = lab.host("srv", 1)
        client = lab.host("cli")
        ui_ns = lab.host("ui", 3)
        mac = lab.mac_of(client)
        data = tmp_path / "netboot" / "data"
        subprocess.run(
            [NETBOOT, "user", "add", ADMIN[0], "--password-stdin", "--data-dir", str(data)],
            input=ADMIN[1] + "\n",
            text=True,
            check=True,
            capture_output=True,
            timeout=60,
        )
        config = (
            f"dhcp:\n  mode: full\n  subnet: {lab.net}.0/24\n  range: {lab.ip(100)}-{lab.ip(150)}\n"
            f"profiles-dir: {REPO / 'profiles'}\n"
        )
        served = start_netboot(lab, srv, tmp_path / "netboot", config=config)
        base = served.http

        def dhcp() -> str:
            out = client.run(
                PYTHON,
                probe,
                "--mac",
                mac,
                "--mode",
                "dora",
                "--arch",
                "0",
                "--vendor-class",
                "PXEClient:Arch:00000:UNDI:002001",
                "--wait",
                "2",
                timeout=30,
            ).stdout
            acks = re.findall(r'"type": "ACK", "yiaddr": "([0-9.]+)"', out)
            assert acks, out
            client.run("ip", "addr", "flush", "dev", "eth0")
            client.run("ip", "addr", "add", f"{acks[-1]}/24", "dev", "eth0")
            return acks[-1]

        # 1. an unknown machine boots: it is discovered
        dhcp()
        with playwright_api.sync_playwright() as pw:
            browser = launch(pw, _chromium_in(ui_ns.name, tmp_path))
            page = browser.new_page(viewport=LAPTOP)  # type: ignore[attr-defined]
            dialogs = no_dialogs(page)
            sign_in(page, base, *ADMIN)
            page.click("nav >> text=Discovered")
            row = page.locator(f"#d-{MacAddress.parse(mac).hex}")
            row.wait_for(timeout=10000)
            assert "bios" in row.inner_text() or "-" in row.inner_text()
            page.screenshot(path=str(web_artifacts / "01-discovered.png"), full_page=True)

            # 2. one click registers it (the profile select defaults to the first installer profile)
            row.locator("select").select_option("debian12-preseed")
            row.locator("button:has-text('Register')").click()
            page.wait_for_url(re.compile(r".*/ui/systems/" + re.escape(MacAddress.parse(mac).colon) + "$"))
            assert page.inner_text("#state") == "install"
            page.screenshot(path=str(web_artifacts / "02-registered.png"), full_page=True)
            page.locator("#live").wait_for(state="visible", timeout=10000)

            # 3. it boots again while the page is open: DHCP, TFTP, boot script, answer file, done
            ip = dhcp()
            client.run("curl", "-sS", "-o", "/dev/null", f"tftp://{lab.ip(1)}/undionly.kpxe", timeout=60)
            script = client.run("curl", "-sSf", f"{base}/boot.ipxe?mac={mac}", timeout=30).stdout
            found = re.search(r"(http://\S+/answer/\S+?token=[A-Za-z0-9_.~-]+)", script)
            assert found, script
            answer_url = found.group(1)
            client.run("curl", "-sSf", "-o", "/dev/null", answer_url, timeout=30)
            token = urllib.parse.parse_qs(urllib.parse.urlsplit(answer_url).query)["token"][0]
            client.run(
                "curl",
                "-sSf",
                "-o",
                "/dev/null",
                "-X",
                "POST",
                done_url(base, MacAddress.parse(mac), token),
                timeout=30,
            )

            timeline = page.locator("#timeline")
            for phase in ("dhcp", "tftp", "boot-script", "answer-file", "install-done"):
                timeline.locator(f"tr.phase-{phase}").first.wait_for(timeout=15000)
            # a locator, not wait_for_function: a string predicate is evaluated in the page, which the UI's
            # Content-Security-Policy (script-src 'self') rightly forbids once it has to poll
            page.locator("#state", has_text=re.compile(r"^\s*installed\s*$")).wait_for(timeout=15000)
            page.locator("#stale").wait_for(state="visible", timeout=5000)
            text = timeline.inner_text()
            assert ip in text and "undionly.kpxe" in text
            page.screenshot(path=str(web_artifacts / "03-timeline-live.png"), full_page=True)
            phone = browser.new_page(viewport=PHONE, device_scale_factor=2, is_mobile=True)  # type: ignore[attr-defined]
            sign_in(phone, base, *ADMIN)
            phone.goto(f"{base}/ui/systems/{MacAddress.parse(mac).colon}")
            phone.screenshot(path=str(web_artifacts / "04-timeline-phone.png"), full_page=True)
            browser.close()  # type: ignore[attr-defined]
        assert dialogs == []
        (web_artifacts / "netboot.log").write_text(served.log_text())
