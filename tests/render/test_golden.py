"""Golden files: every sample profile rendered for the fixed sample system, byte for byte.

A change to a template or to the context shows up here as a diff to review. To accept it, regenerate:

    NETBOOT_UPDATE_GOLDEN=1 .venv/bin/pytest tests/render/test_golden.py

and read ``git diff tests/fixtures/render/golden`` before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netboot.profiles import ProfileSet
from netboot.render import BOOT_KINDS, ServerFacts, render_answer, render_boot_script, sample_system

from .conftest import GOLDEN, SAMPLE_PROFILES, fixed_facts

UPDATE = os.environ.get("NETBOOT_UPDATE_GOLDEN") == "1"


def rendered_profile(profile_set: ProfileSet, name: str, facts: ServerFacts) -> dict[str, str]:
    profile = profile_set.get(name)
    assert profile is not None
    system = sample_system(name)
    out = {
        f: render_answer(profile_set, profile, None, system, facts, f).content for f in profile.answer_files
    }
    for kind in BOOT_KINDS:
        out[f"install.{kind}"] = render_boot_script(
            kind, "install", profile_set, profile, None, system, facts
        )
    return out


def rendered_boot(profile_set: ProfileSet, facts: ServerFacts) -> dict[str, str]:
    return {
        f"{decision}.{kind}": render_boot_script(kind, decision, profile_set, None, None, None, facts)
        for kind in BOOT_KINDS
        for decision in ("menu", "local")
    }


def compare(folder: Path, rendered: dict[str, str]) -> None:
    if UPDATE:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in set(p.name for p in folder.iterdir()) - set(rendered):
            (folder / stale).unlink()
        for name, text in rendered.items():
            (folder / name).write_text(text, encoding="utf-8")
        return
    hint = "regenerate with NETBOOT_UPDATE_GOLDEN=1 and review the diff"
    assert folder.is_dir(), f"no golden files in {folder}: {hint}"
    assert sorted(p.name for p in folder.iterdir()) == sorted(rendered), hint
    for name, text in rendered.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"{folder / name} differs: {hint}"


@pytest.mark.parametrize("name", SAMPLE_PROFILES)
def test_golden_profile(sample_set: ProfileSet, name: str) -> None:
    compare(GOLDEN / name, rendered_profile(sample_set, name, fixed_facts()))


def test_golden_boot_without_profile(sample_set: ProfileSet) -> None:
    compare(GOLDEN / "_boot", rendered_boot(sample_set, fixed_facts()))


def test_golden_debian_from_installed_package(sample_set: ProfileSet) -> None:
    """With debian-installer-12-netboot-amd64 installed, netboot serves the kernel and initrd itself."""
    packaged = Path("/usr/lib/debian-installer/images/12/amd64/text")
    facts = fixed_facts(file_exists=lambda p: packaged in p.parents)
    rendered = rendered_profile(sample_set, "debian12-preseed", facts)
    compare(
        GOLDEN / "debian12-preseed-packaged", {k: v for k, v in rendered.items() if k.startswith("install.")}
    )
    assert (
        "http://10.0.0.1:8080/files/debian12-preseed/debian-installer/amd64/linux" in rendered["install.ipxe"]
    )
    assert (
        "(tftp,10.0.0.1)/files/debian12-preseed/debian-installer/amd64/initrd.gz"
        in rendered["install.grub"]
    )
