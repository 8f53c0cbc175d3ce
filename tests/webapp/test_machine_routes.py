"""The machine-facing HTTP endpoints and the install lifecycle (issue 4).

Requirements proven here, each through Flask's test client over ``create_app(build_runtime(config))``:

* ``/boot.ipxe?mac=``: local boot, the profile menu or the default profile for an unknown MAC (recorded as
  discovered, with events); the install script (kernel, initrd, answer URL with the token) for a registered
  one; local boot once its install is done.
* ``/answer/<mac>/<file>?token=``: the rendered file with the kind's content type for the right token; 403
  or 404 for a wrong, empty, foreign or dead token or an unknown MAC, and nothing changes.
* ``/done/<mac>?token=`` (GET and POST): the system leaves install state, the token dies.
* ``/files/<profile>/<path>``: HEAD with Content-Length, Range (206, exact bytes); escapes give 404 and
  none of the target's bytes. ``/loaders/<name>``: HEAD with Content-Length.
* A template that fails: a bare 500 for the machine, ``file:line`` for the admin in the log.
* A bad profile (a typo, a path escaping its data tree): ``netboot serve`` refuses to start, naming
  ``profile.yaml:LINE``; a profile broken while serving leaves the last good set serving.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner
from flask.testing import FlaskClient

import netboot.runtime
from netboot.cli import main as cli_main
from netboot.config import Config, LoadersConfig
from netboot.daemon import StartupError, build_daemon
from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.profiles import load_profiles_collect
from netboot.render.kinds import KINDS
from netboot.runtime import Runtime

from .conftest import (
    BASE,
    DEBIAN_DATA,
    DEBIAN_INITRD,
    DEBIAN_KERNEL,
    FAKE_IPXE_EFI,
    HAVE_DEBIAN,
    MAC,
    MACHINE_IP,
    OTHER,
    PROFILES,
    UNKNOWN,
    RuntimeFactory,
    app_for,
    config_for,
    events_of,
    insert_line,
    line_of,
    phases,
    register,
    stored,
    tokens_in,
)

INSTALLERS = ("debian12-preseed", "opensuse-autoyast", "rocky9-kickstart", "solaris10-jumpstart",
              "ubuntu24-autoinstall")
needs_debian = pytest.mark.skipif(not HAVE_DEBIAN, reason="debian-installer-12-netboot-amd64 not installed")


def boot(client: FlaskClient, mac: str, **query: str) -> tuple[int, str]:
    resp = client.get("/boot.ipxe", query_string={"mac": mac, **query})
    return resp.status_code, resp.get_data(as_text=True)


def is_local_script(script: str) -> bool:
    return script.startswith("#!ipxe") and "boots from its local disk" in script and "\nkernel " not in script


def is_install_script(script: str, profile: str) -> bool:
    return script.startswith("#!ipxe") and f"install profile {profile}" in script and "\nkernel " in script


# ------------------------------------------------------------------------------------- unknown MACs


def test_unknown_mac_boots_locally_and_is_recorded_as_discovered(runtime: Runtime,
                                                                  client: FlaskClient) -> None:
    status, script = boot(client, "52-54-00-AA-BB-CC")  # any spelling
    assert status == 200
    assert is_local_script(script)
    system = stored(runtime, UNKNOWN)
    assert system is not None
    assert (system.state, system.profile, system.token) == (SystemState.DISCOVERED, None, None)
    assert system.first_seen is not None
    events = events_of(runtime, system.mac)
    assert [e.phase for e in events] == ["discovered", "boot-script"]
    assert events[1].detail["decision"] == "local"
    assert events[1].client_ip == "127.0.0.1"
    # a second boot does not record it twice
    assert boot(client, UNKNOWN)[0] == 200
    assert phases(runtime, system.mac) == ["discovered", "boot-script", "boot-script"]
    assert len(runtime.store.systems.list()) == 1


def test_scripts_for_unknown_and_registered_machines_write_nothing_in_front_of_the_reply(
        runtime: Runtime, client: FlaskClient) -> None:
    """No store write on a machine's request path: a new machine's sighting and every event are written
    by background writers (within about half a second), not by the request that caused them."""
    token = register(runtime)  # the first script binds the token: a state change, durable before it leaves
    writes: list[str] = []
    requester = threading.current_thread()

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        if threading.current_thread() is requester and not sql.lstrip().upper().startswith("SELECT"):
            writes.append(" ".join(sql.split())[:80])

    sqlalchemy.event.listen(runtime.store.engine, "before_cursor_execute", statement)
    try:
        assert boot(client, UNKNOWN)[0] == 200
        assert boot(client, MAC)[0] == 200
        answer = client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token})
        assert answer.status_code == 200
    finally:
        sqlalchemy.event.remove(runtime.store.engine, "before_cursor_execute", statement)
    assert writes == []
    deadline = time.monotonic() + 5
    while runtime.store.systems.get(MacAddress.parse(UNKNOWN)) is None:
        assert time.monotonic() < deadline, "the new machine's sighting was never written"
        time.sleep(0.05)


@pytest.mark.parametrize("raw", ["", "nonsense", "52:54:00:12:34", "00:00:00:00:00:00:00"])
def test_boot_ipxe_without_a_valid_mac_is_refused_and_stores_nothing(runtime: Runtime, client: FlaskClient,
                                                                     raw: str) -> None:
    status, script = boot(client, raw)
    assert status == 400
    assert script.startswith("#!ipxe") and "needs ?mac=" in script
    assert runtime.store.systems.list() == []
    assert events_of(runtime) == []


def test_unknown_default_menu_lists_the_installer_profiles(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="menu")
    status, script = boot(app_for(rt).test_client(), UNKNOWN)
    assert status == 200
    assert script.startswith("#!ipxe") and "\nmenu " in script and "\nkernel " not in script
    for name in INSTALLERS:
        assert f"item p-{name} " in script
        assert f"chain {BASE}/boot.ipxe?mac={UNKNOWN}&profile={name} " in script
    assert "p-local" not in script  # a never-install profile is no menu choice
    assert "netboot-local" in script  # booting the disk is the default choice
    system = stored(rt, UNKNOWN)
    assert system is not None and system.state is SystemState.DISCOVERED and system.token is None


def test_a_menu_choice_registers_the_machine_for_that_profile(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="menu")
    client = app_for(rt).test_client()
    rt.recorder.learn(MACHINE_IP, MacAddress.parse(UNKNOWN))  # the unknown machine's own DHCP
    boot(client, UNKNOWN)
    status, script = boot(client, UNKNOWN, profile="rocky9-kickstart")
    assert status == 200 and is_install_script(script, "rocky9-kickstart")
    system = stored(rt, UNKNOWN)
    assert system is not None
    assert (system.state, system.profile) == (SystemState.INSTALL, "rocky9-kickstart")
    assert system.token and tokens_in(script) == {system.token}
    assert f"inst.ks={BASE}/answer/{UNKNOWN}/ks.cfg?token={system.token}" in script
    assert "admin" in phases(rt, system.mac)
    answer = client.get(f"/answer/{UNKNOWN}/ks.cfg", query_string={"token": system.token})
    assert answer.status_code == 200 and b"%post" in answer.data


@pytest.mark.parametrize("choice", ["local", "nosuch", "../debian12-preseed"])
def test_the_menu_registers_only_profiles_it_offers(make_runtime: RuntimeFactory, choice: str) -> None:
    rt = make_runtime(unknown_default="menu")
    status, script = boot(app_for(rt).test_client(), UNKNOWN, profile=choice)
    assert status == 200 and "\nmenu " in script and "\nkernel " not in script
    system = stored(rt, UNKNOWN)
    assert system is not None and system.state is SystemState.DISCOVERED
    assert (system.profile, system.token) == (None, None)


def test_a_profile_kept_out_of_the_menu_cannot_be_chosen(make_runtime: RuntimeFactory,
                                                         profiles_copy: Path) -> None:
    yaml = profiles_copy / "rocky9-kickstart" / "profile.yaml"
    yaml.write_text(yaml.read_text() + "menu: false\n")
    rt = make_runtime(unknown_default="menu", profiles_dir=profiles_copy)
    client = app_for(rt).test_client()
    assert "rocky9" not in boot(client, UNKNOWN)[1]
    status, script = boot(client, UNKNOWN, profile="rocky9-kickstart")
    assert status == 200 and "\nmenu " in script and "rocky9" not in script
    system = stored(rt, UNKNOWN)
    assert system is not None and (system.state, system.profile, system.token) == (
        SystemState.DISCOVERED, None, None)


@pytest.mark.parametrize("default", ["local", "profile:debian12-preseed"])
def test_profile_query_is_ignored_unless_unknown_machines_get_the_menu(make_runtime: RuntimeFactory,
                                                                       default: str) -> None:
    """With no menu configured, a client cannot pick its own install by adding ``&profile=``."""
    rt = make_runtime(unknown_default=default)
    status, script = boot(app_for(rt).test_client(), UNKNOWN, profile="rocky9-kickstart")
    assert status == 200
    assert "rocky9" not in script
    system = stored(rt, UNKNOWN)
    assert system is not None
    if default == "local":
        assert is_local_script(script)
        assert (system.state, system.profile, system.token) == (SystemState.DISCOVERED, None, None)
    else:
        assert is_install_script(script, "debian12-preseed")
        assert system.profile == "debian12-preseed"


def test_profile_query_cannot_put_a_registered_machine_back_into_install(
        make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="menu")
    client = app_for(rt).test_client()
    token = register(rt)
    assert client.get(f"/done/{MAC}", query_string={"token": token}).status_code == 200
    status, script = boot(client, MAC, profile="rocky9-kickstart")
    assert status == 200 and is_local_script(script)
    system = stored(rt, MAC)
    assert system is not None
    assert (system.state, system.profile, system.token) == (SystemState.INSTALLED, "debian12-preseed", None)


def test_unknown_default_profile_installs_it_once(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="profile:debian12-preseed")
    client = app_for(rt).test_client()
    rt.recorder.learn(MACHINE_IP, MacAddress.parse(UNKNOWN))  # the unknown machine's own DHCP
    status, script = boot(client, UNKNOWN)
    assert status == 200 and is_install_script(script, "debian12-preseed")
    system = stored(rt, UNKNOWN)
    assert system is not None
    assert (system.state, system.profile) == (SystemState.INSTALL, "debian12-preseed")
    assert system.token and tokens_in(script) == {system.token}
    assert f"url={BASE}/answer/{UNKNOWN}/preseed.cfg?token={system.token}" in script
    # booting again before the install finishes keeps the same token (no new registration)
    assert tokens_in(boot(client, UNKNOWN)[1]) == {system.token}
    answer = client.get(f"/answer/{UNKNOWN}/preseed.cfg", query_string={"token": system.token})
    assert answer.status_code == 200
    assert client.get(f"/done/{UNKNOWN}", query_string={"token": system.token}).status_code == 200
    # installed: the default profile does not catch it again (no reinstall loop)
    status, script = boot(client, UNKNOWN)
    assert status == 200 and is_local_script(script)
    after = stored(rt, UNKNOWN)
    assert after is not None and (after.state, after.token) == (SystemState.INSTALLED, None)
    assert phases(rt, after.mac).count("install-done") == 1


def test_unknown_default_naming_a_missing_profile_boots_locally(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="profile:nosuch")
    status, script = boot(app_for(rt).test_client(), UNKNOWN)
    assert status == 200 and is_local_script(script)
    system = stored(rt, UNKNOWN)
    assert system is not None and system.state is SystemState.DISCOVERED and system.token is None


# -------------------------------------------------------------------------------- registered systems


def test_registered_system_gets_the_install_script(runtime: Runtime, client: FlaskClient) -> None:
    token = register(runtime)
    status, script = boot(client, "5254.0012.3456")  # Cisco spelling of the same MAC
    assert status == 200 and is_install_script(script, "debian12-preseed")
    if HAVE_DEBIAN:  # the packaged installer is served by netboot
        kernel = f"{BASE}/files/debian12-preseed/{DEBIAN_KERNEL}"
        initrd = f"{BASE}/files/debian12-preseed/{DEBIAN_INITRD}"
    else:  # otherwise iPXE fetches it from the mirror
        kernel = "https://deb.debian.org/debian/dists/bookworm/main/installer-amd64/current/images/netboot/" \
            + DEBIAN_KERNEL
        initrd = kernel.replace(DEBIAN_KERNEL, DEBIAN_INITRD)
    lines = script.splitlines()
    kernel_line = next(line for line in lines if line.startswith("kernel "))
    assert kernel_line.startswith(f"kernel {kernel} initrd=initrd.gz ")
    assert f" url={BASE}/answer/{MAC}/preseed.cfg?token={token} " in kernel_line
    for arg in ("auto=true", "priority=critical", "hostname=web1"):
        assert f" {arg}" in kernel_line
    assert f"initrd --name initrd.gz {initrd}" in lines
    assert tokens_in(script) == {token}
    events = events_of(runtime, MacAddress.parse(MAC))
    assert events[-1].phase == "boot-script"
    assert events[-1].detail == {"kind": "ipxe", "decision": "install", "profile": "debian12-preseed"}
    # the script is rendered on request and changes nothing
    system = stored(runtime, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALL, token)


def test_answer_file_with_the_right_token(runtime: Runtime, client: FlaskClient) -> None:
    token = register(runtime, hostname="web1")
    resp = client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    body = resp.get_data(as_text=True)
    assert "d-i netcfg/get_hostname string web1\n" in body
    assert f"{BASE}/done/{MAC}?token={token}" in body  # the completion callback, for the late command
    event = events_of(runtime, MacAddress.parse(MAC))[-1]
    assert event.phase == "answer-file"
    assert event.detail["file"] == "preseed.cfg" and event.detail["bytes"] == len(resp.data)
    # any spelling of the MAC in the path is the same machine
    again = client.get("/answer/52-54-00-12-34-56/preseed.cfg", query_string={"token": token})
    assert again.status_code == 200 and again.data == resp.data


@pytest.mark.parametrize("profile", INSTALLERS)
def test_every_sample_answer_file_is_served_with_its_content_type(runtime: Runtime, client: FlaskClient,
                                                                  profile: str) -> None:
    token = register(runtime, profile=profile, hostname="host-" + profile.split("-")[0])
    found = runtime.profiles.get(profile)
    assert found is not None
    bodies = []
    for spec in KINDS[found.kind].files:
        resp = client.get(f"/answer/{MAC}/{spec.name}", query_string={"token": token})
        assert resp.status_code == 200, (spec.name, resp.data)
        assert resp.headers["Content-Type"] == spec.content_type
        assert resp.headers["Content-Type"].count("charset") == 1
        bodies.append(resp.get_data(as_text=True))
    if found.kind != "jumpstart":  # Solaris takes its host name from DHCP (sysidcfg: PRIMARY {dhcp})
        assert any("host-" + profile.split("-")[0] in b for b in bodies)
    assert any(f"/done/{MAC}?token={token}" in b for b in bodies)


def _snapshot(rt: Runtime) -> list[tuple[str, str, str | None, str | None]]:
    return [(str(s.mac), s.state.value, s.profile, s.token) for s in rt.store.systems.list()]


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("wrong token", 403),
        ("empty token", 403),
        ("no token", 403),
        ("other system's token", 403),
        ("token in the wrong case", 403),
        ("unknown mac", 404),
        ("not a mac", 404),
        ("unknown file", 404),
        ("file of another kind", 404),
    ],
)
def test_answer_refusals_change_nothing(runtime: Runtime, client: FlaskClient, case: str,
                                        status: int) -> None:
    token = register(runtime)
    other = register(runtime, OTHER, "rocky9-kickstart", "db1")
    before = _snapshot(runtime)
    mac, file, query = MAC, "preseed.cfg", {"token": token}
    if case == "wrong token":
        query = {"token": "x" * len(token)}
    elif case == "empty token":
        query = {"token": ""}
    elif case == "no token":
        query = {}
    elif case == "other system's token":
        query = {"token": other}
    elif case == "token in the wrong case":
        query = {"token": token.swapcase()}
    elif case == "unknown mac":
        mac = UNKNOWN
    elif case == "not a mac":
        mac = "zz:zz"
    elif case == "unknown file":
        file = "nosuch.cfg"
    elif case == "file of another kind":
        file = "ks.cfg"
    n_events = len(events_of(runtime))
    resp = client.get(f"/answer/{mac}/{file}", query_string=query)
    assert resp.status_code == status
    assert b"d-i " not in resp.data and len(resp.data) < 64  # nothing of the answer file
    assert _snapshot(runtime) == before  # no state, no token, no discovered record changed
    new = events_of(runtime)[n_events:]
    assert all(e.phase != "answer-file" for e in new)
    if status == 403:
        assert [(e.phase, e.detail.get("status")) for e in new] == [("http", 403)]
    # the right token still works afterwards
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token}).status_code == 200


# ------------------------------------------------------------------------------------------ lifecycle


def test_completion_callback_ends_the_install(runtime: Runtime, client: FlaskClient) -> None:
    token = register(runtime)
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token}).status_code == 200
    resp = client.get(f"/done/{MAC}", query_string={"token": token})
    assert resp.status_code == 200 and b"next boot is local" in resp.data
    system = stored(runtime, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALLED, None)
    # the token is dead: no answer file, no second callback
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token}).status_code == 403
    assert client.get(f"/done/{MAC}", query_string={"token": token}).status_code == 403
    assert client.post(f"/done/{MAC}", data={"token": token}).status_code == 403
    # next PXE boot goes to the local disk
    status, script = boot(client, MAC)
    assert status == 200 and is_local_script(script) and token not in script
    assert phases(runtime, system.mac)[-6:] == ["answer-file", "install-done", "http", "http", "http",
                                                 "boot-script"]
    assert events_of(runtime, system.mac)[-1].detail["decision"] == "local"
    after = stored(runtime, MAC)
    assert after is not None and (after.state, after.token) == (SystemState.INSTALLED, None)


def test_a_head_probe_of_the_callback_does_not_end_the_install(runtime: Runtime, client: FlaskClient) -> None:
    token = register(runtime)
    assert client.head(f"/done/{MAC}", query_string={"token": token}).status_code == 405
    system = stored(runtime, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALL, token)


@pytest.mark.parametrize("how", ["form", "query"])
def test_completion_callback_by_post(runtime: Runtime, client: FlaskClient, how: str) -> None:
    token = register(runtime)
    if how == "form":
        resp = client.post(f"/done/{MAC}", data={"token": token})
    else:
        resp = client.post(f"/done/{MAC}", query_string={"token": token})
    assert resp.status_code == 200
    system = stored(runtime, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALLED, None)
    assert is_local_script(boot(client, MAC)[1])


@pytest.mark.parametrize(("mac", "query", "status"), [
    (MAC, {"token": "wrong"}, 403),
    (MAC, {"token": ""}, 403),
    (MAC, {}, 403),
    (OTHER, {"token": "__MAC__"}, 403),  # MAC's token on another system's callback
    (UNKNOWN, {"token": "__MAC__"}, 404),
    ("not-a-mac", {"token": "__MAC__"}, 404),
])
def test_completion_callback_refusals_change_nothing(runtime: Runtime, client: FlaskClient, mac: str,
                                                     query: dict[str, str], status: int) -> None:
    token = register(runtime)
    register(runtime, OTHER, "rocky9-kickstart", "db1")
    query = {k: (token if v == "__MAC__" else v) for k, v in query.items()}
    before = _snapshot(runtime)
    assert client.get(f"/done/{mac}", query_string=query).status_code == status
    assert client.post(f"/done/{mac}", data=query).status_code == status
    assert _snapshot(runtime) == before
    assert "install-done" not in [e.phase for e in events_of(runtime)]
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token}).status_code == 200


def test_system_reinstall_gives_a_new_token_and_kills_the_old(runtime: Runtime, client: FlaskClient) -> None:
    first = register(runtime)
    assert client.get(f"/done/{MAC}", query_string={"token": first}).status_code == 200
    data_dir = runtime.config.data_dir
    result = CliRunner().invoke(cli_main, ["system", "reinstall", MAC, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    system = stored(runtime, MAC)
    assert system is not None and system.state is SystemState.INSTALL
    second = system.token
    assert second and second != first
    status, script = boot(client, MAC)
    assert status == 200 and is_install_script(script, "debian12-preseed") and tokens_in(script) == {second}
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": first}).status_code == 403
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": second}).status_code == 200
    # reinstalling again before that install finished: the pending token dies too
    result = CliRunner().invoke(cli_main, ["system", "reinstall", MAC, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    third = stored(runtime, MAC).token  # type: ignore[union-attr]
    assert third not in (None, first, second)
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": second}).status_code == 403
    assert client.get(f"/done/{MAC}", query_string={"token": second}).status_code == 403
    assert client.get(f"/done/{MAC}", query_string={"token": third}).status_code == 200


# ---------------------------------------------------------------------------------- /files, /loaders


@needs_debian
def test_files_head_has_content_length_and_no_body(client: FlaskClient) -> None:
    real = DEBIAN_DATA / DEBIAN_KERNEL
    resp = client.head(f"/files/debian12-preseed/{DEBIAN_KERNEL}")
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == real.stat().st_size
    assert resp.headers["Accept-Ranges"] == "bytes"
    assert resp.data == b""


@needs_debian
@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-0", 0, 0),
    ("bytes=100-199", 100, 199),
    ("bytes=4096-", 4096, None),
    ("bytes=-16", None, None),
])
def test_files_range_returns_the_exact_bytes(client: FlaskClient, header: str, start: int | None,
                                             end: int | None) -> None:
    real = (DEBIAN_DATA / DEBIAN_KERNEL).read_bytes()
    size = len(real)
    if start is None:
        start, end = size - 16, size - 1
    elif end is None:
        end = size - 1
    resp = client.get(f"/files/debian12-preseed/{DEBIAN_KERNEL}", headers={"Range": header})
    assert resp.status_code == 206
    assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{size}"
    assert int(resp.headers["Content-Length"]) == end - start + 1
    assert resp.data == real[start:end + 1]


@needs_debian
def test_files_whole_file_and_unsatisfiable_range(client: FlaskClient) -> None:
    real = DEBIAN_DATA / DEBIAN_INITRD
    resp = client.get(f"/files/debian12-preseed/{DEBIAN_INITRD}")
    assert resp.status_code == 200
    assert hashlib.sha256(resp.data).digest() == hashlib.sha256(real.read_bytes()).digest()
    size = real.stat().st_size
    resp = client.get(f"/files/debian12-preseed/{DEBIAN_INITRD}", headers={"Range": f"bytes={size}-"})
    assert resp.status_code == 416
    assert len(resp.data) < 1024


SECRET = b"TOP-SECRET-outside-the-data-tree\n"


@pytest.fixture
def data_tree(tmp_path: Path, profiles_copy: Path) -> tuple[Path, Path]:
    """debian12-preseed (in a profiles copy) serving ``tmp/data-tree``; a secret file beside that tree."""
    tree = tmp_path / "data-tree"
    (tree / "d-i").mkdir(parents=True)
    (tree / "d-i" / "linux").write_bytes(b"kernel bytes")
    (tree / "d-i" / "initrd.gz").write_bytes(b"initrd bytes")
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (tree / "d-i" / "inside-link").symlink_to("linux")  # a symlink that stays inside: fine
    (tree / "out").symlink_to(tmp_path / "secret.txt")  # a file link out
    (tree / "outdir").symlink_to(tmp_path)  # a directory link out
    (tree / "passwd").symlink_to("/etc/passwd")
    os.mkfifo(tree / "fifo")
    yaml = profiles_copy / "debian12-preseed" / "profile.yaml"
    text = yaml.read_text()
    text = text.replace(f"data_dir: {DEBIAN_DATA}", f"data_dir: {tree}")
    text = text.replace(f"path: {DEBIAN_KERNEL}", "path: d-i/linux").replace(f"path: {DEBIAN_INITRD}",
                                                                          "path: d-i/initrd.gz")
    yaml.write_text(text)
    return profiles_copy, tree


@pytest.mark.parametrize("path", [
    "../profile.yaml",
    "../../secret.txt",
    "d-i/../../secret.txt",
    "%2e%2e/secret.txt",
    "%2E%2E/%2e%2e/secret.txt",
    "d-i/..%2f..%2fsecret.txt",
    "..%5csecret.txt",
    "..\\secret.txt",
    "/etc/passwd",
    "%2Fetc%2Fpasswd",
    "%2F%2Fetc/passwd",
    "out",
    "outdir/secret.txt",
    "passwd",
    "fifo",
    "d-i",
    "d-i/linux%00",
    "nosuch",
])
def test_files_escapes_are_404_with_none_of_the_target(make_runtime: RuntimeFactory,
                                                        data_tree: tuple[Path, Path], path: str) -> None:
    profiles, _tree = data_tree
    rt = make_runtime(profiles_dir=profiles)
    assert rt.profile_errors == [] and rt.profiles.get("debian12-preseed") is not None
    client = app_for(rt).test_client()
    # the control: the tree itself is served, a symlink staying inside it too
    assert client.get("/files/debian12-preseed/d-i/linux").data == b"kernel bytes"
    assert client.get("/files/debian12-preseed/d-i/inside-link").data == b"kernel bytes"
    for method in ("GET", "HEAD"):
        resp = client.open(f"/files/debian12-preseed/{path}", method=method, follow_redirects=False)
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert SECRET not in resp.data and b"root:" not in resp.data
        assert len(resp.data) < 1024
        if method == "HEAD":
            assert resp.data == b""


def test_files_conditional_requests_and_ranges_from_the_one_open(make_runtime: RuntimeFactory,
                                                                 data_tree: tuple[Path, Path]) -> None:
    """The file object sent carries its descriptor's ETag, time and size: 304s and Range work as by name."""
    profiles, _tree = data_tree
    client = app_for(make_runtime(profiles_dir=profiles)).test_client()
    url = "/files/debian12-preseed/d-i/linux"
    first = client.get(url)
    assert first.status_code == 200 and first.data == b"kernel bytes"
    assert first.headers["Content-Length"] == "12" and first.headers["Accept-Ranges"] == "bytes"
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    for headers in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
        resp = client.get(url, headers=headers)
        assert resp.status_code == 304 and resp.data == b"", headers
    resp = client.get(url, headers={"Range": "bytes=7-", "If-Range": etag})
    assert resp.status_code == 206 and resp.data == b"bytes"
    assert resp.headers["Content-Range"] == "bytes 7-11/12"
    head = client.head(url)
    assert head.status_code == 200 and head.data == b"" and head.headers["Content-Length"] == "12"
    assert client.get(url, headers={"Range": "bytes=12-"}).status_code == 416


