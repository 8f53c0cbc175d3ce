"""Profiles and groups: what to install, and on which machines.

A *profile* is a folder ``profiles/<name>/`` with a ``profile.yaml`` and the templates of its answer files.
A *group* is a file ``profiles/_groups/<name>.yaml`` that maps machines (by MAC, arch, UUID or labels) to a
profile and adds variables. Both are admin-written and reviewed like code, so a mistake is refused at load
with ``file:line: reason`` (unknown key with a did-you-mean, wrong type, missing key, parent cycle, unknown
parent, missing template, a path that escapes its tree) instead of surfacing mid-install.

Inheritance: a profile may name a ``parent``. The child's keys override the parent's, ``variables`` are
merged deeply and ``templates``/``validate`` key by key; templates are looked up in the child's folder
first, then each ancestor's, then ``profiles/_snippets/`` (so a child overrides one template by shipping a
file of the same name).

Selection: the most specific group whose selectors all match a machine wins (specificity = number of
selectors, each label counting one); ties go to the group whose name sorts first. A profile assigned to
the system itself beats the group's profile, and then only groups for that profile are considered.

See ``docs/profiles.md`` for the keys.
"""

from __future__ import annotations

import difflib
import os
import re
import uuid as uuidlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from netboot.arch import Arch
from netboot.fs import PathRefused, resolve
from netboot.inventory import System
from netboot.mac import InvalidMac, MacAddress
from netboot.yamlsource import Located, SourceError, load

PROFILE_FILE = "profile.yaml"
SNIPPETS_DIR = "_snippets"
GROUPS_DIR = "_groups"
#: Default data directory of a profile (relative to the folder of the profile that names the files).
DEFAULT_DATA_DIR = "files"

#: Profile and group names appear in URLs (``/files/<profile>/``) and iPXE labels: keep them plain.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_URL_RE = re.compile(r"^(https?|tftp)://[^\s]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

PROFILE_KEYS = (
    "description",
    "parent",
    "kind",
    "kernel",
    "initrd",
    "cmdline",
    "kernel_type",
    "data_dir",
    "templates",
    "variables",
    "menu",
    "local_boot",
    "validate",
)
SOURCE_KEYS = ("path", "url")
GROUP_KEYS = ("description", "profile", "selector", "variables")
SELECTOR_KEYS = ("mac", "arch", "uuid", "labels")
_ARCHES = tuple(a.value for a in Arch)


# --------------------------------------------------------------------------------------------- model


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
    menu: bool = True
    local_boot: str = "auto"
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
        if self.uuid is not None and self.uuid != _norm_uuid(facts.uuid):
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


class ProfileErrors(SourceError):
    """Every problem found while loading profiles; ``errors`` has each one, ``str()`` one per line."""

    def __init__(self, errors: Sequence[SourceError]) -> None:
        first = errors[0]
        super().__init__(first.file, first.line, first.key, first.reason)
        self.errors = list(errors)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return str(self.args[0])


class ProfileSet:
    """The loaded profiles and groups of one ``profiles/`` folder. Immutable; reload makes a new one."""

    def __init__(self, root: Path, profiles: Mapping[str, Profile], groups: Sequence[Group]) -> None:
        self.root = root
        self.snippets_dir = root / SNIPPETS_DIR
        self._profiles = dict(sorted(profiles.items()))
        #: most specific first, then by name: the first match wins
        self.groups = tuple(sorted(groups, key=lambda g: (-g.selector.specificity, g.name)))

    def get(self, name: str) -> Profile | None:
        return self._profiles.get(name)

    def names(self) -> list[str]:
        return list(self._profiles)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self._profiles.values())

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, name: object) -> bool:
        return name in self._profiles

    def menu_profiles(self) -> list[Profile]:
        """Installer profiles offered in the boot menu for unknown machines, by name."""
        return [p for p in self._profiles.values() if p.menu and p.installs]

    def select_profile(self, facts: SystemFacts) -> tuple[Profile | None, Group | None]:
        """The profile for a machine and the group that matched it (None when none matched).

        An unknown profile name (assigned to the system but since removed) gives ``(None, None)``.
        """
        best = None
        for group in self.groups:
            if facts.profile is not None and group.profile != facts.profile:
                continue
            if group.selector.matches(facts):
                best = group
                break
        name = facts.profile or (best.profile if best else None)
        profile = self.get(name) if name else None
        if profile is None:
            return None, None
        return profile, best

    def select(self, system: System, arch: str | Arch | None = None) -> tuple[Profile | None, Group | None]:
        """:meth:`select_profile` for a stored system, with the arch seen in this boot request."""
        return self.select_profile(SystemFacts.from_system(system, arch))


