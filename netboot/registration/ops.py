"""The one way systems are registered, changed, marked for reinstall and removed.

The web UI, the REST API and the CLI all call these functions, so a system gets the same checks and the
same audit line whichever way it came in:

* the MAC is normalised by :meth:`MacAddress.parse`;
* the profile must exist in the loaded profiles (:func:`profiles_of`);
* the hostname follows RFC 1123 (letters, digits, hyphens; labels of 1-63; 253 in all) and is lowercased;
* the IP is a unicast IPv4 address;
* variables are a JSON-able mapping of at most 64 KiB;
* a new (or newly registered discovered) system gets state ``install`` and a fresh per-system token.

Every refusal is a :class:`FieldError` naming the input at fault (``mac``, ``profile``, ``hostname``,
``ip``, ``vars``, ``labels``, ``state``). Every change writes an audit entry (who, what, when) and an
``admin`` event on the system's timeline.

Audit details never hold a secret variable's value (:mod:`netboot.secretvars`: the name rule and the
``secrets:`` of the system's profile and group): a registration or removal lists them as ``<secret>``, an
edit compares the real values and writes ``{"vars": {"root_password_hash": "changed", "disk": {"from": ...,
"to": ...}}}``, so the log says that a secret changed, never what it was or became.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any, Protocol

from netboot.boot.core import new_token
from netboot.events import Event
from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import secret_names
from netboot.registration.fields import (
    UNSET,
    Duplicate,
    FieldError,
    NotFound,
    _Unset,
    check_boot_chain,
    check_hostname,
    check_ip,
    check_labels,
    check_local_boot,
    check_state,
    check_variables,
    parse_mac,
)
from netboot.secretvars import diff as secret_diff
from netboot.secretvars import redact
from netboot.store.systems import Conflict

if TYPE_CHECKING:
    from netboot.events import EventRecorder
    from netboot.profiles import ProfileSet
    from netboot.store import Store


class Deps(Protocol):
    """What registering and changing systems needs: the store, the recorder and the loaded profiles."""

    @property
    def store(self) -> Store: ...

    @property
    def recorder(self) -> EventRecorder: ...

    @property
    def profiles(self) -> ProfileSet: ...

    @property
    def profile_errors(self) -> list[str]: ...


# ------------------------------------------------------------------------------------------ profiles

def load_profile_set(deps: Deps) -> tuple[ProfileSet, list[str]]:
    """The loaded profiles and the problems of the last load (``file:line: reason`` each)."""
    profiles = deps.profiles
    return profiles, list(deps.profile_errors)


def profiles_of(deps: Deps) -> ProfileSet:
    return load_profile_set(deps)[0]


def check_profile(deps: Deps, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError("profile", "a profile is required")
    profile_set = profiles_of(deps)
    name = value.strip()
    if name not in profile_set:
        from netboot.profiles import did_you_mean

        known = profile_set.names()
        hint = did_you_mean(name, known) or (f" (known: {', '.join(known)})" if known else " (none loaded)")
        raise FieldError("profile", f"unknown profile {name!r}{hint}")
    return name


def _conflicts(deps: Deps, system: System) -> None:
    """Refuse a hostname or IP another system already has (before the database would)."""
    repo = deps.store.systems
    if system.hostname is not None:
        other = repo.by_hostname(system.hostname)
        if other is not None and other.mac != system.mac:
            raise Duplicate("hostname", f"host name {system.hostname} is already used by {other.mac}")
    if system.ip is not None:
        other = repo.by_ip(system.ip)
        if other is not None and other.mac != system.mac:
            raise Duplicate("ip", f"address {system.ip} is already used by {other.mac}")


# --------------------------------------------------------------------------------------- operations


def _admin_event(deps: Deps, mac: MacAddress, summary: str, **detail: Any) -> None:
    deps.recorder.record(Event(phase="admin", summary=summary, mac=mac, detail=detail))


def _audit(deps: Deps, actor: str, action: str, mac: MacAddress, detail: dict[str, Any]) -> None:
    deps.store.audit.write(actor, action, f"system {mac}", detail)


def _secret_names(deps: Deps, system: System) -> frozenset[str]:
    """The explicit secret variable names of ``system``: its profile's and group's ``secrets:``."""
    return secret_names(*profiles_of(deps).select(system, system.arch))


def _describe(system: System, names: frozenset[str] | None = None) -> dict[str, Any]:
    """The fields of ``system`` an audit line shows; with ``names``, its variables redacted."""
    variables = dict(system.variables)
    return {
        "profile": system.profile,
        "hostname": system.hostname,
        "ip": str(system.ip) if system.ip else None,
        "state": system.state.value,
        "vars": variables if names is None else redact(variables, names),
        "labels": dict(system.labels),
        "local_boot": system.local_boot,
        "boot_chain": system.boot_chain,
    }


def get(deps: Deps, mac: str | MacAddress) -> System:
    """The system with ``mac`` or :class:`NotFound` (field ``mac``)."""
    address = parse_mac(mac)
    system = deps.store.systems.get(address)
    if system is None:
        raise NotFound("mac", f"no system {address}")
    return system


def prepare(
    deps: Deps,
    mac: str | MacAddress,
    profile: str,
    hostname: str | None = None,
    ip: str | IPv4Address | None = None,
    variables: Mapping[str, Any] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    local_boot: str | None = None,
    boot_chain: str | None = None,
) -> tuple[System, System | None]:
    """Check a registration without storing it: the new system and the discovered record it replaces."""
    address = parse_mac(mac)
    existing = deps.store.systems.get(address)
    if existing is not None and existing.state is not SystemState.DISCOVERED:
        raise Duplicate("mac", f"{address} is already registered (profile {existing.profile or '-'})")
    system = System(
        mac=address,
        profile=check_profile(deps, profile),
        state=SystemState.INSTALL,
        hostname=check_hostname(hostname),
        ip=check_ip(ip),
        variables=check_variables(variables),
        labels=check_labels(labels),
        token=new_token(),
        local_boot=check_local_boot(local_boot),
        boot_chain=check_boot_chain(boot_chain),
    )
    if existing is not None:
        system = replace(
            system,
            arch=existing.arch,
            uuid=existing.uuid,
            first_seen=existing.first_seen,
            last_seen=existing.last_seen,
            labels=system.labels or existing.labels,
        )
    _conflicts(deps, system)
    return system, existing


def register(
    deps: Deps,
    mac: str | MacAddress,
    profile: str,
    hostname: str | None = None,
    ip: str | IPv4Address | None = None,
    variables: Mapping[str, Any] | None = None,
    actor: str = "cli",
    *,
    labels: Mapping[str, str] | None = None,
    local_boot: str | None = None,
    boot_chain: str | None = None,
) -> System:
    """Register ``mac`` to ``profile`` (state ``install``, fresh token); a discovered MAC becomes registered.

    Raises :class:`FieldError` naming the field at fault.
    """
    system, existing = prepare(
        deps,
        mac,
        profile,
        hostname,
        ip,
        variables,
        labels=labels,
        local_boot=local_boot,
        boot_chain=boot_chain,
    )
    try:
        store = deps.store.systems
        system = store.add(system) if existing is None else store.save(system)
    except Conflict as exc:
        raise Duplicate(exc.field, str(exc)) from None
    except KeyError:
        raise FieldError("mac", f"{system.mac} was removed meanwhile") from None
    action = "register-discovered" if existing is not None else "register"
    _audit(deps, actor, action, system.mac, _describe(system, _secret_names(deps, system)))
    _admin_event(
        deps,
        system.mac,
        f"registered by {actor} with profile {system.profile}",
        actor=actor,
        profile=system.profile,
    )
    return system


def set_fields(
    deps: Deps,
    mac: str | MacAddress,
    actor: str = "cli",
    *,
    profile: str | _Unset = UNSET,
    hostname: str | _Unset | None = UNSET,
    ip: str | IPv4Address | _Unset | None = UNSET,
    variables: Mapping[str, Any] | _Unset | None = UNSET,
    labels: Mapping[str, str] | _Unset | None = UNSET,
    state: str | _Unset = UNSET,
    local_boot: str | _Unset | None = UNSET,
    boot_chain: str | _Unset | None = UNSET,
) -> System:
    """Change some fields of a registered system (None clears hostname, ip, vars, labels, local_boot or
    boot_chain: the last two then inherit).

    Setting ``state`` to ``install`` is the same as :func:`reinstall` (a fresh token).
    """
    system = get(deps, mac)
    if system.state is SystemState.DISCOVERED and isinstance(profile, _Unset):
        raise FieldError("profile", f"{system.mac} is a discovered machine: register it with a profile first")
    before = _describe(system)
    changed = system
    if not isinstance(profile, _Unset):
        changed = replace(changed, profile=check_profile(deps, profile))
    if not isinstance(hostname, _Unset):
        changed = replace(changed, hostname=check_hostname(hostname))
    if not isinstance(ip, _Unset):
        changed = replace(changed, ip=check_ip(ip))
    if not isinstance(variables, _Unset):
        changed = replace(changed, variables=check_variables(variables))
    if not isinstance(labels, _Unset):
        changed = replace(changed, labels=check_labels(labels))
    if not isinstance(local_boot, _Unset):
        changed = replace(changed, local_boot=check_local_boot(local_boot))
    if not isinstance(boot_chain, _Unset):
        changed = replace(changed, boot_chain=check_boot_chain(boot_chain))
    if not isinstance(state, _Unset):
        new_state = check_state(state)
        if new_state is SystemState.INSTALL and system.state is not SystemState.INSTALL:
            changed = replace(changed, state=new_state, token=new_token())
        else:
            changed = replace(changed, state=new_state)
    elif system.state is SystemState.DISCOVERED:
        changed = replace(changed, state=SystemState.INSTALL, token=new_token())
    after = _describe(changed)
    diff = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
    if not diff:
        return system
    if "vars" in diff:  # compared on the real values above; written key by key, secrets as "changed"
        names = _secret_names(deps, system) | _secret_names(deps, changed)
        diff["vars"] = secret_diff(before["vars"], after["vars"], names)
    _conflicts(deps, changed)
    try:
        deps.store.systems.save(changed)
    except Conflict as exc:
        raise Duplicate(exc.field, str(exc)) from None
    except KeyError:
        raise NotFound("mac", f"no system {system.mac}") from None
    _audit(deps, actor, "edit", system.mac, diff)
    _admin_event(
        deps,
        system.mac,
        f"changed by {actor}: {', '.join(sorted(diff))}",
        actor=actor,
        fields=sorted(diff),
    )
    return changed


def reinstall(deps: Deps, mac: str | MacAddress, actor: str = "cli") -> System:
    """Mark a registered system for (re)installation at its next netboot, with a fresh token."""
    system = get(deps, mac)
    if system.state is SystemState.DISCOVERED or system.profile is None:
        raise FieldError("profile", f"{system.mac} has no profile: register it first")
    changed = replace(system, state=SystemState.INSTALL, token=new_token())
    try:
        deps.store.systems.save(changed)
    except KeyError:
        raise NotFound("mac", f"no system {system.mac}") from None
    _audit(deps, actor, "reinstall", system.mac, {"from": system.state.value, "profile": system.profile})
    _admin_event(deps, system.mac, f"marked for reinstall by {actor}", actor=actor)
    return changed


def remove(deps: Deps, mac: str | MacAddress, actor: str = "cli") -> System:
    """Forget a system (registered or discovered); returns what was removed."""
    system = get(deps, mac)
    if not deps.store.systems.remove(system.mac):
        raise NotFound("mac", f"no system {system.mac}")
    _audit(deps, actor, "remove", system.mac, _describe(system, _secret_names(deps, system)))
    _admin_event(deps, system.mac, f"removed by {actor}", actor=actor)
    return system


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


def register_lines(
    deps: Deps, text: str, actor: str = "cli", *, max_lines: int = 1000
) -> tuple[list[System], list[LineError]]:
    """Register ``MAC,hostname,profile`` lines (blank lines and ``#`` comments skipped).

    All or nothing: every line is checked first; if any is refused, nothing is registered and every
    refusal is returned with its line number.
    """
    prepared: list[tuple[int, str, str, str]] = []
    errors: list[LineError] = []
    seen_mac: dict[MacAddress, int] = {}
    seen_host: dict[str, int] = {}
    lines = text.splitlines()
    if len(lines) > max_lines:
        return [], [LineError(max_lines + 1, "lines", f"at most {max_lines} lines at once")]
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            errors.append(LineError(number, "line", "expected MAC,hostname,profile"))
            continue
        mac_text, host, profile = parts
        try:
            system, _ = prepare(deps, mac_text, profile, host or None)
        except FieldError as exc:
            errors.append(LineError(number, exc.field, exc.message))
            continue
        if system.mac in seen_mac:
            errors.append(LineError(number, "mac", f"{system.mac} is also on line {seen_mac[system.mac]}"))
            continue
        seen_mac[system.mac] = number
        if system.hostname is not None:
            if system.hostname in seen_host:
                errors.append(
                    LineError(
                        number, "hostname", f"{system.hostname} is also on line {seen_host[system.hostname]}"
                    )
                )
                continue
            seen_host[system.hostname] = number
        prepared.append((number, mac_text, profile, host))
    if errors:
        return [], errors
    done: list[System] = []
    for number, mac_text, profile, host in prepared:
        try:
            done.append(register(deps, mac_text, profile, host or None, actor=actor))
        except FieldError as exc:  # changed meanwhile: report, keep what was done
            errors.append(LineError(number, exc.field, exc.message))
    return done, errors
