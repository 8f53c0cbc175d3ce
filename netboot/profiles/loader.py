"""Reading a ``profiles/`` folder: every profile and group file, inheritance, templates, data directories.

A *profile* is a folder ``profiles/<name>/`` with a ``profile.yaml`` and the templates of its answer files.
A *group* is a file ``profiles/_groups/<name>.yaml``. Each file is validated against its shape in
:mod:`.schema`; then what spans files is checked here: parent cycles and unknown parents, the merged
profile's required keys, templates found on disk, boot files and data directories that stay inside their
trees, a group's profile existing. One load collects every problem of every file (``netboot check``
shows them all); :func:`load_profiles` raises them together as :class:`ProfileErrors`.

Inheritance: a profile may name a ``parent``. The child's keys override the parent's, ``variables`` are
merged deeply, ``secrets`` are the union, and ``templates``/``validate`` key by key; templates are looked
up in the child's folder first, then each ancestor's, then ``profiles/_snippets/`` (so a child overrides
one template by shipping a file of the same name).

A data directory (given or the default) may not contain any of the ``private`` paths the caller names
(netboot's data directory, its database): everything under it is served to anyone under ``/files/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import ValidationError

from netboot.profiles.model import (
    DEFAULT_DATA_DIR,
    GROUPS_DIR,
    PROFILE_FILE,
    FileSource,
    Group,
    Profile,
    Selector,
    deep_merge,
)
from netboot.profiles.schema import GroupFile, ProfileFile, safe_relative
from netboot.profiles.selection import ProfileSet
from netboot.schema_types import NAME_RE, FileModel, did_you_mean
from netboot.yamlsource import Located, SourceError, SourceErrors, load, schema_errors


class ProfileErrors(SourceErrors):
    """Every problem found while loading profiles; ``errors`` has each one, ``str()`` one per line."""


def load_profiles(profiles_dir: Path, *, private: Iterable[Path] | None = None) -> ProfileSet:
    """Load every profile and group under ``profiles_dir``; raise :class:`ProfileErrors` listing all.

    ``private``: paths no ``data_dir`` may contain or be (netboot's data directory, the database file),
    since everything under a data directory is served to anyone under ``/files/``; None: no such check.
    """
    profile_set, errors = load_profiles_collect(profiles_dir, private=private)
    if errors:
        raise ProfileErrors(errors)
    return profile_set


def load_profiles_collect(
    profiles_dir: Path, *, private: Iterable[Path] | None = None
) -> tuple[ProfileSet, list[SourceError]]:
    """Load what is valid and return it with the list of problems (for ``netboot check``).

    ``private`` as for :func:`load_profiles`.
    """
    return _Loader(Path(profiles_dir), tuple(private or ())).run()


_M = TypeVar("_M", bound=FileModel)


def _inside(root: str, path: str) -> bool:
    return os.path.commonpath([root, path]) == root


@dataclass
class _Raw:
    """One profile.yaml after its own checks: its own keys only, before inheritance."""

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


def _validate(model: type[_M], loc: Located, errors: list[SourceError]) -> tuple[_M | None, dict[str, Any]]:
    """``loc`` as ``model``, every problem appended to ``errors``.

    On failure, also the keys that are fine on their own (a broken profile's ``parent`` still names
    its lineage, a broken group's ``profile`` is still checked), as a dict of raw values.
    """
    try:
        return model.model_validate(loc.data), {}
    except ValidationError as exc:
        errors.extend(schema_errors(loc, exc, model, quote_unknown=True))
        if not isinstance(loc.data, dict):
            return None, {}
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        return None, {k: v for k, v in loc.data.items() if k not in bad}


class _Loader:
    """One load of a profiles folder; collects every error instead of stopping at the first."""

    def __init__(self, root: Path, private: tuple[Path, ...] = ()) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        #: (as configured, real path) of each path no data directory may contain
        self.private = tuple((p, os.path.realpath(p)) for p in private)
        self.errors: list[SourceError] = []
        self.raws: dict[str, _Raw] = {}

    def err(self, loc: Located, path: str, reason: str, *, key: bool = True) -> None:
        self.errors.append(SourceError(loc.file, loc.line(path), path if key and path else None, reason))

    def unknown(self, loc: Located, path: str, name: str, choices: Sequence[str]) -> None:
        shown = f"{path}.{name}"
        self.errors.append(
            SourceError(
                loc.file, loc.line(shown), None, f"unknown key {shown!r}{did_you_mean(name, choices)}"
            )
        )

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

    # -- profiles

    def read_profile(self, folder: Path) -> None:
        try:
            loc = load(folder / PROFILE_FILE)
        except SourceError as exc:
            self.errors.append(exc)
            return
        name = folder.name
        before = len(self.errors)
        if not NAME_RE.fullmatch(name):
            self.err(loc, "", f"profile folder name {name!r} must match {NAME_RE.pattern}")
        shape, good = _validate(ProfileFile, loc, self.errors)
        if shape is not None:
            fields = shape.fields()
        else:
            # only the parent is needed from a broken file: to name it in its children's errors
            parent = good.get("parent")
            fields = {"parent": parent} if isinstance(parent, str) and NAME_RE.fullmatch(parent) else {}
        self.raws[name] = _Raw(name, folder, loc, fields, ok=len(self.errors) == before)

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
                elif key == "secrets":
                    value = merged.fields.get("secrets", frozenset()) | value
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
            secrets=f.get("secrets", frozenset()),
            menu=f.get("menu", True),
            local_boot=f.get("local_boot"),
            boot_chain=f.get("boot_chain"),
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
                if not safe_relative(text):
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
            return self.not_private(path, o, "data_dir", text)
        holder_key = "kernel" if "kernel" in origin else "initrd"
        holder = origin.get(holder_key)
        if holder is None:
            return None
        return self.not_private(holder.dir / DEFAULT_DATA_DIR, holder, holder_key, DEFAULT_DATA_DIR)

    def not_private(self, path: Path, origin: _Raw, key: str, text: str) -> Path | None:
        """``path``, or None after recording that it contains one of the private paths."""
        real = os.path.realpath(path)
        for given, real_private in self.private:
            if _inside(real, real_private):
                self.err(
                    origin.located,
                    key,
                    f"data directory {text!r} contains {given}, netboot's own (the database and the web "
                    "secret key would be served to anyone under /files/): use a folder of its own",
                )
                return None
        return path

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
        if not NAME_RE.fullmatch(name):
            self.err(loc, "", f"group file name {name!r} must match {NAME_RE.pattern}")
        shape, good = _validate(GroupFile, loc, self.errors)
        profile = shape.profile if shape is not None else good.get("profile")
        if isinstance(profile, str) and profile not in profiles:
            if profile in self.raws:
                self.err(loc, "profile", f"profile {profile!r} has errors", key=False)
            else:
                hint = did_you_mean(profile, sorted(self.raws))
                self.err(loc, "profile", f"unknown profile {profile!r}{hint}", key=False)
        if shape is None or len(self.errors) != before:
            return None
        s = shape.selector
        selector = Selector(s.mac, s.arch, s.uuid, MappingProxyType(dict(s.labels)))
        return Group(
            name=name,
            file=path,
            profile=shape.profile,
            selector=selector,
            description=shape.description,
            variables=MappingProxyType(dict(shape.variables)),
            secrets=shape.secrets,
            local_boot=shape.local_boot,
            boot_chain=shape.boot_chain,
        )
