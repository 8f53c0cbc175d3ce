"""What the machine routes record and send beside their status: the events an admin reads (phase, MAC,
status, file) and the headers a firmware relies on (content types, caching of loaders)."""

from __future__ import annotations

from flask.testing import FlaskClient

from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import FAKE_IPXE_EFI, MAC, events_of, register


def test_a_loader_get_is_recorded_with_its_file_and_a_head_is_not(
    client: FlaskClient, runtime: Runtime
) -> None:
    head = client.head("/loaders/ipxe.efi")
    assert head.status_code == 200
    got = client.get("/loaders/ipxe.efi")
    assert got.status_code == 200 and got.data == FAKE_IPXE_EFI
    assert got.mimetype == "application/efi"
    assert got.headers["Cache-Control"] == "no-cache, max-age=0"  # revalidate: a loader may be replaced
    assert "Last-Modified" in got.headers and "ETag" in got.headers
    again = client.get("/loaders/ipxe.efi", headers={"If-None-Match": got.headers["ETag"]})
    assert again.status_code == 304  # conditional
    loader_events = [e for e in events_of(runtime) if e.summary == "loader ipxe.efi"]
    assert [(e.phase, e.detail["file"], e.detail["method"]) for e in loader_events] == [
        ("http", "ipxe.efi", "GET"),
        ("http", "ipxe.efi", "GET"),
    ]


def test_the_boot_script_is_plain_text(client: FlaskClient, runtime: Runtime) -> None:
    register(runtime)
    resp = client.get(f"/boot.ipxe?mac={MAC}")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    assert resp.get_data(as_text=True).startswith("#!ipxe")


def test_refused_answers_and_callbacks_are_recorded_against_the_machine(
    client: FlaskClient, runtime: Runtime
) -> None:
    register(runtime)
    mac = MacAddress.parse(MAC)
    assert client.get(f"/answer/{MAC}/preseed.cfg?token=wrong").status_code == 403
    assert client.get(f"/done/{MAC}?token=wrong").status_code == 403
    refused = [(e.summary, e.detail.get("status")) for e in events_of(runtime, mac) if "refused" in e.summary]
    assert refused == [("answer file preseed.cfg refused", 403), ("completion callback refused", 403)]
    assert all(e.phase == "http" for e in events_of(runtime, mac) if "refused" in e.summary)


def test_a_head_of_the_callback_ends_nothing(client: FlaskClient, runtime: Runtime) -> None:
    token = register(runtime)
    resp = client.head(f"/done/{MAC}?token={token}")
    assert resp.status_code == 405 and resp.data == b""
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None and system.state.value == "install"
