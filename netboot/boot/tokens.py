"""Who may hold a machine's install token, and for how long (pure rules; the core applies them).

An install token authorises a machine's answer files and its completion callback, so it must reach that
machine and nobody else on the install network:

* It is put on a boot script (or a TFTP boot config) only for a request from an address the machine used
  in its own boot traffic: the address netboot leased it (full mode), or the one it used or reported in its
  PXE / iPXE DHCP exchange (proxy mode: ``ciaddr``, the 4011 request, the requested address). With DHCP
  off, the first address that fetched the boot script is the machine's. A script asked for the MAC from any
  other address is still a valid script, without the token: a misconfigured relay degrades to "no answer
  file" (logged), not to a leak.
* Using the token (answer file, ``/done``) is allowed only from those addresses too, and only until it
  expires: a configured time after the last boot script that carried it was served. ``/done`` ends it.

What this cannot stop is a client that spoofs both the MAC and the IP address on the wire (docs/security.md).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from netboot.inventory import System, SystemState


def machine_addresses(system: System, learned: Iterable[str]) -> set[str]:
    """Addresses that are the machine's: those DHCP saw it use, and the one its token was bound to."""
    out = set(learned)
    if system.token_ip:
        out.add(system.token_ip)
    return out


def script_binding(
    system: System, client_ip: str | None, learned: Iterable[str], *, dhcp: bool
) -> str | None:
    """The address to bind the token to for a script served to ``client_ip``; None: withhold the token."""
    if client_ip is None:
        return None
    addresses = machine_addresses(system, learned)
    if client_ip in addresses:
        return client_ip
    if not dhcp and system.token_ip is None:
        return client_ip  # DHCP off: the first address that fetches the script is the machine's
    return None


#: Seconds within which a boot script asked again keeps the stored token binding instead of writing a new
#: expiry: a machine (or a benchmark) fetching its script repeatedly costs no store write each time. The
#: token then lives at least ``ttl - TOKEN_REFRESH`` seconds after the last script, and never longer than
#: ``ttl``.
TOKEN_REFRESH = 60.0


def binding_current(system: System, bound: str, now: float, ttl: float) -> bool:
    """Whether ``system``'s stored binding already names ``bound`` and expires less than
    :data:`TOKEN_REFRESH` before a new one would: then there is nothing to make durable."""
    return (
        system.token_ip == bound
        and system.token_expires is not None
        and now + ttl - system.token_expires < TOKEN_REFRESH
    )


def refusal(
    system: System, token: str | None, client_ip: str | None, learned: Iterable[str], now: float
) -> str | None:
    """Why ``token`` from ``client_ip`` may not act for ``system`` now; None when it may."""
    if system.state is not SystemState.INSTALL or system.token is None:
        return f"{system.mac} is not being installed (state {system.state.value})"
    if not token or not hmac.compare_digest(system.token.encode(), token.encode()):
        return f"wrong token for {system.mac}"
    if system.token_expires is None:
        return f"the token of {system.mac} was never served to it in a boot script"
    if now >= system.token_expires:
        return f"the token of {system.mac} expired (its boot script was served too long ago)"
    if client_ip is None or client_ip not in machine_addresses(system, learned):
        bound = ", ".join(sorted(machine_addresses(system, learned))) or "none known"
        return f"token of {system.mac} used from {client_ip}, not from the machine's address ({bound})"
    return None
