"""The boot core: the one object asked at every phase of a machine's boot (pixiecore's ``Booter``).

===================  ==================================================  ==================================
phase                asked by                                            method
===================  ==================================================  ==================================
DHCP / ProxyDHCP     ``dhcp/service.py`` for every boot client            :meth:`BootCore.dhcp`
TFTP config files    the TFTP resolver chain (pxelinux / GRUB names)      :meth:`BootCore.tftp_file`
boot script          ``GET /boot.ipxe?mac=``                              :meth:`BootCore.boot_config`
answer file          ``GET /answer/<mac>/<file>?token=``                  :meth:`BootCore.answer`
completion           ``/done/<mac>?token=``                               :meth:`BootCore.complete`
preview              the CLI's ``render`` and the UI (no side effects)    :meth:`BootCore.preview`
===================  ==================================================  ==================================

One decision (:func:`netboot.boot.choose.choose`) serves every phase, so DHCP and HTTP never disagree: a
machine whose next boot is its disk gets no boot file at DHCP time (unless its ``local_boot`` asks for
the iPXE hand-back), and the same machine asking for its script anyway gets the local-boot script.

Lifecycle (what stops reinstall loops): a system in state ``install`` gets its installer and a per-system
token on the kernel line; the token authorises its answer files and its completion callback, and dies when
the callback arrives (state becomes ``installed``, so the next netboot boots the local disk). The token
reaches only the machine's own address and expires (:mod:`netboot.boot.tokens`); a menu choice is taken
only from the address the menu was served to, shortly after. What a machine changes is audited.

The core sees the rest of netboot only through :mod:`netboot.boot.ports`; nothing is written to disk and
every answer is rendered from the profile when asked.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import replace
from ipaddress import IPv4Address

from netboot.boot.choose import BootChoice, choose
from netboot.boot.classify import BootRequest
from netboot.boot.decide import BootContext, DhcpAnswer, LocalBoot, decide
from netboot.boot.ports import Audit, EventLog, Inventory, ProfileSource, Site
from netboot.boot.tftpnames import GRUB_STUB, classify_name
from netboot.boot.tokens import binding_current, refusal, script_binding
from netboot.events import Event
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet
from netboot.render import (
    BOOT_KINDS,
    RenderedFile,
    RenderError,
    ServerFacts,
    render_answer,
    render_boot_script,
)

log = logging.getLogger("netboot.boot")


class Refused(Exception):
    """The machine may not have this (wrong or dead token, not in install state): HTTP 403."""


class NotFound(LookupError):
    """No such system or answer file: HTTP 404."""


#: menus remembered at once (one entry per MAC served a menu, the oldest forgotten first)
MENU_MEMORY = 4096


def new_token() -> str:
    """A per-system install token: 32 URL-safe random characters."""
    return secrets.token_urlsafe(24)


class BootCore:
    """Answers every phase of a boot over an inventory, the loaded profiles and an event log."""

    def __init__(
        self, inventory: Inventory, profiles: ProfileSource, events: EventLog, site: Site, audit: Audit
    ) -> None:
        self.inventory = inventory
        self._profiles = profiles
        self.events = events
        self.site = site
        self.audit = audit
        self._contexts: dict[IPv4Address, BootContext] = {}
        #: MAC -> (address the menu was served to, until when a choice from there is taken)
        self._menus: OrderedDict[MacAddress, tuple[str | None, float]] = OrderedDict()

    @property
    def profiles(self) -> ProfileSet:
        return self._profiles()

    def facts(self, host: str | None = None) -> ServerFacts:
        """Server facts for rendering; ``host`` (the address a client reached us at) when none is set."""
        ip = str(self.site.server_ip) if self.site.server_ip is not None else (host or "127.0.0.1")
        return ServerFacts(
            server_ip=ip,
            http_port=self.site.http_port,
            domain=self.site.domain,
            variables=self.site.variables,
        )

    def server_ip(self, local_ip: IPv4Address) -> IPv4Address:
        """The address a client on the interface with ``local_ip`` is told to use."""
        return self.site.server_ip or local_ip

    def choice(self, system: System | None, arch: str | None = None) -> BootChoice:
        site = self.site
        return choose(system, self.profiles, site.unknown_default, site.local_boot, arch, site.boot_chain)

    # ------------------------------------------------------------------------------------------ DHCP

    def dhcp(
        self, request: BootRequest, local_ip: IPv4Address, *, now: float, discover: bool
    ) -> DhcpAnswer | None:
        """What DHCP tells this client to boot; None for clients that are not booting (not ours).

        Reads the inventory only; a DISCOVER from a boot client is staged as "seen" for the DHCP thread's
        group commit, so no store write waits in front of the reply.
        """
        if not request.boot_client:
            return None
        if discover:
            self.inventory.stage_seen(
                request.mac,
                arch=request.arch.value,
                uuid=str(request.uuid) if request.uuid else None,
                now=now,
            )
        choice = self.choice(self.inventory.get(request.mac), request.arch.value)
        local = LocalBoot(f"{choice.reason}, local_boot skip") if choice.skips_dhcp else None
        return decide(request, self._context(self.server_ip(local_ip)), local, choice.boot_chain)

    def _context(self, server_ip: IPv4Address) -> BootContext:
        ctx = self._contexts.get(server_ip)
        if ctx is None:
            ctx = BootContext(server_ip=server_ip, http_port=self.site.http_port, loaders=self.site.loaders,
                              shim=self.site.shim, shim_http=self.site.shim_http)
            self._contexts[server_ip] = ctx
        return ctx

    # ---------------------------------------------------------------------------------- boot configs

    def boot_config(
        self,
        kind: str,
        mac: MacAddress,
        *,
        host: str | None,
        client_ip: str | None,
        arch: str | None = None,
        chosen_profile: str | None = None,
    ) -> tuple[str, BootChoice]:
        """The iPXE script / grub.cfg / pxelinux config for ``mac`` now. Raises RenderError."""
        system = self._seen(mac, client_ip)
        # ``&profile=`` is the answer to the menu: only honoured when unknown machines get the menu, so a
        # client cannot register itself for an install the configured default does not offer it
        if (
            chosen_profile
            and self.site.unknown_default == "menu"
            and (system is None or system.state is SystemState.DISCOVERED)
        ):
            system = self._register_from_menu(system, chosen_profile, client_ip)
        choice = self.choice(system, arch)
        if choice.decision == "install" and (choice.system is None or choice.system.token is None):
            choice = replace(choice, system=self._install_default(mac, choice))
        if choice.decision == "install" and choice.system is not None and choice.system.token is not None:
            choice = replace(choice, system=self._bind_token(kind, choice.system, client_ip))
        if choice.decision == "menu":
            self._remember_menu(mac, client_ip)
        script = self.render(kind, choice, self.facts(host))
        self.events.record(
            Event(
                phase="boot-script",
                summary=f"{kind}: {choice.reason}",
                mac=mac,
                client_ip=client_ip,
                detail={
                    "kind": kind,
                    "decision": choice.decision,
                    "profile": choice.profile.name if choice.profile else None,
                },
            )
        )
        log.info("%s (%s): %s -> %s", mac, client_ip, kind, choice.reason)
        return script, choice

    def render(self, kind: str, choice: BootChoice, facts: ServerFacts) -> str:
        """The boot config ``kind`` for ``choice``, as the machine would get it (no side effect)."""
        return render_boot_script(
            kind,
            choice.decision,
            self.profiles,
            choice.profile,
            choice.group,
            choice.system,
            facts,
            local_boot=choice.script_local_boot,
            boot_chain=choice.boot_chain,
        )

    def tftp_file(self, name: str, client: tuple[str, int], host: str | None = None) -> bytes | None:
        """A per-MAC boot config asked over TFTP, rendered now; None = not ours (the TFTP root answers).

        ``host`` is our address the request came to: the config names the server by it (its kernel line
        and answer-file URL), as a boot script fetched by HTTP does by the ``Host`` it was asked at."""
        found = classify_name(name)
        if found is None:
            return None
        kind, mac = found
        if mac is None:
            mac = self.events.mac_for(client[0])
            if mac is None and kind == "grub":
                return GRUB_STUB.encode()  # it asks again by its MAC rather than stopping at grub>
            if mac is None:
                return None  # a catch-all name from a client we never saw: let the root answer
        try:
            script, _choice = self.boot_config(kind, mac, host=host, client_ip=client[0])
        except RenderError as exc:
            log.error("%s (%s): cannot render %s: %s", mac, client[0], name, exc)
            return None
        return script.encode()

    def _seen(self, mac: MacAddress, client_ip: str | None) -> System:
        """The system, or for a MAC never seen the discovered machine it becomes: its sighting is staged
        (written within about half a second, like a DHCP one), so no store write waits in front of its
        script."""
        system = self.inventory.get(mac)
        if system is None:
            now = time.time()
            self.inventory.stage_seen(mac, arch=None, uuid=None, now=now)
            system = System(mac=mac, profile=None, state=SystemState.DISCOVERED, first_seen=now,
                            last_seen=now)
            self.events.record(
                Event(
                    phase="discovered", summary="unknown machine seen booting", mac=mac, client_ip=client_ip
                )
            )
        return system

    def _store(self, system: System) -> System:
        """Write a state change now (the machine depends on it): an update, or an insert for a machine
        whose sighting is not written yet."""
        try:
            return self.inventory.save(system)
        except KeyError:
            pass
        try:
            return self.inventory.add(system)
        except ValueError:  # its sighting was written in between: the row is there now
            return self.inventory.save(system)

    def _bind_token(self, kind: str, system: System, client_ip: str | None) -> System:
        """The system as its script shows it: the token bound to the asking address, or withheld."""
        bound = script_binding(system, client_ip, self.events.addresses_of(system.mac), dhcp=self.site.dhcp)
        if bound is None:
            known = ", ".join(self.events.addresses_of(system.mac)) or "none seen"
            log.warning(
                "%s: %s asked from %s, not from an address the machine booted from (%s): token withheld",
                system.mac, kind, client_ip, known,
            )
            self.events.record(
                Event(
                    phase="boot-script",
                    summary=f"{kind} asked from another address: served without the install token",
                    mac=system.mac,
                    client_ip=client_ip,
                    detail={"kind": kind, "token": "withheld", "machine_addresses": known},
                )
            )
            return replace(system, token=None)
        now = time.time()
        if binding_current(system, bound, now, self.site.token_ttl):
            return system  # bound to this address moments ago: already durable, no write per request
        bound_system = replace(system, token_ip=bound, token_expires=now + self.site.token_ttl)
        self.inventory.save(bound_system)  # durable before the token leaves: the machine depends on it
        return bound_system

    def _remember_menu(self, mac: MacAddress, client_ip: str | None) -> None:
        self._menus[mac] = (client_ip, time.time() + self.site.menu_ttl)
        self._menus.move_to_end(mac)
        while len(self._menus) > MENU_MEMORY:
            self._menus.popitem(last=False)

    def _menu_refusal(self, mac: MacAddress, client_ip: str | None) -> str | None:
        """Why a menu choice for ``mac`` from ``client_ip`` is not taken now; None when it is."""
        served = self._menus.get(mac)
        if served is None:
            return "no menu was served to this machine"
        served_to, until = served
        if time.time() >= until:
            return "the menu was served too long ago"
        if client_ip is None or client_ip != served_to:
            return f"the menu was served to {served_to}, not to {client_ip}"
        if self.site.dhcp and client_ip not in self.events.addresses_of(mac):
            return f"{client_ip} is not an address the machine booted from"
        return None

    def _register_from_menu(self, existing: System, name: str, client_ip: str | None) -> System:
        """Someone at the console picked a profile from the menu: register the machine for it."""
        mac = existing.mac
        if name not in {p.name for p in self.profiles.menu_profiles()}:
            return existing  # only what the menu offers, to a machine the menu was served to
        why = self._menu_refusal(mac, client_ip)
        actor = f"machine {mac} at {client_ip}"
        if why is not None:
            log.warning("%s: menu choice %s from %s refused: %s", mac, name, client_ip, why)
            detail = {"profile": name, "reason": why}
            self.audit.write(actor, "menu-choice", f"system {mac}", detail, ok=False)
            return existing
        system = self._store(replace(existing, profile=name, state=SystemState.INSTALL, token=new_token()))
        self._menus.pop(mac, None)  # one choice per menu served
        self.audit.write(actor, "menu-choice", f"system {mac}", {"profile": name})
        self.events.record(
            Event(phase="admin", summary=f"chosen from the boot menu: {name}", mac=mac, client_ip=client_ip)
        )
        return system

    def _install_default(self, mac: MacAddress, choice: BootChoice) -> System:
        """An unknown machine getting the configured default profile becomes a registered system."""
        assert choice.profile is not None
        base = choice.system or System(mac=mac, profile=None, state=SystemState.DISCOVERED)
        return self._store(
            replace(base, profile=choice.profile.name, state=SystemState.INSTALL, token=new_token())
        )

    def preview(self, mac: MacAddress, what: str, host: str | None = None) -> str:
        """Exactly what ``mac`` would get for ``what`` (a boot kind or an answer file), with no side effect.

        Raises NotFound (unknown system / profile), UnknownAnswerFile or RenderError.
        """
        system = self.inventory.get(mac)
        facts = self.facts(host)
        if what in BOOT_KINDS:
            choice = self.choice(system)
            if (
                choice.decision == "install"
                and choice.profile is not None
                and (choice.system is None or choice.system.token is None)
            ):
                # an unknown machine that would get the default profile: show that install as it would be
                # registered at boot (the token does not exist until then), without storing anything
                base = choice.system or System(mac=mac, profile=None, state=SystemState.DISCOVERED)
                choice = replace(
                    choice, system=replace(base, profile=choice.profile.name, state=SystemState.INSTALL)
                )
            return self.render(what, choice, facts)
        if system is None:
            raise NotFound(f"no system {mac}")
        profile, group = self.profiles.select(system)
        if profile is None:
            raise NotFound(f"{mac}: profile {system.profile!r} does not exist")
        return render_answer(self.profiles, profile, group, system, facts, what).content

    # ---------------------------------------------------------------------------- answer files, done

    def _authorised(self, mac: MacAddress, token: str | None, client_ip: str | None) -> System:
        system = self.inventory.get(mac)
        if system is None:
            raise NotFound(f"no system {mac}")
        why = refusal(system, token, client_ip, self.events.addresses_of(mac), time.time())
        if why is not None:
            raise Refused(why)
        return system

    def answer(
        self, mac: MacAddress, file: str, token: str | None, *, host: str | None, client_ip: str | None
    ) -> RenderedFile:
        """Render ``file`` for ``mac``. Raises Refused, NotFound, UnknownAnswerFile or RenderError."""
        system = self._authorised(mac, token, client_ip)
        profile, group = self.profiles.select(system)
        if profile is None:
            raise NotFound(f"{mac}: profile {system.profile!r} does not exist")
        rendered = render_answer(self.profiles, profile, group, system, self.facts(host), file)
        self.events.record(
            Event(
                phase="answer-file",
                summary=f"answer file {file} ({profile.name})",
                mac=mac,
                client_ip=client_ip,
                detail={"file": file, "profile": profile.name, "bytes": len(rendered.content.encode())},
            )
        )
        log.info("%s (%s): answer file %s of %s", mac, client_ip, file, profile.name)
        return rendered

    def complete(self, mac: MacAddress, token: str | None, *, client_ip: str | None) -> System:
        """The installer says it is done: leave install state; the token stops working."""
        actor = f"machine {mac} at {client_ip}"
        try:
            system = self._authorised(mac, token, client_ip)
        except Refused as exc:
            self.audit.write(actor, "install-done", f"system {mac}", {"reason": str(exc)}, ok=False)
            raise
        done = replace(system, state=SystemState.INSTALLED, token=None, token_ip=None, token_expires=None)
        try:
            self.inventory.save(done)
        except (ValueError, KeyError) as exc:
            raise NotFound(str(exc)) from exc
        self.audit.write(actor, "install-done", f"system {mac}", {"profile": system.profile})
        self.events.record(
            Event(
                phase="install-done",
                summary=f"install of {system.profile} complete",
                mac=mac,
                client_ip=client_ip,
                detail={"profile": system.profile},
            )
        )
        log.info("%s (%s): install of %s complete; next boot is local", mac, client_ip, system.profile)
        return done
