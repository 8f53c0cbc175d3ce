"""Profiles and groups: what to install, and on which machines.

A *profile* is a folder ``profiles/<name>/`` with a ``profile.yaml`` and the templates of its answer files.
A *group* is a file ``profiles/_groups/<name>.yaml`` that maps machines (by MAC, arch, UUID or labels) to a
profile and adds variables. Both are admin-written and reviewed like code, so a mistake is refused at load
with ``file:line: reason`` (unknown key with a did-you-mean, wrong type, missing key, parent cycle, unknown
parent, missing template, a path that escapes its tree) instead of surfacing mid-install.

The package, by job: :mod:`.model` (the loaded values: Profile, Group, Selector, SystemFacts,
FileSource), :mod:`.schema` (the file shapes, pydantic), :mod:`.loader` (reading a folder: inheritance,
templates, data directories, every error collected), :mod:`.selection` (ProfileSet: the most specific
group for a machine; how it leaves for its disk). See ``docs/profiles.md`` for the keys.
"""

from netboot.profiles.loader import ProfileErrors, load_profiles, load_profiles_collect
from netboot.profiles.model import (
    DEFAULT_DATA_DIR,
    GROUPS_DIR,
    PROFILE_FILE,
    SNIPPETS_DIR,
    FileSource,
    Group,
    Profile,
    Selector,
    SystemFacts,
    deep_merge,
    norm_uuid,
    secret_names,
)
from netboot.profiles.schema import (
    GROUP_KEYS,
    PROFILE_KEYS,
    SELECTOR_KEYS,
    SOURCE_KEYS,
    GroupFile,
    ProfileFile,
    SelectorFile,
    SourceFile,
)
from netboot.profiles.selection import ProfileSet, boot_chain_for, local_boot_for
from netboot.schema_types import BOOT_CHAIN_CHOICES, LOCAL_BOOT_CHOICES, NAME_RE, did_you_mean

__all__ = [
    "BOOT_CHAIN_CHOICES",
    "DEFAULT_DATA_DIR",
    "GROUPS_DIR",
    "GROUP_KEYS",
    "LOCAL_BOOT_CHOICES",
    "NAME_RE",
    "PROFILE_FILE",
    "PROFILE_KEYS",
    "SELECTOR_KEYS",
    "SNIPPETS_DIR",
    "SOURCE_KEYS",
    "FileSource",
    "Group",
    "GroupFile",
    "Profile",
    "ProfileErrors",
    "ProfileFile",
    "ProfileSet",
    "Selector",
    "SelectorFile",
    "SourceFile",
    "SystemFacts",
    "boot_chain_for",
    "deep_merge",
    "did_you_mean",
    "load_profiles",
    "load_profiles_collect",
    "local_boot_for",
    "norm_uuid",
    "secret_names",
]
