"""THE one context builder: what a template can see, and which value wins.

Every template (answer files and boot scripts) gets the same shape, built here and nowhere else:

``server``   facts about this netboot server (``ip``, ``http_port``, ``http_base``, ``tftp_server``,
             ``domain``). Read-only facts; not overridable.
``vars``     the merged variables, lowest precedence first:
             1. site defaults: ``ServerFacts.variables`` (from the daemon config) plus ``domain``
             2. the profile's ``variables``, its ancestors' first (a child overrides its parent)
             3. the matching group's ``variables``
             4. the system's own ``variables``
             Mappings merge key by key at every depth; any other value (lists too) is replaced whole.
``system``   the machine: ``mac`` (``52:54:00:12:34:56``), ``mac_hex``, ``mac_dashed``, ``pxelinux``,
             ``hostname`` (``netboot-<mac_hex>`` when unset), ``domain`` (= ``vars.domain``), ``fqdn``,
             ``ip``, ``token``, ``arch``, ``uuid``, ``labels``, ``profile``, ``state``. None for the menu
             of an unknown machine.
``profile``  ``name``, ``kind``, ``description``, ``lineage`` (None without a profile).
``group``    ``name``, ``description`` of the matching group, or None.
``urls``     ``boot_script``, ``answer`` (file -> URL with token), ``answer_dir``, ``nocloud_seed``,
             ``done`` (the completion callback), ``files`` (the profile's ``/files/<profile>/``).
``boot``     for installer profiles: ``kernel`` and ``initrds`` (each ``url``, ``name``, ``local``,
             ``grub``), ``args`` (profile ``cmdline`` then the kind's unattended arguments), ``cmdline``
             (``args`` joined), ``format`` (``linux``/``multiboot``), ``grub_ready`` (GRUB can fetch
             every file); None otherwise.

Variables are namespaced under ``vars`` (not top level) so a variable can never shadow ``system`` or
``urls``, and a typo is an error rather than a silently different name. Everything is copied into plain
dicts, lists and scalars: templates see data, never live objects.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from netboot.boot import urls
from netboot.inventory import System
from netboot.mac import MacAddress
from netboot.plain import plain
from netboot.profiles import FileSource, Group, Profile, deep_merge
from netboot.render.errors import RenderError
from netboot.render.kinds import InstallerUrls, installer_args
from netboot.schema_types import CONTROL_RE, ipxe_separator

#: a hostname, the domain beside it and each word of ``kernel_args`` may be any text without whitespace or
#: control characters (they land in line-based files: kickstart comments, preseed lines, the kernel line);
#: a token goes into URLs and kernel command lines, so it is URL-safe characters only. Each is matched
#: whole (``fullmatch``): ``$`` alone would let a trailing newline through.
_WORD_OK = re.compile(rf"[^\s{CONTROL_RE.pattern[1:-1]}]+")  # no whitespace, nothing CONTROL_RE refuses
_TOKEN_OK = re.compile(r"[A-Za-z0-9._~-]+")


#: seconds a boot file's presence is taken as known: a kernel or initrd put in its data directory (or
#: removed) shows in the scripts rendered this long after at the latest. A stat per boot file per render
#: was a fifth of a remembered boot script's cost (netboot.render.memo).
PRESENCE_TTL = 1.0
_presence: dict[str, tuple[float, bool]] = {}
_PRESENCE_MAX = 4096


def _is_regular_file(path: Path) -> bool:
    key = str(path)
    now = time.monotonic()
    known = _presence.get(key)
    if known is not None and now < known[0]:
        return known[1]
    found = os.path.isfile(key)
    if len(_presence) >= _PRESENCE_MAX:
        _presence.clear()  # a bound, not an eviction policy: only the profiles' boot files are asked
    _presence[key] = (now + PRESENCE_TTL, found)
    return found


@dataclass(frozen=True)
class ServerFacts:
    """What templates and URL builders need to know about this server.

    ``http_base`` defaults to ``http://<server_ip>[:<http_port>]`` and ``tftp_server`` to ``server_ip``.
    ``variables`` are site-wide defaults, the lowest layer of ``vars``. ``file_exists`` decides whether a
    profile's local boot file is there (tests pass a fake, so goldens do not depend on installed packages).
    """

    server_ip: str
    http_port: int = 80
    http_base: str = ""
    tftp_server: str = ""
    domain: str | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    file_exists: Callable[[Path], bool] = field(default=_is_regular_file, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.http_base:
            object.__setattr__(self, "http_base", urls.http_base(self.server_ip, self.http_port))
        object.__setattr__(self, "http_base", self.http_base.rstrip("/"))
        if not self.tftp_server:
            object.__setattr__(self, "tftp_server", self.server_ip)

    # URL builders (the one implementation lives in netboot.boot.urls)

    def boot_script_url(self, mac: MacAddress | str, profile: str | None = None) -> str:
        return urls.boot_script_url(self.http_base, mac, profile)

    def answer_url(self, mac: MacAddress | str, file: str, token: str | None) -> str:
        return urls.answer_url(self.http_base, mac, file, token)

    def done_url(self, mac: MacAddress | str, token: str | None) -> str:
        return urls.done_url(self.http_base, mac, token)

    def files_url(self, profile: str, path: str) -> str:
        return urls.files_url(self.http_base, profile, path)


def merge_variables(
    facts: ServerFacts, profile: Profile | None, group: Group | None, system: System | None
) -> dict[str, Any]:
    """The ``vars`` layer: site < profile (with parents) < group < system."""
    site = plain(facts.variables)
    if facts.domain:
        site.setdefault("domain", facts.domain)
    merged: dict[str, Any] = site
    for layer in (
        profile.variables if profile else None,
        group.variables if group else None,
        system.variables if system else None,
    ):
        if layer:
            merged = deep_merge(merged, plain(layer))
    return merged


def _check_ident(system: System, name: str, value: str | None, pattern: re.Pattern[str]) -> None:
    if value is not None and not pattern.fullmatch(value):
        raise RenderError(f"system {system.mac}", None, f"{name} {value!r} is not usable here")


def _system_context(system: System, variables: Mapping[str, Any]) -> dict[str, Any]:
    _check_ident(system, "hostname", system.hostname, _WORD_OK)
    _check_ident(system, "token", system.token, _TOKEN_OK)
    hostname = system.hostname or f"netboot-{system.mac.hex}"
    domain = variables.get("domain")
    domain = domain if isinstance(domain, str) and domain else None
    # a variable (site, profile, group or the API's), but it lands beside the hostname in line-based files
    _check_ident(system, "domain", domain, _WORD_OK)
    return {
        "mac": system.mac.colon,
        "mac_hex": system.mac.hex,
        "mac_dashed": system.mac.colon.replace(":", "-"),
        "pxelinux": system.mac.pxelinux,
        "hostname": hostname,
        "domain": domain,
        "fqdn": f"{hostname}.{domain}" if domain and "." not in hostname else hostname,
        "ip": str(system.ip) if isinstance(system.ip, IPv4Address | IPv6Address) else None,
        "token": system.token,
        "arch": system.arch,
        "uuid": system.uuid,
        "labels": plain(system.labels),
        "profile": system.profile,
        "state": system.state.value,
    }


def grub_path(url: str) -> str | None:
    """``tftp://h/p`` -> ``(tftp,h)/p`` for GRUB's net device; None for a URL GRUB cannot fetch.

    GRUB configs serve the shim-grub chain, and Debian 12's signed GRUB has no ``http`` module (nor can it
    load one under Secure Boot lockdown), so ``http://`` and ``https://`` are both out of its reach."""
    parts = urlsplit(url)
    if parts.scheme != "tftp" or not parts.netloc:
        return None
    return f"(tftp,{parts.netloc}){parts.path or '/'}"


