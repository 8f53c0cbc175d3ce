"""The daemon's own lease pool (``netboot.daemon.lease_pool``) never hands out our address or the router's.

The pool tests in ``tests/dhcp`` build their pools with exclusions by hand; this is the wiring
``netboot serve`` uses, from a configuration, without sockets or root.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from netboot.config import DhcpConfig
from netboot.daemon import lease_pool
from netboot.dhcp.leases import ClientKey
from netboot.mac import MacAddress

from .conftest import SERVER, RuntimeFactory

ROUTER = IPv4Address("10.0.0.5")
FIRST, LAST = IPv4Address("10.0.0.1"), IPv4Address("10.0.0.7")
T0 = 1_000_000.0


def full(**changes: object) -> DhcpConfig:
    fields: dict[str, object] = dict(
        mode="full", subnet=IPv4Network("10.0.0.0/24"), range_first=FIRST, range_last=LAST, router=ROUTER
    )
    fields.update(changes)
    return DhcpConfig(**fields)  # type: ignore[arg-type]


def client(n: int) -> ClientKey:
    return ClientKey(MacAddress.from_bytes(bytes([0x52, 0x54, 0, 0, 9, n])), None)


def test_every_address_but_ours_and_the_routers_is_given(make_runtime: RuntimeFactory) -> None:
    pool = lease_pool(make_runtime(dhcp=full()))
    assert pool is not None
    given = []
    for n in range(10):  # more clients than the range holds
        address = pool.choose(client(n), None, T0)
        if address is None:
            break
        pool.hold_offer(address, client(n), T0)
        given.append(pool.commit(address, client(n), None, T0).ip)
    server = IPv4Address(SERVER)
    in_range = (IPv4Address(int(FIRST) + i) for i in range(7))
    assert sorted(given) == [ip for ip in in_range if ip not in (server, ROUTER)]
    # asking for them by name (REQUEST in INIT-REBOOT, option 50) gets them neither
    for taken in (server, ROUTER):
        assert pool.choose(client(40), taken, T0) is None
        assert not pool.allocatable(taken, client(40), T0)


def test_a_router_outside_the_range_excludes_nothing_else(make_runtime: RuntimeFactory) -> None:
    pool = lease_pool(make_runtime(dhcp=full(router=IPv4Address("10.0.0.254"))))
    assert pool is not None
    assert pool.choose(client(1), IPv4Address("10.0.0.5"), T0) == IPv4Address("10.0.0.5")
    assert pool.choose(client(2), IPv4Address(SERVER), T0) != IPv4Address(SERVER)


def test_proxy_mode_has_no_pool(make_runtime: RuntimeFactory) -> None:
    assert lease_pool(make_runtime(dhcp=DhcpConfig(mode="proxy"))) is None