# ------------------------------------------------------------------------------------------- loading


def load_profiles(profiles_dir: Path) -> ProfileSet:
    """Load every profile and group under ``profiles_dir``; raise :class:`ProfileErrors` listing all."""
    profile_set, errors = load_profiles_collect(profiles_dir)
    if errors:
        raise ProfileErrors(errors)
    return profile_set


def load_profiles_collect(profiles_dir: Path) -> tuple[ProfileSet, list[SourceError]]:
    """Load what is valid and return it with the list of problems (for ``netboot check``)."""
    return _Loader(Path(profiles_dir)).run()


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'kernel'?)`` when a choice is close to ``word``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _safe_relative(path: str) -> bool:
    p = PurePosixPath(path)
    return bool(path) and "\\" not in path and not p.is_absolute() and ".." not in p.parts


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


def _norm_uuid(text: str | None) -> str | None:
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


class _Invalid:
    """Marks a value that failed its check (the error is already recorded)."""


_INVALID = _Invalid()


@dataclass
class _Raw:
    """One profile.yaml after per-file checks: its own keys only, before inheritance."""

    name: str
    dir: Path
    located: Located
    fields: dict[str, Any]
    ok: bool


@dataclass
class _Merged:
    """A profile's keys after inheritance, each remembering which file set it (for error lines)."""

    fields: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, _Raw] = field(default_factory=dict)
    template_origin: dict[str, _Raw] = field(default_factory=dict)