@pytest.mark.parametrize("url", ["/files/local/x", "/files/nosuch/debian-installer/amd64/linux",
                                 "/files/rocky9-kickstart/images/pxeboot/vmlinuz"])
def test_files_of_a_profile_without_the_file_is_404(client: FlaskClient, url: str) -> None:
    assert client.get(url).status_code == 404


def test_loaders_head_has_content_length(client: FlaskClient) -> None:
    resp = client.head("/loaders/ipxe.efi")
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == len(FAKE_IPXE_EFI)
    assert resp.data == b""
    resp = client.get("/loaders/ipxe.efi")
    assert resp.status_code == 200 and resp.data == FAKE_IPXE_EFI
    part = client.get("/loaders/ipxe.efi", headers={"Range": "bytes=2-9"})
    assert part.status_code == 206 and part.data == FAKE_IPXE_EFI[2:10]
    for bad in ("/loaders/nosuch.efi", "/loaders/..%2f..%2fetc%2fpasswd", "/loaders/%2e%2e",
                "/loaders/snponly.efi"):
        resp = client.get(bad)
        assert resp.status_code == 404, bad
        assert b"root:" not in resp.data


@pytest.mark.skipif(not Path("/usr/lib/ipxe/ipxe.efi").is_file(), reason="Debian's ipxe package is missing")
def test_loaders_from_debians_ipxe_package(make_runtime: RuntimeFactory) -> None:
    """With no loaders dir configured, /usr/lib/ipxe is used: HEAD as OVMF HTTP Boot sends it first."""
    rt = make_runtime(loaders=LoadersConfig())
    resp = app_for(rt).test_client().head("/loaders/ipxe.efi")
    assert resp.status_code == 200
    assert int(resp.headers["Content-Length"]) == Path("/usr/lib/ipxe/ipxe.efi").stat().st_size
    assert resp.data == b""


