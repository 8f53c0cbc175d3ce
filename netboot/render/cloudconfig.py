"""Checks for Ubuntu autoinstall files that cloud-init's own schema does not make.

``cloud-init schema`` validates the cloud-config modules but lets unknown top-level keys through, and
``autoinstall:`` is one: Subiquity reads it. So this module checks the ``#cloud-config`` header, the YAML
(with line numbers), and the autoinstall section's shape (``version: 1``, known section names with a
did-you-mean, identity fields, command lists), and maps cloud-init's error paths back to lines.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from netboot.render.problem import Problem
from netboot.yamlsource import Located, SourceError, loads

#: Subiquity's top-level autoinstall sections (Ubuntu 20.04 to 24.04).
AUTOINSTALL_KEYS = (
    "version",
    "interactive-sections",
    "early-commands",
    "locale",
    "refresh-installer",
    "keyboard",
    "source",
    "network",
    "proxy",
    "apt",
    "storage",
    "identity",
    "active-directory",
    "ubuntu-pro",
    "ubuntu-advantage",
    "ssh",
    "codecs",
    "drivers",
    "oem",
    "snaps",
    "debconf-selections",
    "packages",
    "kernel",
    "kernel-crash-dumps",
    "timezone",
    "updates",
    "shutdown",
    "late-commands",
    "error-commands",
    "reporting",
    "user-data",
    "zdevs",
)
_COMMAND_LISTS = ("early-commands", "late-commands", "error-commands")


def _load(content: str, file: str) -> tuple[list[Problem], Located | None]:
    try:
        return [], loads(content, file)
    except SourceError as exc:
        return [Problem(file, exc.line, exc.reason)], None


def check_user_data(content: str, file: str) -> tuple[list[Problem], Located | None]:
    """Header, YAML and the autoinstall section; returns the parsed document for line lookups."""
    problems: list[Problem] = []
    if content.split("\n", 1)[0].rstrip() != "#cloud-config":
        problems.append(Problem(file, 1, "user-data must start with the line '#cloud-config'"))
    found, located = _load(content, file)
    problems += found
    if located is None:
        return problems, None
    data = located.data
    if not isinstance(data, dict):
        return [*problems, Problem(file, 1, "user-data must be a YAML mapping")], located
    if "autoinstall" in data:
        problems += _check_autoinstall(data["autoinstall"], located)
    return problems, located


def _check_autoinstall(section: Any, loc: Located) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, message: str) -> None:
        problems.append(Problem(loc.file, loc.line(path), message))

    if not isinstance(section, dict):
        add("autoinstall", "autoinstall must be a mapping")
        return problems
    if section.get("version") != 1:
        add("autoinstall.version", "autoinstall needs 'version: 1'")
    for key in section:
        if key not in AUTOINSTALL_KEYS:
            close = difflib.get_close_matches(key, AUTOINSTALL_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            add(f"autoinstall.{key}", f"unknown autoinstall section {key!r}{hint}")
    identity = section.get("identity")
    if identity is not None:
        if not isinstance(identity, dict):
            add("autoinstall.identity", "identity must be a mapping")
        else:
            for need in ("hostname", "username", "password"):
                if not isinstance(identity.get(need), str) or not identity.get(need):
                    add("autoinstall.identity", f"identity needs a non-empty {need!r}")
    elif "user-data" not in section and "interactive-sections" not in section:
        add("autoinstall", "autoinstall needs 'identity' (or 'user-data') for an unattended install")
    for key in _COMMAND_LISTS:
        commands = section.get(key)
        if commands is None:
            continue
        if not isinstance(commands, list):
            add(f"autoinstall.{key}", f"{key} must be a list of commands")
            continue
        for i, cmd in enumerate(commands):
            if not isinstance(cmd, str | list):
                add(f"autoinstall.{key}.{i}", f"{key} entries are strings or argument lists")
    return problems


def check_meta_data(content: str, file: str) -> list[Problem]:
    """NoCloud meta-data: a YAML mapping with a string ``instance-id``."""
    problems, located = _load(content, file)
    if located is None:
        return problems
    data = located.data
    if not isinstance(data, dict):
        return [Problem(file, 1, "meta-data must be a YAML mapping")]
    if not isinstance(data.get("instance-id"), str) or not data["instance-id"]:
        problems.append(Problem(file, located.line("instance-id") or 1, "meta-data needs 'instance-id'"))
    return problems


_SCHEMA_ERRORS = re.compile(r"Cloud config schema (errors|deprecations): ?(.*)")
_PATH_AT = re.compile(r"(?:^|, )([A-Za-z0-9_.\-]+): ")


def parse_schema_output(output: str, rc: int, file: str, located: Located) -> list[Problem]:
    """Split ``cloud-init schema`` messages by the key paths it names and give each its line."""
    problems: list[Problem] = []
    for raw in output.splitlines():
        m = _SCHEMA_ERRORS.search(raw)
        if not m or not m.group(2).strip():
            continue
        severity = "error" if m.group(1) == "errors" else "warning"
        body = m.group(2)
        # cut only where a key path of this document starts, so commas inside messages survive
        cuts = [c for c in _PATH_AT.finditer(body) if c.group(1) in located.lines]
        if not cuts:
            problems.append(Problem(file, None, body, severity))
            continue
        for i, cut in enumerate(cuts):
            end = cuts[i + 1].start() if i + 1 < len(cuts) else len(body)
            message = body[cut.start() : end].lstrip(", ")
            problems.append(Problem(file, located.line(cut.group(1)), message, severity))
    if rc != 0 and not any(p.severity == "error" for p in problems):
        tail = " ".join(line.strip() for line in output.splitlines() if line.strip())[-400:]
        problems.append(Problem(file, None, f"cloud-init schema failed (exit {rc}): {tail}"))
    return problems