class _Loader:
    """One load of a profiles folder; collects every error instead of stopping at the first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.errors: list[SourceError] = []
        self.raws: dict[str, _Raw] = {}

    # -- error helpers

    def err(self, loc: Located, path: str, reason: str, *, key: bool = True) -> _Invalid:
        self.errors.append(SourceError(loc.file, loc.line(path), path if key and path else None, reason))
        return _INVALID

    def unknown(self, loc: Located, path: str, name: str, choices: Sequence[str]) -> _Invalid:
        shown = f"{path}.{name}" if path else name
        line = loc.line(f"{path}.{name}" if path else name)
        self.errors.append(
            SourceError(loc.file, line, None, f"unknown key {shown!r}{did_you_mean(name, choices)}")
        )
        return _INVALID

    # -- top level

    def run(self) -> tuple[ProfileSet, list[SourceError]]:
        if not self.root.is_dir():
            err = SourceError(str(self.root), None, None, "profiles folder not found")
            return ProfileSet(self.root, {}, []), [err]
        for entry in sorted(self.root.iterdir()):
            if entry.name.startswith((".", "_")) or not (entry / PROFILE_FILE).is_file():
                continue
            self.read_profile(entry)
        profiles: dict[str, Profile] = {}
        for name in sorted(self.raws):
            profile = self.build(name)
            if profile is not None:
                profiles[name] = profile
        groups = self.read_groups(profiles)
        self.errors.sort(key=lambda e: (e.file, e.line or 0))
        return ProfileSet(self.root, profiles, groups), self.errors

    # -- per file

    def read_profile(self, folder: Path) -> None:
        try:
            loc = load(folder / PROFILE_FILE)
        except SourceError as exc:
            self.errors.append(exc)
            return
        name = folder.name
        before = len(self.errors)
        if not NAME_RE.match(name):
            self.err(loc, "", f"profile folder name {name!r} must match {NAME_RE.pattern}")
        fields: dict[str, Any] = {}
        if not isinstance(loc.data, dict):
            self.err(loc, "", "a profile must be a mapping of keys (description, kind, kernel, ...)")
        else:
            for key, value in loc.data.items():
                if key not in PROFILE_KEYS:
                    self.unknown(loc, "", key, PROFILE_KEYS)
                    continue
                checked = self.check_field(loc, key, value)
                if checked is not _INVALID:
                    fields[key] = checked
        self.raws[name] = _Raw(name, folder, loc, fields, ok=len(self.errors) == before)

    def check_field(self, loc: Located, key: str, value: Any) -> Any:
        if key == "description":
            return self.text(loc, key, value)
        if key == "parent":
            text = self.text(loc, key, value)
            if isinstance(text, str) and not NAME_RE.match(text):
                return self.err(loc, key, f"{text!r} is not a profile name")
            return text
        if key == "kind":
            from netboot.render.kinds import KINDS

            return self.choice(loc, key, value, tuple(KINDS), "kind")
        if key == "kernel_type":
            from netboot.render.kinds import KERNEL_TYPES

            return self.choice(loc, key, value, KERNEL_TYPES, "kernel type")
        if key == "local_boot":
            from netboot.render.kinds import LOCAL_BOOT_METHODS

            return self.choice(loc, key, value, LOCAL_BOOT_METHODS, "local boot method")
        if key == "kernel":
            return self.source(loc, key, value)
        if key == "initrd":
            items = value if isinstance(value, list) else [value]
            prefix = "initrd" if not isinstance(value, list) else None
            out = [self.source(loc, prefix or f"initrd.{i}", item) for i, item in enumerate(items)]
            return _INVALID if any(o is _INVALID for o in out) else tuple(out)
        if key == "cmdline":
            return self.cmdline(loc, value)
        if key == "data_dir":
            text = self.text(loc, key, value)
            if isinstance(text, str) and not text.strip():
                return self.err(loc, key, "must not be empty")
            return text
        if key == "templates":
            return self.templates(loc, value)
        if key == "variables":
            if not isinstance(value, dict):
                return self.err(loc, key, f"expected a mapping of variables, got {_type(value)}")
            return value
        if key == "menu":
            if not isinstance(value, bool):
                return self.err(loc, key, f"expected true or false, got {_type(value)}")
            return value
        if key == "validate":
            return self.str_mapping(loc, key, value)
        raise AssertionError(key)  # pragma: no cover - PROFILE_KEYS and this table agree

    def text(self, loc: Located, path: str, value: Any) -> str | _Invalid:
        if not isinstance(value, str):
            return self.err(loc, path, f"expected a string, got {_type(value)}")
        if _CONTROL_RE.search(value):
            return self.err(loc, path, "must not contain control characters (newline, tab, ...)")
        return value

    def choice(self, loc: Located, path: str, value: Any, choices: Sequence[str], what: str) -> Any:
        text = self.text(loc, path, value)
        if isinstance(text, str) and text not in choices:
            return self.err(
                loc,
                path,
                f"unknown {what} {text!r}{did_you_mean(text, choices)}; one of: {', '.join(choices)}",
            )
        return text

    def str_mapping(self, loc: Located, path: str, value: Any) -> dict[str, str] | _Invalid:
        if not isinstance(value, dict):
            return self.err(loc, path, f"expected a mapping, got {_type(value)}")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not isinstance(v, str | int | float) or isinstance(v, bool):
                self.err(loc, f"{path}.{k}", f"expected a string, got {_type(v)}")
                continue
            out[k] = str(v)
        return out

    def relpath(self, loc: Located, path: str, value: Any, within: str) -> str | _Invalid:
        text = self.text(loc, path, value)
        if not isinstance(text, str):
            return text
        if not text:
            return self.err(loc, path, "must not be empty")
        if not _safe_relative(text):
            return self.err(loc, path, f"{text!r} escapes {within}: give a path relative to it, without '..'")
        return str(PurePosixPath(text))

    def source(self, loc: Located, path: str, value: Any) -> FileSource | _Invalid:
        if isinstance(value, str):
            if "://" in value:
                whole = self.url(loc, path, value)
                return FileSource(None, whole) if isinstance(whole, str) else whole
            only = self.relpath(loc, path, value, "the data directory")
            return FileSource(only, None) if isinstance(only, str) else only
        if not isinstance(value, dict):
            return self.err(loc, path, f"expected a path, a URL or {{path, url}}, got {_type(value)}")
        bad = False
        for k in value:
            if k not in SOURCE_KEYS:
                self.unknown(loc, path, k, SOURCE_KEYS)
                bad = True
        rel: str | _Invalid | None = None
        url: str | _Invalid | None = None
        if "path" in value:
            rel = self.relpath(loc, f"{path}.path", value["path"], "the data directory")
        if "url" in value:
            url = self.url(loc, f"{path}.url", value["url"])
        if rel is None and url is None:
            return self.err(loc, path, "needs 'path' (in the data directory), 'url', or both")
        if bad or isinstance(rel, _Invalid) or isinstance(url, _Invalid):
            return _INVALID
        return FileSource(rel, url)

    def url(self, loc: Located, path: str, value: Any) -> str | _Invalid:
        text = self.text(loc, path, value)
        if not isinstance(text, str):
            return text
        if not _URL_RE.match(text):
            return self.err(loc, path, f"{text!r} is not an http://, https:// or tftp:// URL")
        return text

    def cmdline(self, loc: Located, value: Any) -> tuple[str, ...] | _Invalid:
        if isinstance(value, str):
            if _CONTROL_RE.search(value):
                return self.err(loc, "cmdline", "must not contain control characters")
            return tuple(value.split())
        if not isinstance(value, list):
            return self.err(loc, "cmdline", f"expected a list of kernel arguments, got {_type(value)}")
        out: list[str] = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                self.err(loc, f"cmdline.{i}", f"expected a string, got {_type(item)}")
                return _INVALID
            text = str(item)
            if _CONTROL_RE.search(text) or not text.strip():
                self.err(loc, f"cmdline.{i}", "must be a non-empty argument without control characters")
                return _INVALID
            out.extend(text.split())
        return tuple(out)

    def templates(self, loc: Located, value: Any) -> dict[str, str] | _Invalid:
        if not isinstance(value, dict):
            return self.err(loc, "templates", f"expected a mapping of file: template, got {_type(value)}")
        out: dict[str, str] = {}
        ok = True
        for k, v in value.items():
            rel = self.relpath(loc, f"templates.{k}", v, "the profile folder")
            if isinstance(rel, str):
                out[k] = rel
            else:
                ok = False
        return out if ok else _INVALID

    # -- inheritance and whole-profile checks

    def lineage(self, name: str) -> list[_Raw] | None:
        """``[self, parent, ...]``, or None after recording why (unknown parent, cycle, broken parent)."""
        chain: list[_Raw] = []
        seen: set[str] = set()
        current: str | None = name
        while current is not None:
            raw = self.raws[current]
            if current in seen:
                return None  # the cycle is reported once, by _report_cycle
            seen.add(current)
            chain.append(raw)
            parent = raw.fields.get("parent")
            if parent is None:
                break
            if parent not in self.raws:
                if raw is chain[0]:
                    choices = sorted(n for n in self.raws if n != raw.name)
                    self.err(
                        raw.located,
                        "parent",
                        f"unknown parent {parent!r}{did_you_mean(parent, choices)}",
                        key=False,
                    )
                return None
            current = parent
        return chain

    def report_cycle(self, name: str) -> bool:
        """Record a parent cycle once, at its alphabetically first member; True if ``name`` is in one."""
        path: list[str] = []
        current: str | None = name
        while current is not None and current in self.raws and current not in path:
            path.append(current)
            current = self.raws[current].fields.get("parent")
        if current is None or current not in path:
            return False
        cycle = path[path.index(current) :]
        if name == min(cycle):
            start = cycle.index(name)
            ring = [*cycle[start:], *cycle[:start], name]
            self.err(self.raws[name].located, "parent", f"parent cycle: {' -> '.join(ring)}", key=False)
        return name in cycle

    def build(self, name: str) -> Profile | None:
        raw = self.raws[name]
        if self.report_cycle(name):
            return None
        chain = self.lineage(name)
        if chain is None:
            if "parent" in raw.fields and raw.fields["parent"] in self.raws:
                self.err(
                    raw.located,
                    "parent",
                    f"not loaded: parent {raw.fields['parent']!r} has errors",
                    key=False,
                )
            return None
        broken = [r for r in chain[1:] if not r.ok]
        if broken:
            self.err(raw.located, "parent", f"not loaded: parent {broken[0].name!r} has errors", key=False)
            return None
        if not raw.ok:
            return None
        merged = _Merged()
        for r in reversed(chain):
            for key, value in r.fields.items():
                if key == "parent":
                    continue
                if key == "variables":
                    value = deep_merge(merged.fields.get("variables", {}), value)
                elif key in ("templates", "validate"):
                    value = {**merged.fields.get(key, {}), **value}
                    if key == "templates":
                        merged.template_origin.update({k: r for k in r.fields[key]})
                merged.fields[key] = value
                merged.origin[key] = r
        before = len(self.errors)
        profile = self.finish(raw, chain, merged)
        return profile if len(self.errors) == before else None

    def finish(self, raw: _Raw, chain: list[_Raw], merged: _Merged) -> Profile | None:
        from netboot.render.kinds import KINDS

        f, origin = merged.fields, merged.origin
        kind_name = f.get("kind")
        if kind_name is None:
            self.err(raw.located, "", "missing required key 'kind'", key=False)
            return None
        kind = KINDS[kind_name]
        if not kind.installs:
            for key in ("kernel", "initrd", "cmdline", "templates"):
                if key in f:
                    o = origin[key]
                    self.err(o.located, key, f"kind {kind_name!r} boots no installer: remove {key!r}")
        elif "kernel" not in f:
            where = origin["kind"]
            self.err(
                where.located,
                "",
                f"missing required key 'kernel' (kind {kind_name!r} boots an installer)",
                key=False,
            )
        dirs = tuple(r.dir for r in chain)
        templates = self.resolve_templates(raw, merged, kind.file_names, dirs)
        data_dir = self.resolve_data_dir(merged)
        kernel: FileSource | None = f.get("kernel")
        initrds: tuple[FileSource, ...] = f.get("initrd", ())
        if data_dir is not None:
            for key, sources in (("kernel", (kernel,) if kernel else ()), ("initrd", initrds)):
                for i, src in enumerate(sources):
                    if src.path and not self.inside_data(data_dir, src.path):
                        sub = key if key == "kernel" or len(initrds) == 1 else f"{key}.{i}"
                        self.err(
                            origin[key].located, sub, f"{src.path!r} escapes the data directory {data_dir}"
                        )
        return Profile(
            name=raw.name,
            file=raw.dir / PROFILE_FILE,
            dir=raw.dir,
            kind=kind_name,
            description=f.get("description", ""),
            parent=raw.fields.get("parent"),
            kernel=kernel,
            initrds=initrds,
            cmdline=f.get("cmdline", ()),
            kernel_type=f.get("kernel_type", "linux"),
            data_dir=data_dir,
            templates=MappingProxyType(templates),
            variables=MappingProxyType(dict(f.get("variables", {}))),
            menu=f.get("menu", True),
            local_boot=f.get("local_boot", "auto"),
            validate=MappingProxyType(dict(f.get("validate", {}))),
            search_path=dirs,
            lineage=tuple(r.name for r in chain),
        )

    def resolve_templates(
        self, raw: _Raw, merged: _Merged, files: tuple[str, ...], dirs: tuple[Path, ...]
    ) -> dict[str, str]:
        given: dict[str, str] = merged.fields.get("templates", {})
        for name in given:
            if name not in files:
                o = merged.template_origin[name]
                self.unknown(o.located, "templates", name, files)
        out: dict[str, str] = {}
        for file in files:
            template = given.get(file, f"{file}.j2")
            if self.find_template(template, dirs) is None:
                o = merged.template_origin.get(file) or merged.origin.get("kind") or raw
                path = f"templates.{file}" if file in given else "kind"
                searched = ", ".join(str(d) for d in dirs)
                self.err(o.located, path, f"template {template!r} not found (searched {searched})")
            out[file] = template
        return out

    def find_template(self, name: str, dirs: Sequence[Path]) -> Path | None:
        for d in dirs:
            root = os.path.realpath(d)
            real = os.path.realpath(os.path.join(root, name))
            if _inside(root, real) and os.path.isfile(real):
                return Path(real)
        return None

    def resolve_data_dir(self, merged: _Merged) -> Path | None:
        f, origin = merged.fields, merged.origin
        if "data_dir" in f:
            o = origin["data_dir"]
            text: str = f["data_dir"]
            if os.path.isabs(text):
                path = Path(text)
            else:
                if not _safe_relative(text):
                    self.err(
                        o.located, "data_dir", f"{text!r} escapes the profiles folder; use an absolute path"
                    )
                    return None
                path = o.dir / text
            real = os.path.realpath(path)
            if _inside(real, self.real_root) or any(
                real == os.path.realpath(r.dir) for r in self.raws.values()
            ):
                self.err(
                    o.located,
                    "data_dir",
                    f"{text!r} would serve profile files (profile.yaml may hold secrets): "
                    "use a folder of its own",
                )
                return None
            return path
        holder = origin.get("kernel") or origin.get("initrd")
        return holder.dir / DEFAULT_DATA_DIR if holder else None

    def inside_data(self, data_dir: Path, path: str) -> bool:
        root = os.path.realpath(data_dir)
        real = os.path.realpath(os.path.join(root, path))
        return _inside(root, real)

    # -- groups

    def read_groups(self, profiles: Mapping[str, Profile]) -> list[Group]:
        folder = self.root / GROUPS_DIR
        if not folder.is_dir():
            return []
        groups: list[Group] = []
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            group = self.read_group(path, profiles)
            if group is not None:
                groups.append(group)
        return groups

    def read_group(self, path: Path, profiles: Mapping[str, Profile]) -> Group | None:
        try:
            loc = load(path)
        except SourceError as exc:
            self.errors.append(exc)
            return None
        before = len(self.errors)
        name = path.stem
        if not NAME_RE.match(name):
            self.err(loc, "", f"group file name {name!r} must match {NAME_RE.pattern}")
        data = loc.data
        if not isinstance(data, dict):
            self.err(loc, "", "a group must be a mapping (profile, selector, variables)")
            return None
        for key in data:
            if key not in GROUP_KEYS:
                self.unknown(loc, "", key, GROUP_KEYS)
        description = self.text(loc, "description", data.get("description", ""))
        profile = data.get("profile")
        if profile is None:
            self.err(loc, "", "missing required key 'profile'", key=False)
        elif isinstance(self.text(loc, "profile", profile), str) and profile not in profiles:
            if profile in self.raws:
                self.err(loc, "profile", f"profile {profile!r} has errors", key=False)
            else:
                self.err(
                    loc,
                    "profile",
                    f"unknown profile {profile!r}{did_you_mean(profile, sorted(self.raws))}",
                    key=False,
                )
        variables = data.get("variables", {})
        if not isinstance(variables, dict):
            self.err(loc, "variables", f"expected a mapping of variables, got {_type(variables)}")
        selector = self.selector(loc, data.get("selector", {}))
        if len(self.errors) != before or not isinstance(selector, Selector):
            return None
        assert isinstance(description, str) and isinstance(profile, str)
        return Group(name, path, profile, selector, description, MappingProxyType(dict(variables)))

    def selector(self, loc: Located, value: Any) -> Selector | _Invalid:
        if not isinstance(value, dict):
            return self.err(loc, "selector", f"expected a mapping of selectors, got {_type(value)}")
        ok = True
        for key in value:
            if key not in SELECTOR_KEYS:
                self.unknown(loc, "selector", key, SELECTOR_KEYS)
                ok = False
        mac: MacAddress | None = None
        if "mac" in value:
            raw_mac = value["mac"]
            if isinstance(raw_mac, int) and not isinstance(raw_mac, bool):
                self.err(loc, "selector.mac", "YAML read this MAC address as a number: put it in quotes")
                ok = False
            elif not isinstance(raw_mac, str):
                self.err(loc, "selector.mac", f"expected a MAC address, got {_type(raw_mac)}")
                ok = False
            else:
                try:
                    mac = MacAddress.parse(raw_mac)
                except InvalidMac as exc:
                    self.err(loc, "selector.mac", str(exc))
                    ok = False
        arch = None
        if "arch" in value:
            chosen = self.choice(loc, "selector.arch", value["arch"], _ARCHES, "arch")
            ok = ok and isinstance(chosen, str)
            arch = chosen if isinstance(chosen, str) else None
        uuid = None
        if "uuid" in value:
            text = self.text(loc, "selector.uuid", value["uuid"])
            if isinstance(text, str):
                try:
                    uuid = str(uuidlib.UUID(text.strip("{}")))
                except ValueError:
                    self.err(loc, "selector.uuid", f"{text!r} is not a UUID")
                    ok = False
            else:
                ok = False
        labels: dict[str, str] | _Invalid = {}
        if "labels" in value:
            labels = self.str_mapping(loc, "selector.labels", value["labels"])
        if not ok or isinstance(labels, _Invalid):
            return _INVALID
        return Selector(mac, arch, uuid, MappingProxyType(labels))


def _type(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {
        dict: "a mapping",
        list: "a list",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
    }.get(type(value), type(value).__name__)
