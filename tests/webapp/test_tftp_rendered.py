"""Per-MAC boot configs served over TFTP (``Runtime.tftp_dynamic``), rendered on request.

pxelinux asks ``pxelinux.cfg/01-<mac>`` and GRUB ``grub/grub.cfg-01-<mac>``: a system in install state gets
its installer (kernel, initrd and the answer URL with its token), and after the completion callback the
local disk. Names that are not per-MAC boot configs are not ours (None), so the TFTP root answers them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import netboot.runtime
from netboot.boot.tftpnames import GRUB_STUB
from netboot.inventory import SystemState
from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import (
    BASE,
    HAVE_DEBIAN,
    MAC,
    MACHINE_IP,
    SERVER,
    UNKNOWN,
    RuntimeFactory,
    events_of,
    line_of,
    register,
    stored,
    tokens_in,
)

CLIENT = (MACHINE_IP, 2070)  # the machine's own address (see conftest.register)
PXELINUX = "pxelinux.cfg/01-52-54-00-12-34-56"
GRUB = "grub/grub.cfg-01-52-54-00-12-34-56"


def tftp(rt: Runtime, name: str, client: tuple[str, int] = CLIENT) -> str | None:
    data = rt.core.tftp_file(name, client)
    return None if data is None else data.decode()


def test_pxelinux_config_of_a_system_in_install_state(runtime: Runtime) -> None:
    token = register(runtime)
    text = tftp(runtime, PXELINUX)
    assert text is not None
    assert "DEFAULT install" in text and "LOCALBOOT" not in text
    if HAVE_DEBIAN:
        assert f"  KERNEL {BASE}/files/debian12-preseed/debian-installer/amd64/linux\n" in text
        assert f"  INITRD {BASE}/files/debian12-preseed/debian-installer/amd64/initrd.gz\n" in text
    append = next(line for line in text.splitlines() if line.strip().startswith("APPEND "))
    assert f"url={BASE}/answer/{MAC}/preseed.cfg?token={token}" in append
    assert "auto=true" in append and "hostname=web1" in append
    assert tokens_in(text) == {token}
    event = events_of(runtime, MacAddress.parse(MAC))[-1]
    assert event.phase == "boot-script" and event.client_ip == CLIENT[0]
    assert event.detail == {"kind": "pxelinux", "decision": "install", "profile": "debian12-preseed"}


def test_grub_config_of_a_system_in_install_state(runtime: Runtime) -> None:
    token = register(runtime)
    text = tftp(runtime, GRUB)
    assert text is not None
    assert "menuentry 'netboot: install debian12-preseed'" in text
    if HAVE_DEBIAN:
        files = f"(tftp,{SERVER})/files/debian12-preseed/debian-installer/amd64"  # that GRUB has no http
        assert f"  linux '{files}/linux' " in text
        assert f"  initrd '{files}/initrd.gz'\n" in text
        assert f"'url={BASE}/answer/{MAC}/preseed.cfg?token={token}'" in text
    assert tokens_in(text) == {token}


@pytest.mark.parametrize("name", [
    "pxelinux.cfg/01-52-54-00-12-34-56",
    "/pxelinux.cfg/01-52-54-00-12-34-56",
    "boot/pxelinux.cfg/01-52-54-00-12-34-56",
    "pxelinux.cfg/01-52-54-00-12-34-56".upper().replace("PXELINUX.CFG", "pxelinux.cfg"),
    "grub/grub.cfg-01-52-54-00-12-34-56",
    "boot/grub/grub.cfg-01-52-54-00-12-34-56",
])
def test_per_mac_names_in_the_spellings_clients_send(runtime: Runtime, name: str) -> None:
    token = register(runtime)
    text = tftp(runtime, name)
    assert text is not None and tokens_in(text) == {token}


def test_after_completion_the_configs_boot_the_local_disk(runtime: Runtime) -> None:
    token = register(runtime)
    runtime.core.complete(MacAddress.parse(MAC), token, client_ip=CLIENT[0])
    pxelinux = tftp(runtime, PXELINUX)
    assert pxelinux is not None
    assert "DEFAULT local" in pxelinux and "LOCALBOOT 0" in pxelinux
    assert "KERNEL" not in pxelinux and "token" not in pxelinux
    grub = tftp(runtime, GRUB)
    assert grub is not None
    assert "boots from its local disk" in grub
    assert "linux " not in grub and "token" not in grub and "install" not in grub
    system = stored(runtime, MAC)
    assert system is not None and (system.state, system.token) == (SystemState.INSTALLED, None)


def test_an_unknown_mac_gets_the_local_config_and_is_recorded(runtime: Runtime) -> None:
    text = tftp(runtime, "pxelinux.cfg/01-52-54-00-aa-bb-cc")
    assert text is not None and "LOCALBOOT 0" in text
    system = stored(runtime, UNKNOWN)
    assert system is not None and system.state is SystemState.DISCOVERED
    assert [e.phase for e in events_of(runtime, system.mac)] == ["discovered", "boot-script"]


def test_an_unknown_mac_with_a_default_profile_installs(make_runtime: RuntimeFactory) -> None:
    rt = make_runtime(unknown_default="profile:debian12-preseed")
    rt.recorder.learn(CLIENT[0], MacAddress.parse(UNKNOWN))  # the unknown machine's own DHCP
    text = tftp(rt, "grub/grub.cfg-01-52-54-00-aa-bb-cc")
    assert text is not None
    system = stored(rt, UNKNOWN)
    assert system is not None and system.state is SystemState.INSTALL and system.token
    assert "menuentry 'netboot: install debian12-preseed'" in text
    if HAVE_DEBIAN:
        assert tokens_in(text) == {system.token}


@pytest.mark.parametrize("name", [
    "undionly.kpxe",
    "pxelinux.0",
    "pxelinux.cfg/C0A8000A",  # hex IP: pxelinux's next guess, answered by the TFTP root
    "pxelinux.cfg/01-52-54-00-12-34",  # too short
    "pxelinux.cfg/01-52-54-00-12-34-zz",
    "pxelinux.cfg/52-54-00-12-34-56",  # no ARP type prefix
    "pxelinux.cfg/01-52-54-00-12-34-56.bak",
    "grub/grub.cfg-0A00004D",
    "grub/grub.cfg-01-52-54-00-12-34-56/../../etc/passwd",
    "../pxelinux.cfg/01-52-54-00-12-34-56x",
    "",
])
def test_other_names_are_not_ours(runtime: Runtime, name: str) -> None:
    register(runtime)
    assert tftp(runtime, name) is None
    assert [str(s.mac) for s in runtime.store.systems.list()] == [MAC]  # nothing recorded


def test_catch_all_names_follow_the_mac_learned_for_the_client_ip(runtime: Runtime) -> None:
    token = register(runtime)
    pxe = ("10.0.0.77", 2070)
    # a client never seen in DHCP: the TFTP root answers (pxelinux falls back to its own default)
    assert tftp(runtime, "pxelinux.cfg/default", pxe) is None
    # ... but GRUB gets the stub that makes it ask by its own MAC, not a grub> prompt
    assert tftp(runtime, "grub/grub.cfg", pxe) == GRUB_STUB
    assert "$prefix/grub.cfg-01-$net_default_mac" in GRUB_STUB
    runtime.recorder.learn(pxe[0], MacAddress.parse(MAC))
    pxelinux = tftp(runtime, "pxelinux.cfg/default", pxe)
    grub = tftp(runtime, "grub/grub.cfg", pxe)
    assert pxelinux is not None and tokens_in(pxelinux) == {token}
    assert grub is not None and tokens_in(grub) == {token}
    # another client address learned nothing
    assert tftp(runtime, "pxelinux.cfg/default", ("10.0.0.78", 2070)) is None


def test_a_failing_boot_template_is_not_served(make_runtime: RuntimeFactory, profiles_copy: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    template = profiles_copy / "_snippets" / "boot" / "install.pxelinux.j2"
    template.write_text(template.read_text() + "  APPEND {{ vars.nosuch.x }}\n")
    line = line_of(template, "vars.nosuch")
    rt = make_runtime(profiles_dir=profiles_copy)
    register(rt)
    with caplog.at_level("ERROR", logger="netboot.tftp"):
        assert tftp(rt, PXELINUX) is None  # nothing partial: the client gets the root's answer (or none)
    assert f"install.pxelinux.j2:{line}:" in caplog.text and MAC in caplog.text


def test_a_config_asked_by_tftp_names_the_address_the_client_reached(
    make_runtime: RuntimeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server address configured or found on an interface: the grub.cfg names the server by the
    address its TFTP request came to (IP_PKTINFO), in the kernel path and in the answer-file URL, as a
    script fetched by HTTP does by its Host, never by a loopback fallback."""
    monkeypatch.setattr(netboot.runtime, "default_server_ip", lambda: None)  # a host with no address yet
    rt = make_runtime(server_ip=None)
    assert rt.core.site.server_ip is None
    token = register(rt)
    data = rt.core.tftp_file(GRUB, CLIENT, host="10.7.7.1")
    assert data is not None
    text = data.decode()
    assert f"url=http://10.7.7.1:8080/answer/{MAC}/preseed.cfg?token={token}" in text
    if HAVE_DEBIAN:
        assert "(tftp,10.7.7.1)/files/debian12-preseed/debian-installer/amd64/linux" in text
    assert "127.0.0.1" not in text
