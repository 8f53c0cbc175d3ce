"""The DNS answers for registered hosts: pure, over the store (dnslib does the wire format).

netboot is authoritative for one domain (``dns.domain``): A for a registered hostname (its reserved IP, else
its current lease), PTR for those addresses, NXDOMAIN for other names in the domain or in the served subnet's
reverse zone, REFUSED for everything else (it is not a recursive resolver and must not become an open one).
"""

from __future__ import annotations

import time
from ipaddress import IPv4Address, IPv4Network

from dnslib import PTR, QTYPE, RCODE, RR, SOA, A, DNSLabel, DNSRecord

from netboot.store import Store


class HostResolver:
    """A dnslib resolver (``resolve(request, handler) -> reply``) for registered systems."""

    def __init__(
        self, store: Store, domain: str, *, ttl: int = 300, subnet: IPv4Network | None = None
    ) -> None:
        self._store = store
        self._zone = DNSLabel(domain.strip(".") + ".")
        self._ttl = ttl
        self._subnet = subnet
        self._soa = RR(
            self._zone,
            QTYPE.SOA,
            ttl=ttl,
            rdata=SOA(
                DNSLabel(f"ns.{self._zone}"),
                DNSLabel(f"hostmaster.{self._zone}"),
                (int(time.time()) & 0x7FFFFFFF, 3600, 600, 86400, ttl),
            ),
        )

    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        reply.header.ra = 0
        qname = request.q.qname
        qtype = QTYPE[request.q.qtype]
        if qname.matchSuffix(self._zone):
            reply.header.aa = 1
            self._forward(reply, qname, qtype)
        elif qtype in ("PTR", "ANY") and str(qname).endswith(".in-addr.arpa."):
            self._reverse(reply, qname)
        else:
            reply.header.rcode = RCODE.REFUSED
        return reply

    def _forward(self, reply: DNSRecord, qname: DNSLabel, qtype: str) -> None:
        if qname == self._zone:
            if qtype in ("SOA", "ANY"):
                reply.add_answer(self._soa)
            else:
                reply.add_auth(self._soa)
            return
        host = str(qname.stripSuffix(self._zone)).rstrip(".").lower()
        address = self._address_of(host)
        if address is None:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa)
        elif qtype in ("A", "ANY"):
            reply.add_answer(RR(qname, QTYPE.A, ttl=self._ttl, rdata=A(str(address))))
        else:
            reply.add_auth(self._soa)  # NODATA: the name exists, not with this type

    def _reverse(self, reply: DNSRecord, qname: DNSLabel) -> None:
        labels = str(qname).removesuffix(".in-addr.arpa.").split(".")
        try:
            address = IPv4Address(".".join(reversed(labels)))
        except ValueError:
            reply.header.rcode = RCODE.REFUSED
            return
        name = self._name_of(address)
        if name is not None:
            reply.header.aa = 1
            reply.add_answer(RR(qname, QTYPE.PTR, ttl=self._ttl, rdata=PTR(f"{name}.{self._zone}")))
        elif self._subnet is not None and address in self._subnet:
            reply.header.aa = 1
            reply.header.rcode = RCODE.NXDOMAIN
        else:
            reply.header.rcode = RCODE.REFUSED

    def _address_of(self, hostname: str) -> IPv4Address | None:
        system = self._store.systems.by_hostname(hostname)
        if system is None:
            return None
        if system.ip is not None:
            return system.ip
        lease = self._store.leases.active_for(system.mac, time.time())
        return lease.ip if lease is not None else None

    def _name_of(self, address: IPv4Address) -> str | None:
        system = self._store.systems.by_ip(address)
        if system is None:
            lease = self._store.leases.by_ip(address)
            if lease is not None and lease.active(time.time()):
                system = self._store.systems.get(lease.mac)
        return system.hostname if system is not None and system.hostname else None