# ---------------------------------------------------------------------------------- render failures


def test_answer_template_failing_gives_500_without_partial_output(
        make_runtime: RuntimeFactory, profiles_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    template = profiles_copy / "debian12-preseed" / "preseed.cfg.j2"
    line = insert_line(template, 20, "d-i broken/line string {{ vars.nosuch.x }}")
    rt = make_runtime(profiles_dir=profiles_copy)
    client = app_for(rt).test_client()
    token = register(rt)
    before = _snapshot(rt)
    with caplog.at_level(logging.ERROR, logger="netboot.http"):
        resp = client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token})
    assert resp.status_code == 500
    body = resp.get_data(as_text=True)
    assert body == "internal error: the answer file failed to render\n"
    for text in ("d-i", "netboot preseed", "web1", token):
        assert text not in body
    assert f"preseed.cfg.j2:{line}:" in caplog.text
    assert "nosuch" in caplog.text and MAC in caplog.text
    assert _snapshot(rt) == before  # the token still works once the template is fixed
    event = events_of(rt, MacAddress.parse(MAC))[-1]
    assert (event.phase, event.detail["status"]) == ("http", 500)
    assert f"preseed.cfg.j2:{line}" in event.detail["error"]


def test_answer_template_syntax_error_names_the_line(make_runtime: RuntimeFactory, profiles_copy: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    template = profiles_copy / "rocky9-kickstart" / "ks.cfg.j2"
    line = insert_line(template, 5, "{% if %}")
    rt = make_runtime(profiles_dir=profiles_copy)
    client = app_for(rt).test_client()
    token = register(rt, profile="rocky9-kickstart")
    with caplog.at_level(logging.ERROR, logger="netboot.http"):
        resp = client.get(f"/answer/{MAC}/ks.cfg", query_string={"token": token})
    assert resp.status_code == 500 and b"%post" not in resp.data and b"network" not in resp.data
    assert f"ks.cfg.j2:{line}:" in caplog.text


def test_boot_script_template_failing_gives_500_without_partial_output(
        make_runtime: RuntimeFactory, profiles_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    template = profiles_copy / "_snippets" / "boot" / "install.ipxe.j2"
    line = insert_line(template, 4, "{{ system.nosuch.deeper }}")
    rt = make_runtime(profiles_dir=profiles_copy)
    client = app_for(rt).test_client()
    token = register(rt, boot=False)  # its first boot script is the one that fails
    rt.recorder.learn(MACHINE_IP, MacAddress.parse(MAC))
    with caplog.at_level(logging.ERROR, logger="netboot.http"):
        status, script = boot(client, MAC)
    assert status == 500
    assert "\nkernel " not in script and token not in script and "install profile" not in script
    assert f"install.ipxe.j2:{line}:" in caplog.text


# ------------------------------------------------------------------------------------- bad profiles


def _no_servers(tmp_path: Path, profiles: Path) -> Config:
    """A configuration that opens no socket: build_daemon then only loads and checks."""
    cfg = config_for(tmp_path, profiles_dir=profiles, tftp_enabled=False, http_enabled=False)
    return replace(cfg, dhcp=replace(cfg.dhcp, mode="off"))


def test_a_profile_key_typo_stops_the_daemon_from_starting(tmp_path: Path, profiles_copy: Path) -> None:
    yaml = profiles_copy / "rocky9-kickstart" / "profile.yaml"
    yaml.write_text(yaml.read_text().replace("\nkernel:", "\nkernal:"))
    line = line_of(yaml, "kernal:")
    with pytest.raises(StartupError) as raised:
        build_daemon(_no_servers(tmp_path, profiles_copy))
    message = str(raised.value)
    assert f"rocky9-kickstart/profile.yaml:{line}:" in message
    assert "unknown key 'kernal'" in message and "did you mean 'kernel'" in message
    assert "Traceback" not in message


@pytest.mark.parametrize(("key", "value", "reason"), [
    ("kernel", "../../../etc/passwd", "escapes the data directory"),
    ("kernel", "/etc/passwd", "escapes the data directory"),
    ("kernel", "out/vmlinuz", "escapes the data directory"),  # a symlink leaving the data dir
    ("data_dir", "../rocky9-kickstart", "escapes the profiles folder"),
    ("data_dir", ".", "would serve profile files"),
    ("data_dir", "__PROFILES__", "would serve profile files"),
])
def test_a_profile_path_escaping_its_tree_is_refused_at_load(tmp_path: Path, profiles_copy: Path, key: str,
                                                             value: str, reason: str) -> None:
    files = profiles_copy / "rocky9-kickstart" / "files"
    files.mkdir()
    (files / "out").symlink_to(tmp_path)
    (tmp_path / "vmlinuz").write_bytes(b"outside")
    yaml = profiles_copy / "rocky9-kickstart" / "profile.yaml"
    value = value.replace("__PROFILES__", str(profiles_copy))
    if key == "kernel":
        yaml.write_text(yaml.read_text().replace("  path: images/pxeboot/vmlinuz", f"  path: {value}"))
        # a path refused as written is reported at its own line; one that leaves through a symlink (only
        # seen once the data directory is resolved) at its ``kernel:`` line, which the message names
        line = line_of(yaml, "kernel:" if value.startswith("out/") else f"path: {value}")
    else:
        yaml.write_text(yaml.read_text() + f"data_dir: {value}\n")
        line = line_of(yaml, "data_dir:")
    _, errors = load_profiles_collect(profiles_copy)
    assert [str(e) for e in errors if reason in str(e)] and len(errors) == 1, errors
    assert f"rocky9-kickstart/profile.yaml:{line}:" in str(errors[0])
    with pytest.raises(StartupError) as raised:
        build_daemon(_no_servers(tmp_path, profiles_copy))
    assert f"rocky9-kickstart/profile.yaml:{line}:" in str(raised.value) and reason in str(raised.value)


def test_a_profile_broken_while_serving_leaves_the_last_good_set_serving(
        make_runtime: RuntimeFactory, profiles_copy: Path, caplog: pytest.LogCaptureFixture) -> None:
    rt = make_runtime(profiles_dir=profiles_copy)
    client = app_for(rt).test_client()
    token = register(rt)
    good = boot(client, MAC)[1]
    assert rt.profile_errors == []
    yaml = profiles_copy / "debian12-preseed" / "profile.yaml"
    yaml.write_text(yaml.read_text().replace("\ntemplates:", "\ntemplate:"))
    line = line_of(yaml, "template:")
    with caplog.at_level(logging.ERROR, logger="netboot"):
        status, script = boot(client, MAC)
    assert status == 200 and script == good  # the previous profiles keep serving
    assert any(f"debian12-preseed/profile.yaml:{line}:" in e and "did you mean 'templates'" in e
               for e in rt.profile_errors)
    assert f"profile.yaml:{line}:" in caplog.text
    assert client.get(f"/answer/{MAC}/preseed.cfg", query_string={"token": token}).status_code == 200
    system = stored(rt, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALL, token)
    # fixed: the new set is loaded and the error cleared
    yaml.write_text(yaml.read_text().replace("\ntemplate:", "\ntemplates:"))
    assert boot(client, MAC)[1] == good
    assert rt.profile_errors == []


def test_sample_profiles_load_cleanly() -> None:
    """The premise of the tests above: the samples themselves have no problem."""
    _, errors = load_profiles_collect(PROFILES)
    assert errors == []


def test_a_watched_profiles_directory_is_walked_by_its_own_thread_only(
        make_runtime: RuntimeFactory, profiles_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's runtime: the watch thread walks the tree and picks up an edit; a request never walks."""
    rt = make_runtime(profiles_dir=profiles_copy)
    monkeypatch.setattr(netboot.runtime, "PROFILE_CHECK_INTERVAL", 0.05)
    walked_by: list[str] = []
    walk = netboot.runtime._signature

    def counted(root: Path) -> tuple[tuple[str, int, int], ...]:
        walked_by.append(threading.current_thread().name)
        return walk(root)

    monkeypatch.setattr(netboot.runtime, "_signature", counted)
    rt.watch_profiles()
    client = app_for(rt).test_client()
    register(rt)
    walked_by.clear()
    for _ in range(20):
        assert boot(client, MAC)[0] == 200
        time.sleep(0.01)
    assert walked_by and set(walked_by) == {"profile-watch"}
    yaml = profiles_copy / "debian12-preseed" / "profile.yaml"
    yaml.write_text(yaml.read_text().replace("description:", "description: edited,", 1))
    deadline = time.monotonic() + 10
    while "edited," not in (rt.profiles.get("debian12-preseed").description or ""):  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the watch thread never loaded the edit"
        time.sleep(0.02)
    assert threading.current_thread().name not in walked_by
    # a template edit too: the set is reloaded, and the script is rendered from the edited file
    template = profiles_copy / "_snippets" / "boot" / "install.ipxe.j2"
    template.write_text(template.read_text() + "# edited while serving\n")
    deadline = time.monotonic() + 10
    while "# edited while serving" not in boot(client, MAC)[1]:
        assert time.monotonic() < deadline, "the edited template was never served"
        time.sleep(0.02)
