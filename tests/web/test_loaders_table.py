"""A system's loaders table (UI) and ``loaders`` (API): what each firmware gets, taken from the boot core's
own DHCP answer, against the loaders each test says the server has (never the host's /usr/lib), with a
profile tree of its own: an installer whose kernel and initrd are files, one with only https URLs, a group."""

from __future__ import annotations

import html as htmllib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from netboot import registration
from netboot.arch import Arch
from netboot.config import LoadersConfig
from netboot.inventory import System, SystemState
from netboot.loaders import SHIM_FILES, Loaders
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.webapp import create_app

from .conftest import ADMIN, PROFILES, ApiClient, WebClient, _token, make_runtime

MAC = "52:54:00:12:34:56"
IPXE = ("undionly.kpxe", "ipxe.efi")
SHIM_ALL = tuple(SHIM_FILES)
PAYLOAD = "\"><script>alert(1)</script><img src=x onerror=alert(2)>"


@dataclass
class Site:
    runtime: Runtime
    app: Flask
    admin: WebClient
    api: ApiClient


def profile_tree(tmp: Path) -> Path:
    """The sample profiles plus: ``sb`` (shim-grub, kernel and initrd files in its data_dir), ``remote``
    (shim-grub, only https URLs), and a group ``lab`` that moves labelled machines to shim-grub."""
    profiles = tmp / "profiles"
    shutil.copytree(PROFILES, profiles)
    images = tmp / "images"
    (images / "d-i").mkdir(parents=True)
    (images / "d-i" / "linux").write_bytes(b"kernel")
    (images / "d-i" / "initrd.gz").write_bytes(b"initrd")
    (profiles / "sb").mkdir()
    (profiles / "sb" / "profile.yaml").write_text(
        f"parent: debian12-preseed\ndata_dir: {images}\nkernel: d-i/linux\ninitrd: [d-i/initrd.gz]\n"
        "boot_chain: shim-grub\n"
    )
    (profiles / "remote").mkdir()
    (profiles / "remote" / "profile.yaml").write_text(
        "parent: debian12-preseed\nkernel: https://mirror.example/linux\n"
        "initrd: [https://mirror.example/initrd.gz]\nboot_chain: shim-grub\n"
    )
    (profiles / "_groups").mkdir(exist_ok=True)
    (profiles / "_groups" / "lab.yaml").write_text(
        "profile: debian12-preseed\nboot_chain: shim-grub\nselector: {labels: {room: lab}}\n"
    )
    return profiles


def loaders_of(cfg: LoadersConfig, files: tuple[str, ...]) -> Loaders:
    """What the loader finder reports for a server that has exactly ``files`` (whatever this host has)."""
    where = Path("/srv/netboot/loaders")
    wanted = {Arch.BIOS: cfg.bios, Arch.UEFI_X64: "snponly.efi" if cfg.snponly else cfg.uefi_x64,
              Arch.UEFI_ARM64: cfg.uefi_arm64}
    by_arch = {arch: name for arch, name in wanted.items() if name in files}
    missing = {arch: name for arch, name in wanted.items() if name is not None and name not in files}
    shim_missing = {name: package for name, (_, package) in SHIM_FILES.items() if name not in files}
    return Loaders(by_arch, {name: where / name for name in files}, missing, shim_missing)


def site(tmp: Path, files: tuple[str, ...], **config: object) -> Site:
    """A runtime whose loaders are exactly ``files``, and its clients."""
    runtime = make_runtime(tmp / "data", **config)
    runtime = replace(runtime, profiles_dir=profile_tree(tmp))
    runtime.loaders = loaders_of(runtime.config.loaders, files)
    runtime.store.users.add(*ADMIN, role="admin")
    app = create_app(runtime)
    app.config["TESTING"] = True
    admin = WebClient(app.test_client())
    assert admin.login(*ADMIN).status_code == 302
    return Site(runtime, app, admin, ApiClient(app.test_client(), _token(runtime, ADMIN[0])))


@pytest.fixture
def sites(tmp_path: Path) -> Iterator[list[Site]]:
    made: list[Site] = []
    yield made
    for one in made:
        one.runtime.close()


def make(sites: list[Site], tmp: Path, files: tuple[str, ...] = IPXE + SHIM_ALL, **config: object) -> Site:
    made = site(tmp, files, **config)
    sites.append(made)
    return made


def rows(page: str) -> dict[str, str]:
    """The loaders table's rows by firmware key, as text (tags dropped, entities decoded)."""
    table = re.search(r'<section id="loaders">.*?</section>', page, re.S)
    assert table, page[:2000]
    out = {}
    for firmware, body in re.findall(r'<tr data-firmware="([^"]+)">(.*?)</tr>', table.group(0), re.S):
        out[firmware] = " ".join(htmllib.unescape(re.sub(r"<[^>]+>", "", body)).split())
    return out


