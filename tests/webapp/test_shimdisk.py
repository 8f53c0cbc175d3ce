"""The shim-grub chain's UEFI HTTP Boot image (netboot.shimdisk) and its route, read back with mtools.

The image is built from Debian's own shim, GRUB and MokManager (make test installs them and mtools) and
then read by mtools as the firmware's FAT driver would read it: the loaders byte for byte, the config
written for each machine, nothing else. The QEMU proof that OVMF boots it under Secure Boot is
tests/qemu/test_secure_boot.py.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

import netboot.runtime
from netboot.loaders import find_shim_files
from netboot.mac import MacAddress
from netboot.runtime import Runtime
from netboot.shimdisk import CONTENT_TYPE, SLOT_SIZE, ShimDisk, ShimDiskError, grub_config
from netboot.store.events import StoredEvent

from .conftest import RuntimeFactory, app_for, events_of

MAC = MacAddress.parse("52:54:00:12:34:56")
FOUND, LACKING = find_shim_files(None)


def mtools(*argv: str) -> bytes:
    return subprocess.run(argv, check=True, capture_output=True, timeout=30).stdout


def read(image: bytes, tmp_path: Path, inside: str) -> bytes:
    """One file of ``image``, as mtools reads it."""
    disk = tmp_path / "disk.img"
    disk.write_bytes(image)
    return mtools("mtype", "-i", str(disk), f"::/{inside}")


def listing(image: bytes, tmp_path: Path, folder: str) -> list[str]:
    disk = tmp_path / "disk.img"
    disk.write_bytes(image)
    lines = mtools("mdir", "-b", "-i", str(disk), f"::/{folder}").decode().split()
    return sorted(line.rstrip("/").rsplit("/", 1)[-1] for line in lines)


@pytest.fixture(scope="module")
def disk() -> ShimDisk:
    assert not LACKING, f"make test installs {sorted(set(LACKING.values()))}"
    return ShimDisk(FOUND)


def test_the_image_holds_shim_grub_and_mokmanager_byte_for_byte(disk: ShimDisk, tmp_path: Path) -> None:
    image = disk.image("10.0.0.1", MAC)
    assert listing(image, tmp_path, "EFI/BOOT") == ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi"]
    assert listing(image, tmp_path, "") == ["EFI", "grub"]
    for inside, served in (("BOOTX64.EFI", "shimx64.efi"), ("grubx64.efi", "grubx64.efi"),
                           ("mmx64.efi", "mmx64.efi")):
        assert read(image, tmp_path, f"EFI/BOOT/{inside}") == FOUND[served].read_bytes(), inside
    # no fallback beside shim: shim started as BOOTX64.EFI would run it instead of GRUB
    assert "fbx64.efi" in FOUND and "fbx64.efi" not in listing(image, tmp_path, "EFI/BOOT")


def test_each_machine_gets_its_own_config_and_nothing_else_changes(disk: ShimDisk, tmp_path: Path) -> None:
    other = MacAddress.parse("52:54:00:65:43:21")
    one, two = disk.image("10.0.0.1", MAC), disk.image("192.168.7.2", other)
    config = read(one, tmp_path, "grub/grub.cfg").decode()
    assert len(config.encode()) == SLOT_SIZE and config.startswith(grub_config("10.0.0.1", MAC))
    assert 'configfile "(tftp,10.0.0.1)/grub/grub.cfg-01-52:54:00:12:34:56"' in config
    assert "net_bootp\n" in config and config.rstrip(" \n").endswith("exit\n#")
    assert 'configfile "(tftp,192.168.7.2)/grub/grub.cfg-01-52:54:00:65:43:21"' in read(
        two, tmp_path, "grub/grub.cfg").decode()
    assert len(one) == len(two)
    differ = [i for i, (a, b) in enumerate(zip(one, two, strict=True)) if a != b]
    offset = one.find(config.encode())
    assert differ and offset <= differ[0] and differ[-1] < offset + SLOT_SIZE  # only the slot differs


@pytest.mark.parametrize("mac", [MAC, None])
def test_the_config_passes_grubs_own_script_check(mac: MacAddress | None, tmp_path: Path) -> None:
    script = tmp_path / "grub.cfg"
    script.write_text(grub_config("10.0.0.1", mac))
    subprocess.run(["grub-script-check", str(script)], check=True, capture_output=True, timeout=30)


def test_an_upgraded_loader_is_in_the_next_image(tmp_path: Path) -> None:
    """apt replacing shim (its updates carry revocations) is served at once, as over TFTP."""
    shim = tmp_path / "shimx64.efi"
    shim.write_bytes(FOUND["shimx64.efi"].read_bytes())
    disk = ShimDisk({**FOUND, "shimx64.efi": shim})
    assert read(disk.image("10.0.0.1", MAC), tmp_path, "EFI/BOOT/BOOTX64.EFI") == shim.read_bytes()
    shim.write_bytes(b"MZ a newer shim " * 1000)
    assert read(disk.image("10.0.0.1", MAC), tmp_path, "EFI/BOOT/BOOTX64.EFI") == b"MZ a newer shim " * 1000


def test_the_image_that_names_no_machine_takes_grubs_first_card(disk: ShimDisk, tmp_path: Path) -> None:
    config = read(disk.image("boot.lab.test", None), tmp_path, "grub/grub.cfg").decode()
    assert 'configfile "(tftp,boot.lab.test)/grub/grub.cfg-01-$net_efinet0_dhcp_mac"' in config


@pytest.mark.parametrize("server", ["10.0.0.1;reboot", "a b", "10.0.0.1)/x", 'x"', "", "-boot", "x\nexit",
                                    "fe80::1", "a" * 300])
def test_a_server_that_is_not_an_address_or_a_name_is_refused(disk: ShimDisk, server: str) -> None:
    with pytest.raises(ValueError, match="not an IPv4 address or a host name"):
        disk.image(server, MAC)


def test_the_longest_host_name_fits_the_slot(disk: ShimDisk, tmp_path: Path) -> None:
    name = ".".join(["a" * 63] * 3 + ["b" * 61])
    assert len(name) == 253
    assert f"(tftp,{name})/" in read(disk.image(name, MAC), tmp_path, "grub/grub.cfg").decode()


def test_without_mtools_or_grub_the_build_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ShimDiskError, match=r"grubx64\.efi not found: the image needs shim and GRUB"):
        ShimDisk({"shimx64.efi": FOUND["shimx64.efi"]}).image("10.0.0.1", MAC)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ShimDiskError, match=r"mformat, mmd, mcopy not found \(apt-get install mtools\)"):
        ShimDisk(FOUND).image("10.0.0.1", MAC)


# ------------------------------------------------------------------------------------------- the route


def image_events(rt: Runtime) -> list[StoredEvent]:
    return [e for e in events_of(rt) if e.summary == "shim-grub disk image (UEFI HTTP Boot)"]


def test_route_serves_the_machines_image_as_a_ram_disk(runtime: Runtime, tmp_path: Path) -> None:
    client: FlaskClient = app_for(runtime).test_client()
    url = "/shim-grub/52-54-00-12-34-56.img"
    head = client.head(url)  # OVMF asks HEAD first, for the size and the type
    assert head.status_code == 200 and head.content_type == CONTENT_TYPE == "application/vnd.efi-img"
    got = client.get(url)
    assert got.status_code == 200 and got.content_type == CONTENT_TYPE
    assert int(head.headers["Content-Length"]) == len(got.data)
    # the configured server-ip (10.0.0.1 in these tests), not the Host the client used
    assert "(tftp,10.0.0.1)/grub/grub.cfg-01-52:54:00:12:34:56" in read(got.data, tmp_path,
                                                                        "grub/grub.cfg").decode()
    (event,) = image_events(runtime)  # the GET, not the HEAD
    assert event.mac == MAC and event.detail["bytes"] == len(got.data)
    any_image = client.get("/shim-grub/any.img")
    assert "$net_efinet0_dhcp_mac" in read(any_image.data, tmp_path, "grub/grub.cfg").decode()
    for bad in ("/shim-grub/52-54-00-12-34.img", "/shim-grub/..%2fx.img", "/shim-grub/x.img",
                "/shim-grub/52-54-00-12-34-56.iso"):
        assert client.get(bad).status_code == 404, bad


def test_route_without_server_ip_names_the_host_the_client_reached(
    make_runtime: RuntimeFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No server-ip and no address found for one (netboot.runtime.resolve_server_ip): the image names the
    address in the client's Host header, the one its firmware reached us at."""
    monkeypatch.setattr(netboot.runtime, "default_server_ip", lambda: None)
    client = app_for(make_runtime(server_ip=None)).test_client()
    url = "/shim-grub/52-54-00-12-34-56.img"
    got = client.get(url, headers={"Host": "10.9.8.7:8080"})
    assert "(tftp,10.9.8.7)/grub/" in read(got.data, tmp_path, "grub/grub.cfg").decode()
    # a Host header that would write GRUB commands into the image is refused, not built
    refused = client.get(url, headers={"Host": "x;reboot"})
    assert refused.status_code == 400 and b"names no address" in refused.data
