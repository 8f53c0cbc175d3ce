"""Every sample profile passes its REAL validator; each validator catches what it should, with lines."""

from __future__ import annotations

import importlib

import pytest

from netboot.profiles import ProfileSet
from netboot.render import (
    BOOT_KINDS,
    Problem,
    check_all,
    render_answer,
    render_boot_script,
    sample_system,
    tool_versions,
    validate,
)
from netboot.render.validate import find_tool

from .conftest import PROFILES, SAMPLE_PROFILES, TreeBuilder, fixed_facts, require_validators

TOOLS = {
    "kickstart": "ksvalidator",
    "preseed": "debconf-set-selections",
    "autoinstall": "cloud-init",
}


def need_tool(kind: str) -> None:
    tool = TOOLS.get(kind)
    if tool and find_tool(tool) is None:
        message = f"{tool} is not installed (pykickstart, debconf, cloud-init): the real validator cannot run"
        if require_validators():
            pytest.fail(message)
        pytest.skip(message)


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


# ------------------------------------------------------------------------------ samples pass for real


@pytest.mark.parametrize("name", SAMPLE_PROFILES)
def test_sample_answer_files_pass_their_validator(sample_set: ProfileSet, name: str) -> None:
    profile = sample_set.get(name)
    assert profile is not None
    need_tool(profile.kind)
    system = sample_system(name)
    for file in profile.answer_files:
        text = render_answer(sample_set, profile, None, system, fixed_facts(), file).content
        assert validate(profile.kind, text, file=file, options=profile.validate) == [], file


@pytest.mark.parametrize("name", SAMPLE_PROFILES)
@pytest.mark.parametrize("kind", BOOT_KINDS)
def test_sample_boot_configs_pass(sample_set: ProfileSet, name: str, kind: str) -> None:
    profile = sample_set.get(name)
    for decision in ("install", "local"):
        text = render_boot_script(
            kind, decision, sample_set, profile, None, sample_system(name), fixed_facts()
        )
        assert validate(kind, text) == [], (decision, text)


def test_check_all_samples_has_no_errors() -> None:
    for kind in TOOLS:
        need_tool(kind)
    problems = check_all(PROFILES, fixed_facts())
    assert errors(problems) == []
    # what remains are warnings about boot files an admin must copy in (no public URL exists for them)
    for p in problems:
        assert p.severity == "warning" and "no url is given" in p.message, p


def test_tool_versions_names_real_tools() -> None:
    for kind in TOOLS:
        need_tool(kind)
    versions = tool_versions()
    assert versions["ksvalidator"].startswith("pykickstart ")
    assert versions["cloud-init"][0].isdigit()
    assert versions["debconf-set-selections"].startswith("debconf ")


# ----------------------------------------------------------------------------- validators catch errors


def test_ksvalidator_catches_unknown_command() -> None:
    need_tool("kickstart")
    found = validate("kickstart", "lang en_US.UTF-8\nbogus --x\nrootpw --iscrypted x\n")
    assert [(p.line, p.message) for p in found] == [(2, "Unknown command: bogus")]


def test_ksvalidator_version_option() -> None:
    need_tool("kickstart")
    text = "lang en_US.UTF-8\nauth --useshadow\n"  # authconfig: removed in RHEL9, fine in RHEL7
    assert errors(validate("kickstart", text, options={"version": "RHEL9"}))
    assert validate("kickstart", text, options={"version": "RHEL7"}) == []


def test_debconf_catches_bad_lines() -> None:
    need_tool("preseed")
    text = "d-i debian-installer/locale string en_US\nd-i foo/bar strin x\nd-i foo/baz\n"
    assert [p.line for p in validate("preseed", text)] == [2, 3]


def test_cloud_init_schema_errors_have_lines() -> None:
    need_tool("autoinstall")
    text = "#cloud-config\nhostname: h\npackages: 5\n"
    found = validate("autoinstall", text, file="user-data")
    assert [(p.line, p.message) for p in found] == [(3, "packages: 5 is not of type 'array'")]


def test_autoinstall_section_is_checked() -> None:
    need_tool("autoinstall")
    text = "#cloud-config\nautoinstall:\n  version: 2\n  identty: {}\n"
    messages = [(p.line, p.message) for p in validate("autoinstall", text, file="user-data")]
    assert (3, "autoinstall needs 'version: 1'") in messages
    assert (4, "unknown autoinstall section 'identty' (did you mean 'identity'?)") in messages


def test_user_data_header_and_yaml() -> None:
    found = validate("autoinstall", "autoinstall: [\n", file="user-data")
    assert found[0] == Problem("user-data", 1, "user-data must start with the line '#cloud-config'")
    assert "YAML syntax" in found[1].message