def chain_shown(page: str) -> str:
    found = re.search(r'<dd id="boot-chain">(.*?)</dd>', page, re.S)
    assert found
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(1)).split())


def api_loaders(one: Site, mac: str = MAC) -> dict[str, dict[str, Any]]:
    resp = one.api.get(f"/api/v1/systems/{mac}")
    assert resp.status_code == 200, resp.json
    return {row["firmware"]: row for row in resp.get_json()["loaders"]}


# ---------------------------------------------------------------------------------------------- chains


def test_shim_grub_system_gets_shim_grub_and_grub_cfg_over_tftp(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "sb")
    page = one.admin.get(f"/ui/systems/{MAC}").text
    assert chain_shown(page) == "shim-grub from profile sb"
    table = rows(page)
    assert list(table) == ["bios", "uefi-x64", "uefi-x64-http", "uefi-arm64"]
    uefi = table["uefi-x64"]
    assert uefi.startswith("UEFI x64 PXE shimx64.efi over TFTP found (shim-grub)"), uefi
    assert "grubx64.efi over TFTP" in uefi
    assert "mmx64.efi, fbx64.efi" in uefi  # beside it
    assert f"grub/grub.cfg-01-{MAC} over TFTP" in uefi
    assert "kernel and initrd over TFTP" in uefi
    http = table["uefi-x64-http"]
    image = f"http://10.0.0.1:8080/shim-grub/{MAC.replace(':', '-')}.img"
    assert http.startswith(f"UEFI x64 HTTP Boot {image} over HTTP found (shim-grub)"), http
    assert f"grub/grub.cfg-01-{MAC} over TFTP" in http and "kernel and initrd over TFTP" in http
    assert "a disk image holding shimx64.efi, grubx64.efi, mmx64.efi, started from a RAM disk" in http
    # BIOS has no Secure Boot: unchanged
    assert table["bios"].startswith("BIOS undionly.kpxe over TFTP found (ipxe)"), table["bios"]
    assert f"boot.ipxe?mac={MAC} over HTTP" in table["bios"]
    assert "kernel and initrd over HTTP" in table["bios"]
    # the grub.cfg GRUB reads is previewed, loading the kernel over TFTP from the profile's data_dir
    grub = re.search(rf"grub\.cfg-01-{MAC} \(what GRUB reads.*?<pre class=\"file\">(.*?)</pre>", page, re.S)
    assert grub, page
    assert "linux '(tftp,10.0.0.1)/files/sb/d-i/linux'" in htmllib.unescape(grub.group(1))


def test_ipxe_system_gets_ipxe_everywhere(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "debian12-preseed")
    page = one.admin.get(f"/ui/systems/{MAC}").text
    table = rows(page)
    assert table["bios"].startswith("BIOS undionly.kpxe over TFTP found (ipxe)")
    uefi = table["uefi-x64"]
    assert uefi.startswith("UEFI x64 PXE ipxe.efi over TFTP found (ipxe)"), uefi
    assert f"boot.ipxe?mac={MAC} over HTTP" in uefi and "kernel and initrd over HTTP" in uefi
    assert "shimx64" not in uefi and "grub" not in uefi
    # UEFI HTTP Boot gets the same iPXE by URL
    http = table["uefi-x64-http"]
    assert http.startswith("UEFI x64 HTTP Boot http://10.0.0.1:8080/loaders/ipxe.efi over HTTP found"), http
    # no ARM64 loader configured: nothing, and where to set one
    assert "no boot file" in table["uefi-arm64"] and "set loaders.uefi-arm64" in table["uefi-arm64"]
    assert "grub.cfg-01" not in page  # no GRUB preview on the ipxe chain


def test_the_table_follows_the_loader_configuration(sites: list[Site], tmp_path: Path) -> None:
    # snponly: the decision serves snponly.efi to UEFI x64; the table says so because it asks the decision
    one = make(sites, tmp_path, (*IPXE, "snponly.efi"), loaders=LoadersConfig(snponly=True))
    registration.register(one.runtime, MAC, "debian12-preseed")
    assert api_loaders(one)["uefi-x64"]["boot_file"] == "snponly.efi"


