"""The web app's adapter to profiles and rendering: every call the UI and API make into
:mod:`netboot.profiles` and :mod:`netboot.render` goes through the functions here, so a change of that API
is a change of this file only.

* :func:`server_facts` -> the :class:`ServerFacts` to render with.
* :func:`preview_system` -> the boot script and each answer file of one system, rendered as that machine
  would get them now (an error is shown as text, never raised).
* :func:`profile_summary` -> one profile's description, variables, answer files and render status.
* :func:`profile_validate` -> the installers' own validators (slow: subprocesses), on request.
* :func:`shown_system` -> a system as people see it: its secret variables redacted.
* :func:`system_loaders` -> what each firmware gets when the system boots now (the boot core's own DHCP
  answer, explained by :mod:`netboot.boot.loaders_view`).

Secret variables (:mod:`netboot.secretvars`: the name rule, and the ``secrets:`` of the machine's profile
and group) are redacted in everything here unless the caller passes ``reveal=True``, which the UI and API
do only for an admin who asked ``?reveal=secrets`` (and audit). Previews are *rendered* from redacted
variables (site, profile, group and system layers alike), so a template that transforms a secret (quotes
it, base64s it) shows the placeholder transformed, never the secret. Text made from real values (render
and validator problems of a profile) is scrubbed of the secrets it may quote. Only the machine-facing
routes, which do not come through here, render with the real values.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from ipaddress import AddressValueError, IPv4Address
from typing import Any

from flask import has_request_context, request

from netboot.boot.core import BootCore
from netboot.boot.decide import SHIM_CHAIN
from netboot.boot.loaders_view import (
    FIRMWARES,
    LoaderRow,
    OneSystem,
    grub_config_name,
    loader_row,
    request_for,
)
from netboot.inventory import System, SystemState
from netboot.plain import plain
from netboot.profiles import Group, Profile, ProfileSet, secret_names
from netboot.registration import load_profile_set
from netboot.render import (
    KINDS,
    RenderError,
    ServerFacts,
    UnknownAnswerFile,
    check_profile,
    render_answer,
    render_boot_script,
    sample_system,
)
from netboot.render.context import resolve_source
from netboot.secretvars import hidden_paths, redact, scrub, secret_strings
from netboot.webapp.services import WebServices

HIDDEN_TOKEN = "token-hidden-from-viewers"


@dataclass(frozen=True)
class Rendered:
    """One rendered file for the UI: ``content`` or ``error``."""

    name: str
    kind: str
    content: str | None = None
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "content": self.content, "error": self.error}


@dataclass(frozen=True)
class ProfileSummary:
    name: str
    kind: str
    description: str
    parent: str | None
    lineage: tuple[str, ...]
    variables: dict[str, Any]
    answer_files: tuple[str, ...]
    installs: bool
    file: str
    problems: list[str] = field(default_factory=list)
    #: where :attr:`variables` has (or, revealed, had) a secret: for the audit line of a reveal
    secret_paths: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "parent": self.parent,
            "lineage": list(self.lineage),
            "variables": self.variables,
            "answer_files": list(self.answer_files),
            "installs": self.installs,
            "ok": self.ok,
            "problems": self.problems,
        }


def server_facts(services: WebServices) -> ServerFacts:
    """Facts for rendering: the configured server address, else the host the browser used."""
    host = None
    if has_request_context():
        host = (request.host or "").rsplit(":", 1)[0].strip("[]") or None
    return services.core.facts(host)


def _grub_fetches(facts: ServerFacts, profile: Profile | None) -> bool:
    """Whether GRUB's config for ``profile`` loads every kernel and initrd (render's own choice of a path
    GRUB can fetch: netboot's files over TFTP), rather than booting the local disk; True when it loads
    none."""
    if profile is None or not profile.installs or profile.kernel is None:
        return True
    sources = (profile.kernel, *profile.initrds)
    return all(resolve_source(facts, profile, s)["grub"] is not None for s in sources)


def _answer_address(services: WebServices, facts: ServerFacts) -> IPv4Address:
    """The local address to ask the boot core's DHCP answer for: any, when the site names its server (that
    is used); else the one the browser reached us at, as a client on that network would."""
    if services.core.site.server_ip is not None:
        return services.core.site.server_ip
    try:
        return IPv4Address(facts.server_ip)
    except AddressValueError:
        return IPv4Address("127.0.0.1")


def system_loaders(services: WebServices, system: System) -> list[LoaderRow]:
    """What each firmware of :data:`~netboot.boot.loaders_view.FIRMWARES` gets if ``system`` boots from
    the network now: the boot core's DHCP answer to that firmware's request, with whether each file is on
    this server and what the loader fetches next.

    The answer comes from a :class:`BootCore` made for this call, with the daemon's site, profiles and
    event log, over :class:`OneSystem` (``system`` as given): the same code DHCP runs, without a database
    read per firmware, nothing staged or recorded, and nothing cached in the daemon's core.
    """
    core = services.core
    view = BootCore(OneSystem(system), lambda: core.profiles, core.events, core.site, core.audit)
    facts = server_facts(services)
    local_ip = _answer_address(services, facts)
    now = time.time()
    fetches: dict[str, bool] = {}  # profile -> GRUB loads its kernel and initrd (a stat each)
    rows = []
    for firmware in FIRMWARES:
        request = request_for(firmware, system.mac)
        answer = view.dhcp(request, local_ip, now=now, discover=False)
        choice = view.choice(system, request.arch.value)
        name = choice.profile.name if choice.profile else ""
        if name not in fetches:
            fetches[name] = _grub_fetches(facts, choice.profile)
        rows.append(loader_row(firmware, request, answer, choice, services.loaders, fetches[name]))
    return rows


def profile_set(services: WebServices) -> tuple[ProfileSet, list[str]]:
    return load_profile_set(services)


def system_secret_names(profiles: ProfileSet, system: System) -> frozenset[str]:
    """The explicit secret names for ``system``: its profile's and its group's ``secrets:``."""
    profile, group = profiles.select(system, system.arch)
    return secret_names(profile, group)


def shown_system(profiles: ProfileSet, system: System, *, reveal: bool = False) -> System:
    """``system`` with its secret variables redacted (as they are, with ``reveal``)."""
    if reveal or not system.variables:
        return system
    return replace(system, variables=redact(system.variables, system_secret_names(profiles, system)))


def system_secret_paths(services: WebServices, system: System) -> list[str]:
    """Which variables of ``system`` (its own, its profile's, its group's, the site's) are secret:
    what a reveal of its page or preview shows, for the audit line."""
    profiles, _ = load_profile_set(services)
    profile, group = profiles.select(system, system.arch)
    names = secret_names(profile, group)
    found: set[str] = set()
    for layer in _layers(services, profile, group, system):
        found.update(hidden_paths(layer, names))
    return sorted(found)


def system_secret_strings(services: WebServices, system: System | None) -> set[str]:
    """Every secret string of ``system``'s variables (all layers; the site's alone for no system): what
    text made from real values, such as a render error in its boot timeline, is scrubbed of."""
    profile, group = (None, None)
    if system is not None:
        profile, group = load_profile_set(services)[0].select(system, system.arch)
    names = secret_names(profile, group)
    found: set[str] = set()
    for layer in _layers(services, profile, group, system):
        found |= secret_strings(layer, names)
    return found


def _layers(
    services: WebServices, profile: Profile | None, group: Group | None, system: System | None
) -> list[Any]:
    facts = services.core.facts(None)
    return [
        plain(layer)
        for layer in (
            facts.variables,
            profile.variables if profile else None,
            group.variables if group else None,
            system.variables if system else None,
        )
        if layer
    ]


def _redacted_inputs(
    facts: ServerFacts,
    profile: Profile | None,
    group: Group | None,
    system: System | None,
    names: frozenset[str],
) -> tuple[ServerFacts, Profile | None, Group | None, System | None]:
    """Every layer of ``vars`` redacted on its own: the merge of redacted layers is the redacted merge,
    since whether a key is secret depends on its path and the names, never on its value."""
    return (
        replace(facts, variables=redact(facts.variables, names)),
        replace(profile, variables=redact(profile.variables, names)) if profile else None,
        replace(group, variables=redact(group.variables, names)) if group else None,
        replace(system, variables=redact(system.variables, names)) if system else None,
    )


def preview_system(
    services: WebServices, system: System, *, hide_token: bool = False, reveal: bool = False
) -> list[Rendered]:
    """The iPXE boot script this system gets if it boots now (and on the shim-grub chain the grub.cfg
    its UEFI x64 GRUB reads), then each answer file of its profile.

    The decision is the boot core's, the same one DHCP and the ``boot`` blueprint make; nothing is stored
    and no event is recorded. Secret variables are rendered as the placeholder unless ``reveal``.
    """
    profiles, _ = load_profile_set(services)
    facts = server_facts(services)
    if hide_token and system.token:
        system = replace(system, token=HIDDEN_TOKEN)
    choice = services.core.choice(system, system.arch)
    profile, group = (None, None)
    if system.state is not SystemState.DISCOVERED:
        profile, group = profiles.select(system, system.arch)
    if not reveal:
        names = secret_names(choice.profile, choice.group) | secret_names(profile, group)
        script_facts, c_profile, c_group, c_system = _redacted_inputs(
            facts, choice.profile, choice.group, choice.system, names
        )
        choice = replace(choice, profile=c_profile, group=c_group, system=c_system)
        facts, profile, group, shown = _redacted_inputs(facts, profile, group, system, names)
        assert shown is not None
        system = shown
    else:
        script_facts = facts
    out: list[Rendered] = []
    label = f"boot.ipxe ({choice.reason})"
    if choice.skips_dhcp:
        label = f"boot.ipxe ({choice.reason}; DHCP gives it no boot file, so it only gets this if it asks)"
    configs = [("ipxe", label)]
    if choice.boot_chain == SHIM_CHAIN:
        configs.append(("grub", f"{grub_config_name(system.mac)} (what GRUB reads on the shim-grub chain)"))
    for kind, name in configs:
        try:
            out.append(Rendered(name, kind, content=services.core.render(kind, choice, script_facts)))
        except (RenderError, ValueError) as exc:
            out.append(Rendered(name, kind, error=str(exc)))
    if system.state is SystemState.DISCOVERED:
        return out
    if profile is None:
        if system.profile:
            out.append(Rendered("answer files", "-", error=f"profile {system.profile!r} is not loaded"))
        return out
    for name in profile.answer_files:
        try:
            rendered = render_answer(profiles, profile, group, system, facts, name)
            out.append(Rendered(name, profile.kind, content=rendered.content))
        except (RenderError, UnknownAnswerFile, ValueError) as exc:
            out.append(Rendered(name, profile.kind, error=str(exc)))
    return out


def _profile_secrets(services: WebServices, profile: Profile) -> set[str]:
    """The secret strings a render of ``profile`` for its sample machine may contain (for :func:`scrub`)."""
    found: set[str] = set()
    for layer in _layers(services, profile, None, None):
        found |= secret_strings(layer, profile.secrets)
    return found


def _render_problems(services: WebServices, profiles: ProfileSet, profile: Profile) -> list[str]:
    """Render every file of ``profile`` for the sample machine (no external validators: fast)."""
    facts = server_facts(services)
    system = sample_system(profile.name)
    problems: list[str] = []
    for name in profile.answer_files:
        try:
            render_answer(profiles, profile, None, system, facts, name)
        except (RenderError, UnknownAnswerFile, ValueError) as exc:
            problems.append(str(exc))
    try:
        render_boot_script("ipxe", "install", profiles, profile, None, system, facts)
    except (RenderError, ValueError) as exc:
        problems.append(str(exc))
    secrets = _profile_secrets(services, profile)
    return [scrub(p, secrets) for p in problems]


def _summary(
    services: WebServices,
    profiles: ProfileSet,
    profile: Profile,
    load_errors: list[str],
    reveal: bool,
) -> ProfileSummary:
    mine = [e for e in load_errors if str(profile.dir) in e]
    variables = plain(profile.variables)
    return ProfileSummary(
        name=profile.name,
        kind=profile.kind,
        description=profile.description,
        parent=profile.parent,
        lineage=tuple(profile.lineage),
        variables=variables if reveal else redact(variables, profile.secrets),
        answer_files=tuple(profile.answer_files),
        installs=profile.installs,
        file=str(profile.file),
        problems=mine + _render_problems(services, profiles, profile),
        secret_paths=tuple(hidden_paths(variables, profile.secrets)),
    )


def profile_summaries(
    services: WebServices, *, reveal: bool = False
) -> tuple[list[ProfileSummary], list[str]]:
    """Every loaded profile with its status, and the load errors (including profiles that failed).
    Secret variables are redacted unless ``reveal``."""
    profiles, errors = load_profile_set(services)
    return [_summary(services, profiles, p, errors, reveal) for p in profiles], errors


def profile_summary(services: WebServices, name: str, *, reveal: bool = False) -> ProfileSummary | None:
    profiles, errors = load_profile_set(services)
    profile = profiles.get(name)
    return _summary(services, profiles, profile, errors, reveal) if profile else None


def profile_validate(services: WebServices, name: str) -> list[str] | None:
    """Render with the sample machine and run the installers' validators (slow). None: no such profile."""
    profiles, _ = load_profile_set(services)
    profile = profiles.get(name)
    if profile is None:
        return None
    problems = check_profile(profiles, profile, server_facts(services), timeout=20)
    secrets = _profile_secrets(services, profile)
    return [scrub(str(p), secrets) for p in problems]


def profile_names(services: WebServices) -> list[str]:
    return load_profile_set(services)[0].names()


def installer_profile_names(services: WebServices) -> list[str]:
    profiles, _ = load_profile_set(services)
    return [p.name for p in profiles if p.installs] + [p.name for p in profiles if not p.installs]


def kind_description(kind: str) -> str:
    found = KINDS.get(kind)
    return found.description if found else kind