def test_meta_data() -> None:
    assert validate("autoinstall", "instance-id: x\n", file="meta-data") == []
    assert validate("autoinstall", "local-hostname: x\n", file="meta-data")[0].message == (
        "meta-data needs 'instance-id'"
    )


AUTOYAST_OK = """<?xml version="1.0"?>
<profile xmlns="http://www.suse.com/1.0/yast2ns" xmlns:config="http://www.suse.com/1.0/configns">
  <general><mode><confirm config:type="boolean">false</confirm></mode></general>
  <partitioning config:type="list"/>
  <software/>
  <users config:type="list"/>
</profile>
"""


def test_autoyast_validator() -> None:
    assert validate("autoyast", AUTOYAST_OK) == []
    wrong_ns = AUTOYAST_OK.replace("http://www.suse.com/1.0/yast2ns", "http://example/ns")
    assert [p.message for p in validate("autoyast", wrong_ns)] == [
        'root must be <profile xmlns="http://www.suse.com/1.0/yast2ns">, got <profile> in http://example/ns'
    ]
    yes = AUTOYAST_OK.replace(">false<", ">yes<")
    assert next((p.line, p.message) for p in validate("autoyast", yes)) == (
        3,
        "<confirm> is boolean: 'true' or 'false', not 'yes'",
    )
    typo = AUTOYAST_OK.replace("<software/>", "<sofware/>")
    found = validate("autoyast", typo)
    assert Problem("autoinst.xml", 5, "unknown section <sofware> (did you mean <software>?)") in found
    assert any("missing section <software>" in p.message for p in found)
    broken = validate("autoyast", AUTOYAST_OK.replace("</profile>", ""))
    assert broken[0].message.startswith("not well-formed XML")
    entity = '<?xml version="1.0"?>\n<!DOCTYPE p [<!ENTITY x "y">]>\n' + AUTOYAST_OK.split("\n", 1)[1]
    assert any("entity declarations" in p.message for p in validate("autoyast", entity))
    bad_type = AUTOYAST_OK.replace(
        'config:type="list"/>\n  <software/>', 'config:type="lst"/>\n  <software/>'
    )
    assert any("config:type 'lst'" in p.message for p in validate("autoyast", bad_type))


def test_jumpstart_rules() -> None:
    assert validate("jumpstart", "any - - profile finish\n", file="rules") == []
    ok = "hostname web1 && !memsize 512-2048 begin profile -\nprobe totaldisk\nnetwork 10.0.0.0 \\\n - p -\n"
    assert validate("jumpstart", ok, file="rules") == []
    found = validate("jumpstart", "hostnam x - p -\nany - - p\nmemsize lots - p -\n", file="rules")
    assert [(p.line, p.message.split(":")[0]) for p in found] == [
        (1, "unknown rule keyword 'hostnam' (did you mean 'hostname'?)"),
        (2, "after the rule come begin, profile and finish ('-' for none), got 2 word(s)"),
        (3, "memsize takes a size in MB or a range like 512-2048, not 'lots'"),
    ]


def test_jumpstart_profile() -> None:
    found = validate(
        "jumpstart", "system_type standalone\ninstall_type foo\nclustr SUNWCreq\n", file="profile"
    )
    assert [p.line for p in found] == [1, 2, 3]
    assert "did you mean 'cluster'" in found[2].message


def test_jumpstart_sysidcfg() -> None:
    text = (
        "system_locale=C\ntimezone=UTC\nterminal=vt100\ntimeserver=localhost\nname_service=NONE\n"
        "network_interface=PRIMARY {dhcp\n protocl_ipv6=no}\nroot_password=x\nsecurity_policy=NONE\n"
        "nfs4_domain=dynamic\nauto_reg=disable\ntimezone=GMT\n"
    )
    found = validate("jumpstart", text, file="sysidcfg")
    assert [(p.line, p.message) for p in found] == [
        (7, "unknown network_interface option 'protocl_ipv6' (did you mean 'protocol_ipv6'?)"),
        (12, "timezone given twice (first on line 2)"),
    ]
    missing = validate("jumpstart", "timezone=UTC\nnetwork_interface=NONE {\n", file="sysidcfg")
    assert "network_interface { is never closed" in [p.message for p in missing]
    assert any(p.message.startswith("missing root_password") for p in missing)


def test_jumpstart_finish_is_shell_checked() -> None:
    found = validate("jumpstart", "#!/bin/sh\nif true; then\n", file="finish")
    assert found and found[0].line == 3 and "finish" in found[0].message and "/tmp" not in found[0].message