def test_inherited_chain_shows_its_source(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "debian12-preseed", labels={"room": "lab"})
    page = one.admin.get(f"/ui/systems/{MAC}").text
    assert chain_shown(page) == "shim-grub from group lab"
    assert rows(page)["uefi-x64"].startswith("UEFI x64 PXE shimx64.efi")
    # the system's own setting beats the group's, in the table too
    registration.set_fields(one.runtime, MAC, "test", boot_chain="ipxe")
    page = one.admin.get(f"/ui/systems/{MAC}").text
    assert chain_shown(page) == "ipxe set on this system"
    assert rows(page)["uefi-x64"].startswith("UEFI x64 PXE ipxe.efi")


def test_site_default_chain(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, boot_chain="shim-grub")
    registration.register(one.runtime, MAC, "debian12-preseed")
    page = one.admin.get(f"/ui/systems/{MAC}").text
    assert chain_shown(page) == "shim-grub the site default (boot-chain)"
    assert api_loaders(one)["uefi-x64"]["boot_file"] == "shimx64.efi"


# -------------------------------------------------------------------------------------- getting nothing


def test_missing_shim_files_name_the_packages(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, IPXE)
    assert one.runtime.loaders.shim_missing  # the premise: none of the Secure Boot files here
    registration.register(one.runtime, MAC, "sb")
    uefi = rows(one.admin.get(f"/ui/systems/{MAC}").text)["uefi-x64"]
    assert uefi.startswith("UEFI x64 PXE no boot file missing shimx64.efi, grubx64.efi"), uefi
    assert "shimx64.efi (package shim-signed), grubx64.efi (package grub-efi-amd64-signed)" in uefi
    assert "apt-get install shim-signed grub-efi-amd64-signed" in uefi  # the decision's own words
    listing = one.admin.get("/ui/systems").text
    cell = re.search(r'<td data-label="Boot chain"[^>]*>(.*?)</td>', listing, re.S)
    assert cell and "shim-grub" in cell.group(1) and "missing shimx64.efi, grubx64.efi" in cell.group(1)
    row = api_loaders(one)["uefi-x64"]
    assert row["boot_file"] is None and row["missing"] == ["shimx64.efi", "grubx64.efi"]


def test_missing_mokmanager_is_said_but_does_not_stop_the_chain(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, (*IPXE, "shimx64.efi", "grubx64.efi"))
    registration.register(one.runtime, MAC, "sb")
    uefi = rows(one.admin.get(f"/ui/systems/{MAC}").text)["uefi-x64"]
    assert uefi.startswith("UEFI x64 PXE shimx64.efi over TFTP found"), uefi
    assert "mmx64.efi missing (package shim-helpers-amd64-signed)" in uefi
    assert "apt-get install shim-helpers-amd64-signed" in uefi
    row = api_loaders(one)["uefi-x64"]
    assert row["missing"] == []
    assert [(f["name"], f["found"], f["always"]) for f in row["then"]] == [
        ("grubx64.efi", True, True), ("mmx64.efi", False, False), ("fbx64.efi", False, False)
    ]
    cell = re.search(r'<td data-label="Boot chain".*?</td>', one.admin.get("/ui/systems").text, re.S)
    assert cell and "missing" not in cell.group(0)


def test_missing_ipxe_loader_is_named(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, ("ipxe.efi",))
    registration.register(one.runtime, MAC, "debian12-preseed")
    bios = rows(one.admin.get(f"/ui/systems/{MAC}").text)["bios"]
    assert bios.startswith("BIOS no boot file missing undionly.kpxe")
    assert "undionly.kpxe is not in loaders.dir nor /usr/lib/ipxe" in bios


def test_https_only_kernel_cannot_install_on_shim_grub(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "remote")
    page = one.admin.get(f"/ui/systems/{MAC}").text
    uefi = rows(page)["uefi-x64"]
    assert "kernel and initrd over" not in uefi
    assert "only a URL here, not a file in its data_dir" in uefi and "does not install" in uefi
    # as the grub.cfg it would get says: no linux line, the local-disk entry
    grub = re.search(rf"grub\.cfg-01-{MAC} \(what GRUB reads.*?<pre class=\"file\">(.*?)</pre>", page, re.S)
    assert grub and "linux " not in grub.group(1) and "boot from the local disk" in grub.group(1)
    row = api_loaders(one)
    assert row["uefi-x64"]["kernel_via"] is None
    assert row["bios"]["kernel_via"] == "http"  # iPXE fetches the https URL itself


