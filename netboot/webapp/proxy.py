"""Trusted reverse proxies: believe ``X-Forwarded-For``/``-Proto`` only from the configured addresses.

Werkzeug's ``ProxyFix`` trusts a fixed number of hops from anyone; here the peer itself must be inside
``http.trusted-proxies``. From a trusted peer, the client is the rightmost ``X-Forwarded-For`` entry that
is not itself a trusted proxy (so a chain of trusted proxies works and a client cannot prepend a fake
address), and the scheme is the nearest proxy's ``X-Forwarded-Proto``. From anyone else every
``X-Forwarded-*`` and ``Forwarded`` header is removed, so nothing further in can be fooled by them. The
audit log and the sign-in limiter read ``REMOTE_ADDR``; the session cookie's ``Secure`` flag (auto mode)
follows ``wsgi.url_scheme``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, ip_address
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the proxy headers removed from requests of untrusted peers (WSGI environ names)
PROXY_HEADERS = (
    "HTTP_X_FORWARDED_FOR",
    "HTTP_X_FORWARDED_PROTO",
    "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PORT",
    "HTTP_X_FORWARDED_PREFIX",
    "HTTP_X_FORWARDED_BY",
    "HTTP_X_REAL_IP",
    "HTTP_FORWARDED",
)


def _ipv4(text: str) -> IPv4Address | None:
    """An IPv4 address (also written IPv6-mapped, as dual-stack sockets report it), else None."""
    try:
        found = ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(found, IPv6Address):
        return found.ipv4_mapped
    return found


class TrustedProxies:
    """WSGI middleware applying the rule in the module docs in front of ``app``."""

    def __init__(self, app: WsgiApp, trusted: Iterable[IPv4Network]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def is_trusted(self, address: str) -> bool:
        found = _ipv4(address)
        return found is not None and any(found in net for net in self.trusted)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        peer = str(environ.get("REMOTE_ADDR") or "")
        if self.trusted and self.is_trusted(peer):
            self._believe(environ)
        for name in PROXY_HEADERS:
            environ.pop(name, None)
        return self.app(environ, start_response)

    def _believe(self, environ: dict[str, Any]) -> None:
        hops = [h.strip() for h in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",") if h.strip()]
        client: str | None = None
        for hop in reversed(hops):
            if _ipv4(hop) is None:  # not an address (a name, "unknown", garbage): stop believing here
                break
            client = hop
            if not self.is_trusted(hop):
                break
        if client is not None:
            environ["netboot.proxy_peer"] = environ.get("REMOTE_ADDR")
            environ["REMOTE_ADDR"] = str(_ipv4(client))
        protos = [p.strip().lower() for p in str(environ.get("HTTP_X_FORWARDED_PROTO", "")).split(",")]
        if protos and protos[-1] in ("http", "https"):
            environ["wsgi.url_scheme"] = protos[-1]