def test_boot_config_checks() -> None:
    assert [p.message for p in validate("ipxe", "kernel x\n")] == ["an iPXE script must start with '#!ipxe'"]
    found = validate("ipxe", "#!ipxe\nkernal x || goto nowhere\n:there\ngoto ${target}\n")
    assert [(p.line, p.message) for p in found] == [
        (2, "unknown iPXE command 'kernal'"),
        (2, "goto 'nowhere': no such label"),
    ]
    assert validate("pxelinux", "DEFAULT x\nLABEL y\n  KERNL k\n") == [
        Problem("pxelinux", 3, "unknown pxelinux keyword 'KERNL'"),
        Problem("pxelinux", 1, "DEFAULT 'x': no such LABEL"),
    ]
    assert [p.message for p in validate("grub", "menuentry x {\n  linux 'a\n")] == [
        "unbalanced quotes",
        "'{' is never closed",
    ]
    # an empty config leaves GRUB at its prompt: refused by our check, whether grub-script-check is here
    empty = validate("grub", "# nothing\n\n")
    assert [p.message for p in empty] == ["no commands: GRUB would stop at its prompt"]


def test_validate_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="no validator"):
        validate("nonsense", "")
    with pytest.raises(ValueError, match="has no file"):
        validate("jumpstart", "", file="rules.ok")
    assert validate("local", "anything") == []


def test_missing_tool_is_a_warning_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    # the module, not the function of the same name that netboot.render exports
    module = importlib.import_module("netboot.render.validate")
    monkeypatch.setattr(module, "find_tool", lambda name: None)
    found = validate("kickstart", "text\n")
    assert found == [
        Problem("ks.cfg", None, "ksvalidator not installed (pip install pykickstart); not checked", "warning")
    ]


# ------------------------------------------------------------------------------------------- check_all


def test_check_all_reports_load_render_and_validator_problems(tree: TreeBuilder) -> None:
    need_tool("kickstart")
    root = tree(
        {
            "typo/profile.yaml": "kind: kickstart\nkernal: x\n",
            "undef/profile.yaml": "kind: kickstart\nkernel: {url: 'http://m/k'}\n",
            "undef/ks.cfg.j2": "text\n{{ vars.nope }}\n",
            "bogus/profile.yaml": "kind: kickstart\nkernel: {url: 'http://m/k'}\n",
            "bogus/ks.cfg.j2": "text\nbogus-command\n",
            "_snippets/boot/install.ipxe.j2": "#!ipxe\nkernel {{ boot.kernel.url }}\nboot\n",
            "_snippets/boot/local.ipxe.j2": "#!ipxe\nexit\n",
            "_snippets/boot/menu.ipxe.j2": "#!ipxe\nexit\n",
            "_snippets/boot/install.grub.j2": "linux {{ boot.kernel.url }}\nboot\n",
            "_snippets/boot/local.grub.j2": "exit\n",
            "_snippets/boot/menu.grub.j2": "exit\n",
            "_snippets/boot/install.pxelinux.j2": "",
            "_snippets/boot/local.pxelinux.j2": "",
            "_snippets/boot/menu.pxelinux.j2": "",
        }
    )
    found = [str(p) for p in check_all(root, fixed_facts())]
    assert f"{root}/typo/profile.yaml:2: error: unknown key 'kernal' (did you mean 'kernel'?)" in found
    assert any(s.startswith(f"{root}/undef/ks.cfg.j2:2: error: UndefinedError") for s in found)
    assert "bogus:ks.cfg:2: error: Unknown command: bogus-command" in found
    assert len(found) == 3, found


def test_check_all_checks_groups_too(tree: TreeBuilder) -> None:
    root = tree(
        {
            "p/profile.yaml": "kind: autoinstall\nkernel: {url: 'http://m/k'}\n",
            "p/user-data.j2": "#cloud-config\nautoinstall:\n  version: {{ vars.version }}\n"
            "  identity: {hostname: h, username: u, password: p}\n",
            "p/meta-data.j2": "instance-id: i\n",
            "_groups/wrong.yaml": "profile: p\nvariables: {version: 2}\n",
        }
    )
    for name in ("install", "local", "menu"):
        for kind in BOOT_KINDS:
            (root / "_snippets" / "boot").mkdir(parents=True, exist_ok=True)
            (root / "_snippets" / "boot" / f"{name}.{kind}.j2").write_text(
                "#!ipxe\n" if kind == "ipxe" else ""
            )
    found = [str(p) for p in check_all(root, fixed_facts()) if p.severity == "error"]
    assert any(s.startswith(f"{root}/p/user-data.j2:3: error: UndefinedError") for s in found), found
    assert "p+wrong:user-data:3: error: autoinstall needs 'version: 1'" in found