def test_installed_machine_with_skip_gets_no_boot_file(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "sb")
    registration.set_fields(one.runtime, MAC, "test", state="installed")
    table = rows(one.admin.get(f"/ui/systems/{MAC}").text)
    for firmware in ("bios", "uefi-x64", "uefi-x64-http", "uefi-arm64"):
        assert "no boot file" in table[firmware], table[firmware]
        assert "local_boot skip: the firmware goes on to its next boot device" in table[firmware]
    # with exit, the loaders run and hand back: iPXE's script exits, GRUB exits
    registration.set_fields(one.runtime, MAC, "test", local_boot="exit")
    table = rows(one.admin.get(f"/ui/systems/{MAC}").text)
    assert "boot.ipxe boots the local disk (exit)" in table["bios"]
    assert table["uefi-x64"].startswith("UEFI x64 PXE shimx64.efi")
    assert "grub.cfg boots the local disk (GRUB exit)" in table["uefi-x64"]


# -------------------------------------------------------------------------------------------- the API


def test_api_system_carries_the_loaders(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "sb")
    loaders = api_loaders(one)
    assert loaders["uefi-x64"] == {
        "firmware": "uefi-x64", "label": "UEFI x64 PXE", "chain": "shim-grub", "boot_file": "shimx64.efi",
        "via": "tftp", "found": True,
        "then": [{"name": "grubx64.efi", "found": True, "package": None, "always": True},
                 {"name": "mmx64.efi", "found": True, "package": None, "always": False},
                 {"name": "fbx64.efi", "found": True, "package": None, "always": False}],
        "config": f"grub/grub.cfg-01-{MAC}", "config_via": "tftp", "kernel_via": "tftp", "missing": [],
        "note": None,
    }
    http = loaders["uefi-x64-http"]
    assert http["boot_file"] == f"http://10.0.0.1:8080/shim-grub/{MAC.replace(':', '-')}.img"
    assert (http["chain"], http["via"], http["found"], http["then"]) == ("shim-grub", "http", True, [])
    assert (http["config_via"], http["kernel_via"], http["missing"]) == ("tftp", "tftp", [])
    assert loaders["bios"]["boot_file"] == "undionly.kpxe" and loaders["bios"]["chain"] == "ipxe"
    listed = one.api.get("/api/v1/systems").get_json()["systems"]
    assert [s["loaders"] for s in listed] == [list(loaders.values())]  # one shape in the list too


# ---------------------------------------------------------------------------------------------- escaping


def test_the_table_escapes_what_it_shows(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, IPXE, loaders=LoadersConfig(bios=PAYLOAD))
    # an install-state system whose profile is gone: the reason quotes its (unchecked) profile name
    one.runtime.store.systems.add(
        System(mac=MacAddress.parse(MAC), profile=PAYLOAD, state=SystemState.INSTALL, token="t")
    )
    # and an installing one whose BIOS loader, named in the configuration, is missing
    other = "52:54:00:00:00:02"
    registration.register(one.runtime, other, "debian12-preseed")
    for mac, least in ((MAC, 4), (other, 1)):  # each row's reason; the BIOS row's missing file
        page = one.admin.get(f"/ui/systems/{mac}").text
        section = re.search(r'<section id="loaders">.*?</section>', page, re.S)
        assert section
        for raw in ("<script>alert(1)", "<img src=x"):
            assert raw not in page
        assert section.group(0).count("&lt;script&gt;alert(1)&lt;/script&gt;") >= least, mac
    listing = one.admin.get("/ui/systems").text
    assert "<script>alert(1)" not in listing and "missing &#34;&gt;&lt;script&gt;" in listing


def test_a_discovered_machine_gets_what_unknown_default_says(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path, unknown_default="menu", boot_chain="shim-grub")
    one.runtime.store.systems.seen(MacAddress.parse(MAC), arch="uefi-x64", uuid=None, now=1.0)
    table = rows(one.admin.get(f"/ui/systems/{MAC}").text)
    assert "boot.ipxe is the profile menu" in table["bios"]
    assert table["uefi-x64"].startswith("UEFI x64 PXE shimx64.efi")
    assert "GRUB has no profile menu: grub.cfg boots the local disk" in table["uefi-x64"]


def test_showing_the_loaders_changes_nothing(sites: list[Site], tmp_path: Path) -> None:
    one = make(sites, tmp_path)
    registration.register(one.runtime, MAC, "sb")
    mac = MacAddress.parse(MAC)
    before = one.runtime.store.systems.get(mac)
    one.runtime.store.events.wait_idle()
    events = len(one.runtime.store.events.list(mac, limit=1000))
    for url in (f"/ui/systems/{MAC}", "/ui/systems"):
        assert one.admin.get(url).status_code == 200
    assert len(api_loaders(one)) == 4
    one.runtime.store.flush()
    one.runtime.store.events.wait_idle()
    assert one.runtime.store.systems.get(mac) == before  # not "seen", no token bound
    assert len(one.runtime.store.events.list(mac, limit=1000)) == events