def resolve_source(facts: ServerFacts, profile: Profile, source: FileSource) -> dict[str, Any]:
    """Where a boot file is fetched from: served by us if the local file exists, else its URL."""
    local = _in_data_dir(facts, profile, source)
    if local or not source.url:
        assert source.path is not None
        url = facts.files_url(profile.name, source.path)
        present = local
    else:
        url = source.url
        present = True
    # GRUB fetches what netboot serves over TFTP, also a file not put in place yet (its fetch fails as
    # its HTTP one would): Debian 12's signed GRUB (the shim-grub chain) has no http
    # (docs/secure-boot-research.md)
    if source.path and (local or not source.url):
        grub: str | None = f"(tftp,{facts.tftp_server}){urls.tftp_files_path(profile.name, source.path)}"
    else:
        grub = grub_path(url)
    return {"url": url, "name": source.name, "local": local, "present": present, "grub": grub}


def boot_file_presence(facts: ServerFacts, profile: Profile | None) -> tuple[bool, ...]:
    """Whether each of the profile's boot files (kernel, then initrds) is in its data directory: the one
    fact of the disk a render depends on (:func:`resolve_source`, :mod:`netboot.render.memo`)."""
    if profile is None or not profile.installs or profile.kernel is None or profile.data_dir is None:
        return ()
    return tuple(_in_data_dir(facts, profile, s) for s in (profile.kernel, *profile.initrds))


