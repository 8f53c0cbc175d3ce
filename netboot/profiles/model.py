"""What a loaded profile, group and selector are: frozen values the rest of netboot reads.

:class:`Profile` and :class:`Group` are plain frozen dataclasses (compared by identity: two loads of the
same folder are different profiles). The file shapes they are read from are :mod:`.schema`.

``local_boot`` on a :class:`Profile` or :class:`Group` is ``None`` when the file (and, for a profile, no
ancestor) said nothing, so the boot core can tell "unset" (fall back to the next level and finally the
site default ``local-boot``, ``skip``) from an explicit method; see :func:`.selection.local_boot_for`.
``boot_chain`` is the same: ``None`` when unset, so the site's ``boot-chain`` (``ipxe``) applies only when
nothing more specific says; see :func:`.selection.boot_chain_for`.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from netboot.arch import Arch
from netboot.fs import PathRefused, resolve
from netboot.inventory import System
from netboot.mac import MacAddress

PROFILE_FILE = "profile.yaml"
SNIPPETS_DIR = "_snippets"
GROUPS_DIR = "_groups"
#: Default data directory of a profile (relative to the folder of the profile that names the files).
DEFAULT_DATA_DIR = "files"


@dataclass(frozen=True, slots=True)
class FileSource:
    """A boot file: ``path`` inside the profile's data directory, ``url`` to fetch, or both.

    With both, the local file is used when it exists and the URL otherwise: that is how a profile says
    "the packaged installer if it is installed, else the mirror".
    """

    path: str | None
    url: str | None

    @property
    def name(self) -> str:
        """The file's base name (iPXE's ``initrd=NAME`` under UEFI)."""
        if self.path:
            return PurePosixPath(self.path).name
        assert self.url is not None
        return PurePosixPath(self.url.split("?", 1)[0].split("#", 1)[0]).name or "file"


@dataclass(frozen=True, eq=False)
class Profile:
    """One loaded profile with its parents already merged in. Compared and hashed by identity."""

    name: str
    file: Path
    dir: Path
    kind: str
    description: str = ""
    parent: str | None = None
    kernel: FileSource | None = None
    initrds: tuple[FileSource, ...] = ()
    cmdline: tuple[str, ...] = ()
    kernel_type: str = "linux"
    data_dir: Path | None = None
    #: answer-file name (``ks.cfg``) -> template name, looked up along :attr:`search_path`
    templates: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: variable names only the machine reads (``secrets:``, merged over the parents); the default rule of
    #: :mod:`netboot.secretvars` applies on top
    secrets: frozenset[str] = frozenset()
    menu: bool = True
    #: how the machine leaves for its disk (see the module docstring); None: not set here or above
    local_boot: str | None = None
    #: ``ipxe`` or ``shim-grub`` (Secure Boot), see the module docstring; None: not set here or above
    boot_chain: str | None = None
    validate: Mapping[str, str] = field(default_factory=dict)
    #: template folders, this profile's first, then each ancestor's (without ``_snippets``)
    search_path: tuple[Path, ...] = ()
    #: this profile's name, then its parent's, and so on
    lineage: tuple[str, ...] = ()

    @property
    def answer_files(self) -> tuple[str, ...]:
        """The file names served under ``/answer/<mac>/`` for this profile's kind."""
        return tuple(self.templates)

    @property
    def installs(self) -> bool:
        return self.kind != "local"

    def data_file(self, path: str) -> Path | None:
        """The regular file ``path`` names inside the data directory, or None (missing or escaping).

        Goes through :func:`netboot.fs.resolve`, the one path sandbox the HTTP ``/files`` route uses too.
        """
        if self.data_dir is None:
            return None
        try:
            return resolve(self.data_dir, path)
        except PathRefused:
            return None


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """What group selectors can match on, taken from a :class:`System` and the boot request."""

    mac: MacAddress
    arch: str | None = None
    uuid: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: a profile assigned to the system itself (wins over any group's profile)
    profile: str | None = None

    @classmethod
    def from_system(cls, system: System, arch: str | Arch | None = None) -> SystemFacts:
        """Facts of ``system``; ``arch`` (from the current boot request) beats the stored arch."""
        seen = arch.value if isinstance(arch, Arch) else arch
        return cls(
            mac=system.mac,
            arch=seen or system.arch,
            uuid=system.uuid,
            labels=dict(system.labels),
            profile=system.profile,
        )


@dataclass(frozen=True, slots=True)
class Selector:
    """All given selectors must match. Unset ones match anything."""

    mac: MacAddress | None = None
    arch: str | None = None
    uuid: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def specificity(self) -> int:
        return (self.mac is not None) + (self.arch is not None) + (self.uuid is not None) + len(self.labels)

    def matches(self, facts: SystemFacts) -> bool:
        if self.mac is not None and self.mac != facts.mac:
            return False
        if self.arch is not None and self.arch != facts.arch:
            return False
        if self.uuid is not None and self.uuid != norm_uuid(facts.uuid):
            return False
        return all(facts.labels.get(k) == v for k, v in self.labels.items())


@dataclass(frozen=True, eq=False)
class Group:
    """Machines matching ``selector`` get ``profile`` and ``variables`` (above the profile's).
    Compared and hashed by identity."""

    name: str
    file: Path
    profile: str
    selector: Selector = field(default_factory=Selector)
    description: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)
    #: variable names only the machine reads, added to its profile's
    secrets: frozenset[str] = frozenset()
    #: how the group's machines leave for their disk, above their profile's; None: the group does not say
    local_boot: str | None = None
    #: the loaders the group's machines get (``ipxe``/``shim-grub``), above their profile's; None: unset
    boot_chain: str | None = None


def secret_names(profile: Profile | None, group: Group | None) -> frozenset[str]:
    """The explicit secret variable names for a machine installing ``profile`` as matched by ``group``."""
    return (profile.secrets if profile else frozenset()) | (group.secrets if group else frozenset())


def norm_uuid(text: str | None) -> str | None:
    """The canonical lowercase form of a UUID (braces and case ignored); other text lowercased."""
    if not text:
        return None
    try:
        return str(uuidlib.UUID(text.strip("{}")))
    except ValueError:
        return text.lower()


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge, everything else (lists too) is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out
