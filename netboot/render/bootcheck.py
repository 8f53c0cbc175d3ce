"""Structural checks for the boot configs netboot renders: iPXE scripts, grub.cfg, pxelinux configs.

There is no offline validator for an iPXE script, and a mistake there (a missing ``#!ipxe`` header, a
misspelt command, a ``goto`` to no label) shows up only as a machine that sits at a prompt. These checks
catch those with the line. ``grub-script-check`` is used in addition when it is installed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from netboot.render.problem import Problem

_IPXE_WORDS = """
    autoboot boot certadd certfree certstat chain choose clear colour console cpair cpuid dhcp echo exit
    fcels fcstat form goto ifclose ifconf ifopen ifstat imgargs imgdecrypt imgexec imgextract imgfetch
    imgfree imgload imgselect imgstat imgtrust imgverify inc initrd ipstat iseq isset item kernel login
    lotest menu module neighbour nslookup nstat ntp param params pciscan ping poweroff prompt pxebct read
    reboot route sanboot sanhook sanunhook set shell shim show sleep sync time vcreate vdestroy"""
IPXE_COMMANDS = frozenset(_IPXE_WORDS.split())
_PXELINUX_WORDS = """
    allowoptions append boot bss com32 comboot config console default display endtext f1 f2 f3 f4 f5 f6
    f7 f8 f9 f10 f11 f12 fdimage font implicit include initrd ipappend kbdmap kernel label linux localboot
    menu noescape nocomplete ontimeout path prompt pxe say serial sysappend text timeout totaltimeout
    ui"""
PXELINUX_KEYWORDS = frozenset(_PXELINUX_WORDS.split())
_IPXE_SPLIT = re.compile(r"\s*(?:\|\||&&)\s*")


def check_ipxe(content: str, file: str = "boot.ipxe") -> list[Problem]:
    problems: list[Problem] = []
    lines = content.splitlines()
    if not lines or not lines[0].startswith("#!ipxe"):
        problems.append(Problem(file, 1, "an iPXE script must start with '#!ipxe'"))
    labels: set[str] = set()
    gotos: list[tuple[int, str]] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            labels.add(line[1:].split()[0] if line[1:].split() else "")
            continue
        for part in _IPXE_SPLIT.split(line):
            words = part.split()
            if not words:
                continue
            if words[0] not in IPXE_COMMANDS:
                problems.append(Problem(file, number, f"unknown iPXE command {words[0]!r}"))
            if words[0] == "goto" and len(words) > 1 and "${" not in words[1]:
                gotos.append((number, words[1]))
    for number, target in gotos:
        if target not in labels:
            problems.append(Problem(file, number, f"goto {target!r}: no such label"))
    return problems


def check_grub(content: str, file: str = "grub.cfg") -> list[Problem]:
    problems: list[Problem] = []
    depth = 0
    opened: list[int] = []
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.split("#", 1)[0] if not raw.lstrip().startswith("#") else ""
        if line.count("'") % 2 or line.count('"') % 2:
            problems.append(Problem(file, number, "unbalanced quotes"))
        stripped = line.strip()
        if stripped.endswith("{"):
            depth += 1
            opened.append(number)
        elif stripped == "}":
            depth -= 1
            if depth < 0:
                problems.append(Problem(file, number, "'}' without '{'"))
                depth = 0
            else:
                opened.pop()
    problems.extend(Problem(file, n, "'{' is never closed") for n in opened)
    if not any(line.strip() and not line.lstrip().startswith("#") for line in content.splitlines()):
        # GRUB given a config with nothing to do stops at its prompt: the machine waits for a keyboard
        problems.append(Problem(file, 1, "no commands: GRUB would stop at its prompt"))
    return problems


def check_pxelinux(content: str, file: str = "pxelinux.cfg") -> list[Problem]:
    problems: list[Problem] = []
    labels: set[str] = set()
    default: tuple[int, str] | None = None
    in_text = False
    for number, raw in enumerate(content.splitlines(), 1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        keyword = words[0].lower()
        if in_text:
            in_text = keyword != "endtext"
            continue
        if keyword not in PXELINUX_KEYWORDS:
            problems.append(Problem(file, number, f"unknown pxelinux keyword {words[0]!r}"))
        elif keyword == "label" and len(words) > 1:
            labels.add(words[1])
        elif keyword == "default" and len(words) > 1:
            default = (number, words[1])
        elif keyword == "text":
            in_text = True
    if default and default[1] not in labels:
        problems.append(Problem(file, default[0], f"DEFAULT {default[1]!r}: no such LABEL"))
    return problems


CHECKS: Mapping[str, Callable[[str, str], list[Problem]]] = {
    "ipxe": check_ipxe,
    "grub": check_grub,
    "pxelinux": check_pxelinux,
}
