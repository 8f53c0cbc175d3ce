"""What a machine gets when it asks: boot config, answer files, and the end of its install.

The one place that turns "this MAC asked for X" into an answer, shared by the HTTP ``boot`` blueprint
(``/boot.ipxe``, ``/answer/...``, ``/done/...``) and the TFTP server's rendered files (pxelinux and GRUB
configs). Nothing is written to disk: every answer is rendered from the profile when asked.

Lifecycle (what stops reinstall loops): a system in state ``install`` gets its installer and a per-system
token on the kernel line; the token authorises its answer files and its completion callback, and dies when
the callback arrives (state becomes ``installed``, so the next netboot boots the local disk).
"""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass, replace

from netboot.events import Event, EventRecorder
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import Group, Profile, ProfileSet
from netboot.render import BOOT_KINDS, RenderedFile, ServerFacts, render_answer, render_boot_script
from netboot.store import Store
from netboot.store.systems import Conflict, new_token

log = logging.getLogger("netboot.machines")


class Refused(Exception):
    """The machine may not have this (wrong or dead token, not in install state): HTTP 403."""


class NotFound(LookupError):
    """No such system or answer file: HTTP 404."""


@dataclass(frozen=True, slots=True)
class BootChoice:
    """What the next netboot of a machine does, and with which profile."""

    decision: str  # install | local | menu
    system: System | None
    profile: Profile | None
    group: Group | None
    reason: str


def choose(
    system: System | None, profiles: ProfileSet, unknown_default: str, arch: str | None = None
) -> BootChoice:
    """Pure: the boot decision for a (possibly unknown) machine. See the module docstring."""
    if system is None or system.state is SystemState.DISCOVERED:
        if unknown_default == "menu":
            return BootChoice("menu", system, None, None, "unknown machine: profile menu")
        if unknown_default.startswith("profile:"):
            name = unknown_default.removeprefix("profile:")
            profile = profiles.get(name)
            if profile is not None:
                return BootChoice(
                    "install", system, profile, None, f"unknown machine: default profile {name}"
                )
        return BootChoice("local", system, None, None, "unknown machine: local boot")
    profile, group = profiles.select(system, arch)
    if system.state is not SystemState.INSTALL:
        return BootChoice("local", system, profile, group, f"state {system.state.value}: local boot")
    if profile is None:
        return BootChoice("local", system, None, None, f"profile {system.profile!r} not found: local boot")
    return BootChoice("install", system, profile, group, f"install {profile.name}")


class Machines:
    """Answers for machines, over the store, the loaded profiles and the event recorder."""

    def __init__(
        self, store: Store, recorder: EventRecorder, profiles: ProfileSet, unknown_default: str
    ) -> None:
        self.store = store
        self.recorder = recorder
        self.profiles = profiles
        self.unknown_default = unknown_default

    # -------------------------------------------------------------------------------------- boot configs

    def boot_config(
        self,
        kind: str,
        mac: MacAddress,
        facts: ServerFacts,
        *,
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
            and self.unknown_default == "menu"
            and (system is None or system.state is SystemState.DISCOVERED)
        ):
            system = self._register_from_menu(mac, chosen_profile, client_ip)
        choice = choose(system, self.profiles, self.unknown_default, arch)
        if choice.decision == "install" and (choice.system is None or choice.system.token is None):
            choice = replace(choice, system=self._install_default(mac, choice))
        script = render_boot_script(
            kind, choice.decision, self.profiles, choice.profile, choice.group, choice.system, facts
        )
        self.recorder.record(
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

    def _seen(self, mac: MacAddress, client_ip: str | None) -> System | None:
        system = self.store.systems.get(mac)
        if system is None:
            system = self.store.systems.seen(mac, arch=None, uuid=None, now=time.time())
            self.recorder.record(
                Event(
                    phase="discovered", summary="unknown machine seen booting", mac=mac, client_ip=client_ip
                )
            )
        return system

    def _register_from_menu(self, mac: MacAddress, name: str, client_ip: str | None) -> System | None:
        """Someone at the console picked a profile from the menu: register the machine for it."""
        existing = self.store.systems.get(mac)
        if name not in {p.name for p in self.profiles.menu_profiles()}:  # only what the menu offers
            return existing
        assert existing is not None
        system = replace(existing, profile=name, state=SystemState.INSTALL, token=new_token())
        self.store.systems.save(system)
        self.recorder.record(
            Event(phase="admin", summary=f"chosen from the boot menu: {name}", mac=mac, client_ip=client_ip)
        )
        return system

    def _install_default(self, mac: MacAddress, choice: BootChoice) -> System:
        """An unknown machine getting the configured default profile becomes a registered system."""
        assert choice.profile is not None
        base = choice.system or System(mac=mac, profile=None, state=SystemState.DISCOVERED)
        system = replace(base, profile=choice.profile.name, state=SystemState.INSTALL, token=new_token())
        try:
            self.store.systems.save(system)
        except KeyError:
            self.store.systems.add(system)
        return system

    def preview(self, mac: MacAddress, what: str, facts: ServerFacts) -> str:
        """Exactly what ``mac`` would get for ``what`` (a boot kind or an answer file), with no side effect.

        Raises LookupError (unknown system / file), UnknownAnswerFile or RenderError.
        """
        system = self.store.systems.get(mac)
        if what in BOOT_KINDS:
            choice = choose(system, self.profiles, self.unknown_default)
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
            return render_boot_script(
                what, choice.decision, self.profiles, choice.profile, choice.group, choice.system, facts
            )
        if system is None:
            raise NotFound(f"no system {mac}")
        profile, group = self.profiles.select(system)
        if profile is None:
            raise NotFound(f"{mac}: profile {system.profile!r} does not exist")
        return render_answer(self.profiles, profile, group, system, facts, what).content

    # -------------------------------------------------------------------------------------- answer files

    def _authorised(self, mac: MacAddress, token: str | None) -> System:
        system = self.store.systems.get(mac)
        if system is None:
            raise NotFound(f"no system {mac}")
        if system.state is not SystemState.INSTALL or system.token is None:
            raise Refused(f"{mac} is not being installed (state {system.state.value})")
        if not token or not hmac.compare_digest(system.token.encode(), token.encode()):
            raise Refused(f"wrong token for {mac}")
        return system

    def answer(
        self, mac: MacAddress, file: str, token: str | None, facts: ServerFacts, *, client_ip: str | None
    ) -> RenderedFile:
        """Render ``file`` for ``mac``. Raises Refused, NotFound, UnknownAnswerFile or RenderError."""
        system = self._authorised(mac, token)
        profile, group = self.profiles.select(system)
        if profile is None:
            raise NotFound(f"{mac}: profile {system.profile!r} does not exist")
        rendered = render_answer(self.profiles, profile, group, system, facts, file)
        self.recorder.record(
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
        system = self._authorised(mac, token)
        done = replace(system, state=SystemState.INSTALLED, token=None)
        try:
            self.store.systems.save(done)
        except (Conflict, KeyError) as exc:
            raise NotFound(str(exc)) from exc
        self.recorder.record(
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