def _in_data_dir(facts: ServerFacts, profile: Profile, source: FileSource) -> bool:
    """Whether ``source`` names a file that is in ``profile``'s data directory."""
    if not source.path or profile.data_dir is None:
        return False
    return facts.file_exists(_data_path(profile.data_dir, source.path))


@functools.lru_cache(maxsize=1024)
def _data_path(data_dir: Path, relative: str) -> Path:
    """``data_dir / relative``, made once (pathlib's join is most of a remembered render's presence check)."""
    return data_dir / relative


def _extra_args(variables: Mapping[str, Any]) -> list[str]:
    """``vars.kernel_args`` (a string or a list, from site, profile, group or system) joins the kernel line:
    e.g. ``console=ttyS0`` for a VM whose serial console is logged.

    Variables may be multi-line and come from the API, and this is the one variable the shipped boot
    scripts print as words: so only whitespace-free words without a control character, and none iPXE would
    read as the end of the ``kernel`` command (``;``, ``&&``, ``||``, ``#...``). Data never adds a command.
    """
    raw = variables.get("kernel_args")
    words = raw.split() if isinstance(raw, str) else [str(w) for w in raw] if isinstance(raw, list) else []
    return [w for w in words if _WORD_OK.fullmatch(w) and not ipxe_separator(w)]


def _boot_context(
    facts: ServerFacts, profile: Profile, system: dict[str, Any], installer: InstallerUrls,
    variables: Mapping[str, Any],
) -> dict[str, Any] | None:
    if not profile.installs or profile.kernel is None:
        return None
    args = installer_args(profile.kind, installer, system["hostname"], system["domain"], profile.cmdline)
    args = [*args, *_extra_args(variables)]
    kernel = resolve_source(facts, profile, profile.kernel)
    initrds = [resolve_source(facts, profile, s) for s in profile.initrds]
    return {
        "format": profile.kernel_type,
        "kernel": kernel,
        "initrds": initrds,
        "args": args,
        "cmdline": " ".join(args),
        "grub_ready": all(f["grub"] is not None for f in [kernel, *initrds]),
    }


def build_context(
    facts: ServerFacts, profile: Profile | None, group: Group | None, system: System | None
) -> dict[str, Any]:
    """The template context for ``system`` installing ``profile`` as matched by ``group``."""
    variables = merge_variables(facts, profile, group, system)
    sys_ctx = _system_context(system, variables) if system else None
    mac: MacAddress | str = system.mac if system else urls.IPXE_MAC
    token = system.token if system else None
    answer = {f: facts.answer_url(mac, f, token) for f in (profile.answer_files if profile else ())}
    installer = InstallerUrls(
        answer=answer,
        answer_dir=urls.answer_dir_url(facts.http_base, mac),
        nocloud_seed=urls.nocloud_seed_url(facts.http_base, mac, token) if system else "",
    )
    return {
        "server": {
            "ip": facts.server_ip,
            "http_port": facts.http_port,
            "http_base": facts.http_base,
            "tftp_server": facts.tftp_server,
            "domain": facts.domain,
        },
        "vars": variables,
        "system": sys_ctx,
        "profile": (
            {
                "name": profile.name,
                "kind": profile.kind,
                "description": profile.description,
                "lineage": list(profile.lineage),
            }
            if profile
            else None
        ),
        "group": {"name": group.name, "description": group.description} if group else None,
        "urls": {
            "boot_script": facts.boot_script_url(mac),
            "answer": answer,
            "answer_dir": installer.answer_dir,
            "nocloud_seed": installer.nocloud_seed,
            "done": facts.done_url(mac, token),
            "files": urls.files_url(facts.http_base, profile.name, "") if profile else None,
        },
        "boot": _boot_context(facts, profile, sys_ctx, installer, variables) if profile and sys_ctx else None,
    }
