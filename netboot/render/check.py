"""``netboot check``: load every profile and group, render everything against a sample system, validate.

This is where the slow, thorough work happens (subprocess validators), so the request path never does it.
A profile that loads but renders a kickstart ``ksvalidator`` refuses is as broken as one that does not
load; both show up here, each as a :class:`Problem` naming the file and line.

Problem files: load errors name ``profiles/<name>/profile.yaml``; render errors name the template; and
validator findings name ``<profile>:<answer file>`` with the line in the *rendered* file.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address
from pathlib import Path

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import Group, Profile, ProfileSet, load_profiles_collect
from netboot.render.context import ServerFacts, resolve_source
from netboot.render.engine import render_answer, render_boot_script
from netboot.render.errors import RenderError
from netboot.render.kinds import BOOT_KINDS, KINDS
from netboot.render.problem import Problem
from netboot.render.validate import DEFAULT_TIMEOUT, validate

SAMPLE_MAC = MacAddress.parse("52:54:00:12:34:56")


def sample_system(profile: str | None, *, mac: MacAddress = SAMPLE_MAC) -> System:
    """The fixed machine ``check`` and the golden tests render for."""
    return System(
        mac=mac,
        profile=profile,
        state=SystemState.INSTALL,
        hostname="sample-host",
        ip=IPv4Address("10.0.0.50"),
        token="sample-token-0123456789",
        arch="bios",
        uuid="4c4c4544-0042-3510-8052-b4c04f384d32",
    )


def _render_problem(exc: RenderError) -> Problem:
    return Problem(exc.file, exc.line, exc.reason)


def check_profile(
    profile_set: ProfileSet,
    profile: Profile,
    facts: ServerFacts,
    *,
    group: Group | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Problem]:
    """Render and validate every answer file and boot config of ``profile`` (with ``group``'s vars)."""
    problems: list[Problem] = []
    system = sample_system(profile.name)
    label = f"{profile.name}+{group.name}" if group else profile.name
    for kind_file in KINDS[profile.kind].file_names:
        try:
            rendered = render_answer(profile_set, profile, group, system, facts, kind_file)
        except RenderError as exc:
            problems.append(_render_problem(exc))
            continue
        found = validate(
            profile.kind, rendered.content, file=kind_file, options=profile.validate, timeout=timeout
        )
        problems += [Problem(f"{label}:{p.file}", p.line, p.message, p.severity) for p in found]
    problems += _check_boot_configs(profile_set, profile, group, system, facts, ("install", "local"), label,
                                    timeout)
    if group is None:
        problems += _boot_file_problems(profile, facts)
    return problems


def _boot_file_problems(profile: Profile, facts: ServerFacts) -> list[Problem]:
    problems: list[Problem] = []
    sources = [("kernel", profile.kernel)] if profile.kernel else []
    sources += [(f"initrd {s.name}", s) for s in profile.initrds]
    for what, source in sources:
        resolved = resolve_source(facts, profile, source)
        if not resolved["present"]:
            problems.append(
                Problem(
                    str(profile.file),
                    None,
                    f"{what}: {source.path!r} is not in {profile.data_dir} and no url is given",
                    "warning",
                )
            )
    return problems


def _check_boot_configs(
    profile_set: ProfileSet,
    profile: Profile | None,
    group: Group | None,
    system: System | None,
    facts: ServerFacts,
    decisions: tuple[str, ...],
    label: str,
    timeout: float,
) -> list[Problem]:
    """Render every boot config kind for each decision and run its checker; ``label`` prefixes the file."""
    problems: list[Problem] = []
    for boot_kind in BOOT_KINDS:
        for decision in decisions:
            try:
                script = render_boot_script(boot_kind, decision, profile_set, profile, group, system, facts)
            except RenderError as exc:
                problems.append(_render_problem(exc))
                continue
            found = validate(boot_kind, script, file=f"{decision}.{boot_kind}", timeout=timeout)
            problems += [Problem(f"{label}:{p.file}", p.line, p.message, p.severity) for p in found]
    return problems


def check_all(
    profiles_dir: Path,
    facts: ServerFacts,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    private: Iterable[Path] = (),
) -> list[Problem]:
    """Every problem in ``profiles_dir``: load errors, render errors, validator findings, missing files.

    ``private``: paths no ``data_dir`` may contain (the daemon's, so ``netboot check`` refuses what
    ``netboot serve`` would)."""
    profile_set, errors = load_profiles_collect(profiles_dir, private=private)
    problems = [Problem(e.file, e.line, f"{e.key}: {e.reason}" if e.key else e.reason) for e in errors]
    for profile in profile_set:
        problems += check_profile(profile_set, profile, facts, timeout=timeout)
    for group in profile_set.groups:
        target = profile_set.get(group.profile)
        if target is not None:
            problems += check_profile(profile_set, target, facts, group=group, timeout=timeout)
    problems += _check_boot_configs(profile_set, None, None, None, facts, ("menu", "local"), "(no profile)",
                                    timeout)
    return problems


__all__ = ["SAMPLE_MAC", "check_all", "check_profile", "sample_system"]
