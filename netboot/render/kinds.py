"""The answer-file kinds and boot-config kinds netboot knows, as one table.

A profile names its ``kind``; the kind says which files the installer fetches (and so which URLs the HTTP
server answers under ``/answer/<mac>/``), their content types, which validator checks each, and which
kernel arguments put that installer into unattended mode. Adding an installer family is one row here, a
validator in :mod:`netboot.render.validate`, and a sample profile.

This module imports nothing from netboot so that :mod:`netboot.profiles` can consult it while loading.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from netboot.schema_types import LOCAL_BOOT_CHOICES

#: Content types: text/plain everywhere except XML, so browsers and curl show files as they are.
TEXT = "text/plain; charset=utf-8"
XML = "application/xml; charset=utf-8"


@dataclass(frozen=True, slots=True)
class KindFile:
    """One file an installer fetches: its URL name, content type and validator key."""

    name: str
    content_type: str
    validator: str


@dataclass(frozen=True, slots=True)
class AnswerKind:
    """An installer family. ``files`` is empty for ``local`` (a profile that never installs)."""

    name: str
    description: str
    files: tuple[KindFile, ...]

    def file(self, name: str) -> KindFile | None:
        return next((f for f in self.files if f.name == name), None)

    @property
    def file_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.files)

    @property
    def installs(self) -> bool:
        return bool(self.files)


KINDS: Mapping[str, AnswerKind] = {
    k.name: k
    for k in (
        AnswerKind(
            "kickstart",
            "Anaconda (RHEL, Rocky, Alma, Fedora): inst.ks=<url>",
            (KindFile("ks.cfg", TEXT, "kickstart"),),
        ),
        AnswerKind(
            "jumpstart",
            "Solaris 10 JumpStart: rules, class profile, sysidcfg and a finish script",
            (
                KindFile("rules", TEXT, "jumpstart-rules"),
                KindFile("profile", TEXT, "jumpstart-profile"),
                KindFile("sysidcfg", TEXT, "jumpstart-sysidcfg"),
                KindFile("finish", TEXT, "jumpstart-finish"),
            ),
        ),
        AnswerKind(
            "preseed",
            "Debian installer: auto=true priority=critical url=<url>",
            (KindFile("preseed.cfg", TEXT, "preseed"),),
        ),
        AnswerKind(
            "autoinstall",
            "Ubuntu Subiquity autoinstall via cloud-init NoCloud: autoinstall ds=nocloud-net;s=<url>",
            (KindFile("user-data", TEXT, "cloud-config"), KindFile("meta-data", TEXT, "nocloud-meta-data")),
        ),
        AnswerKind(
            "autoyast",
            "openSUSE/SLES AutoYaST: autoyast=<url>",
            (KindFile("autoinst.xml", XML, "autoyast"),),
        ),
        AnswerKind("local", "never installs: every boot goes to the local disk", ()),
    )
}

#: Boot configuration formats netboot renders, and the decisions each renders for.
BOOT_KINDS = ("ipxe", "grub", "pxelinux")
DECISIONS = ("install", "local", "menu")
#: How a boot script leaves for the local disk (iPXE): ``auto`` = ``exit`` on EFI, ``sanboot`` on BIOS.
#: Every ``local_boot`` choice but ``skip``, which means "no boot file at DHCP time" and has no script.
LOCAL_BOOT_METHODS = tuple(c for c in LOCAL_BOOT_CHOICES if c != "skip")
#: Kernel image formats: a Linux bzImage/EFI stub, or a multiboot kernel plus modules (Solaris).
KERNEL_TYPES = ("linux", "multiboot")

#: matched whole (``fullmatch``): with ``match``, ``$`` also matches before a trailing newline, and
#: ``domain: "lab.test\n"`` (a variable) would end the iPXE ``kernel`` line early
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class InstallerUrls:
    """The URLs a kind's kernel arguments point at (built by :mod:`netboot.boot.urls`)."""

    answer: Mapping[str, str]
    answer_dir: str
    nocloud_seed: str


def installer_args(
    kind: str, urls: InstallerUrls, hostname: str | None, domain: str | None, base: Sequence[str] = ()
) -> list[str]:
    """The kernel command line: the profile's ``base`` arguments, then what makes ``kind``'s installer
    fetch its answer file and run unattended.

    Hostname and domain go on the Debian command line because netcfg asks for them before the preseed is
    loaded; they are added only when they are plain DNS names, so data never adds kernel arguments.
    Jumpstart's boot properties join a ``-B`` list already in ``base`` (Solaris reads one ``-B``).
    """
    args = list(base)
    dom = domain if domain and _DOMAIN.fullmatch(domain) else None
    host = hostname
    if host and "." in host and _DOMAIN.fullmatch(host):  # an FQDN: its first label, the rest as domain
        host, _, rest = host.partition(".")
        dom = dom or rest
    host = host if host and _HOSTNAME.fullmatch(host) else None
    if kind == "kickstart":
        args.append(f"inst.ks={urls.answer['ks.cfg']}")
    elif kind == "preseed":
        args += [
            "auto=true",
            "priority=critical",
            f"url={urls.answer['preseed.cfg']}",
            "interface=auto",
            "netcfg/choose_interface=auto",
        ]
        if host:
            args.append(f"hostname={host}")
        if dom:
            args.append(f"domain={dom}")
    elif kind == "autoinstall":
        args += ["autoinstall", f"ds=nocloud-net;s={urls.nocloud_seed}"]
    elif kind == "autoyast":
        args.append(f"autoyast={urls.answer['autoinst.xml']}")
    elif kind == "jumpstart":
        # Solaris appends rules/profile/sysidcfg to these directory URLs itself (see docs/profiles.md).
        props = f"install_config={urls.answer_dir},sysid_config={urls.answer_dir}"
        if "-B" in args[:-1]:
            at = args.index("-B") + 1
            args[at] = f"{args[at]},{props}"
        else:
            args += ["-B", props]
    return args
