"""The template sandbox: escapes render nothing and reach nothing; data is never compiled; errors name
the template file and line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import ProfileSet, load_profiles
from netboot.render import RenderError, render_answer, render_boot_script, sample_system

from .conftest import TreeBuilder, fixed_facts

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ().__class__.__base__.__subclasses__() }}",
    "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{% if ''.__class__ %}leak{% endif %}",
    "{{ ''|attr('__class__') }}",
    "{{ 1|attr('__class__')|attr('__mro__') }}",
    "{{ system|map(attribute='__class__')|list }}",
    "{{ {'k': ''.__class__} }}",
    "{{ (1, config) }}",
    "{{ '{0.__class__}'.format(system) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(vars) }}",
    "{{ '{x.__class__}'.format_map({'x': vars}) }}",
    "{{ ''.format.__globals__ }}",
    "{{ vars.items.__self__ }}",
    "{{ system.mac.__len__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ request.environ }}",
    "{{ url_for.__globals__ }}",
    "{{ g }}",
    "{{ self }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ cycler }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ lipsum() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% set ns = namespace(x=1) %}{{ ns.x }}",
    "{{ dict(a=1) }}",
    "{{ range.__self__ }}",
    "{{ range(10**9)|list|length }}",
    "{{ 9**(9**9) }}",
    "{{ 2**100000 }}",
    "{{ 'a' * 10**8 }}",
    "{{ [1] * 10**8 }}",
    "{{ vars.update({'injected': 1}) }}",
    "{{ system.labels.clear() }}",
    "{{ profile.lineage.append('x') }}",
    "{{ [].pop() }}",
    "{% include '/etc/passwd' %}",
    "{% include '../../../../etc/passwd' %}",
    "{% include 'profile.yaml/../../../etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% extends '/etc/hostname' %}",
    "{{ loop }}",
    "{{ none }}",
    "{{ system.ip if false else none }}",
]


@pytest.fixture
def payload_profile(tree: TreeBuilder) -> Path:
    return tree(
        {
            "p/profile.yaml": "kind: kickstart\nkernel: vmlinuz\n",
            "p/ks.cfg.j2": "placeholder\n",
            "_snippets/callback.j2": "{% macro done_command(url) %}curl {{ url|sh }}{% endmacro %}",
        }
    )


def render_payload(root: Path, text: str) -> str:
    (root / "p" / "ks.cfg.j2").write_text("# line 1\n" + text + "\n", encoding="utf-8")
    profile_set = load_profiles(root)
    profile = profile_set.get("p")
    assert profile is not None
    return render_answer(profile_set, profile, None, sample_system("p"), fixed_facts(), "ks.cfg").content


@pytest.mark.parametrize("payload", ESCAPES)
def test_escape_renders_nothing(payload_profile: Path, payload: str) -> None:
    with pytest.raises(RenderError) as info:
        output = render_payload(payload_profile, payload)
        pytest.fail(f"rendered {output!r}")
    err = info.value
    assert err.file.endswith("ks.cfg.j2")
    assert err.line == 2


def test_escape_errors_say_what(payload_profile: Path) -> None:
    def reason(text: str) -> str:
        with pytest.raises(RenderError) as info:
            render_payload(payload_profile, text)
        return str(info.value)

    assert "SecurityError" in reason("{{ ''.__class__ }}") and ":2:" in reason("{{ ''.__class__ }}")
    assert "'self' is not available" in reason("{{ self }}")
    assert "'config' is undefined" in reason("{{ config }}")
    assert "UndefinedError: 'cycler' is undefined" in reason("{{ cycler }}")
    assert "OverflowError" in reason("{{ range(10**9)|list|length }}")
    assert "exponent" in reason("{{ 9**(9**9) }}")
    assert "template not found: /etc/passwd" in reason("{% include '/etc/passwd' %}")
    assert "value is None" in reason("{{ none }}")


def test_allowed_things_still_work(payload_profile: Path) -> None:
    out = render_payload(
        payload_profile,
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ vars|length >= 0 }} {{ 'x'|upper }} "
        "{{ 2**10 }} {{ 'ab' * 3 }} {{ [1, 2]|join(',') }} {{ urls.done|sh }} "
        "{% from 'callback.j2' import done_command %}{{ done_command('u v') }}",
    )
    assert "012 True X 1024 ababab 1,2 'http://10.0.0.1:8080/done/" in out
    assert out.rstrip().endswith("curl 'u v'")


# -------------------------------------------------------------------------------- data is not template

TEMPLATE_LOOKING = "{{7*7}}"


def hostile_system(profile: str) -> System:
    return System(
        mac=MacAddress.parse("52:54:00:12:34:56"),
        profile=profile,
        state=SystemState.INSTALL,
        hostname=TEMPLATE_LOOKING,
        token="tok-{{7*7}}".replace("{{7*7}}", "49x")[:4] + "safe",
        variables={
            "username": TEMPLATE_LOOKING,
            "keymap": "{% include '/etc/passwd' %}",
            "locale": "${net0/mac}{{ config }}",
            "timezone": "{{ ''.__class__ }}",
        },
        labels={"rack": TEMPLATE_LOOKING},
    )


@pytest.mark.parametrize("profile_name", ["debian12-preseed", "ubuntu24-autoinstall", "rocky9-kickstart"])
def test_system_fields_render_literally(sample_set: ProfileSet, profile_name: str) -> None:
    profile = sample_set.get(profile_name)
    assert profile is not None
    system = hostile_system(profile_name)
    text = "".join(
        render_answer(sample_set, profile, None, system, fixed_facts(), f).content
        for f in profile.answer_files
    )
    assert TEMPLATE_LOOKING in text
    assert "49" not in text.replace("0123456789", "")
    assert "root:" not in text


def test_user_data_values_cannot_change_yaml_structure(sample_set: ProfileSet) -> None:
    import yaml

    profile = sample_set.get("ubuntu24-autoinstall")
    assert profile is not None
    system = hostile_system("ubuntu24-autoinstall")
    system = System(
        **{
            **{f: getattr(system, f) for f in system.__dataclass_fields__},
            "variables": {"username": "x\n  injected: true", "password_hash": "\"quoted\" 'both'"},
        }
    )
    text = render_answer(sample_set, profile, None, system, fixed_facts(), "user-data").content
    data = yaml.safe_load(text)["autoinstall"]
    assert data["identity"]["username"] == "x\n  injected: true"
    assert data["identity"]["password"] == "\"quoted\" 'both'"
    assert "injected" not in data


def test_xml_templates_are_autoescaped(sample_set: ProfileSet) -> None:
    profile = sample_set.get("opensuse-autoyast")
    assert profile is not None
    system = System(
        mac=MacAddress.parse("52:54:00:12:34:56"),
        profile=profile.name,
        state=SystemState.INSTALL,
        hostname="h",
        variables={"language": "</language><scripts>evil</scripts><language>", "packages": ["a&b"]},
    )
    text = render_answer(sample_set, profile, None, system, fixed_facts(), "autoinst.xml").content
    assert "&lt;/language&gt;&lt;scripts&gt;evil" in text
    assert "<package>a&amp;b</package>" in text


# --------------------------------------------------------------------------------------- error lines


def test_undefined_variable_names_template_and_line(payload_profile: Path) -> None:
    with pytest.raises(RenderError) as info:
        render_payload(payload_profile, "ok\n{{ vars.mirorr }}")
    err = info.value
    assert (err.file, err.line) == (str(payload_profile / "p" / "ks.cfg.j2"), 3)
    assert str(err).startswith(f"{payload_profile}/p/ks.cfg.j2:3: UndefinedError:")
    assert "mirorr" in str(err)


def test_syntax_error_names_template_and_line(payload_profile: Path) -> None:
    with pytest.raises(RenderError) as info:
        render_payload(payload_profile, "fine\n{% if %}")
    assert (info.value.file, info.value.line) == (str(payload_profile / "p" / "ks.cfg.j2"), 3)


def test_error_inside_a_snippet_names_the_snippet(payload_profile: Path) -> None:
    (payload_profile / "_snippets" / "broken.j2").write_text("one\ntwo\n{{ vars.missing }}\n")
    with pytest.raises(RenderError) as info:
        render_payload(payload_profile, "{% include 'broken.j2' %}")
    assert (info.value.file, info.value.line) == (str(payload_profile / "_snippets" / "broken.j2"), 3)
    (payload_profile / "_snippets" / "syntax.j2").write_text("one\n{% for %}\n")
    with pytest.raises(RenderError) as info:
        render_payload(payload_profile, "{% include 'syntax.j2' %}")
    assert (info.value.file, info.value.line) == (str(payload_profile / "_snippets" / "syntax.j2"), 2)


def test_loader_refuses_symlinks_out_of_its_folders(payload_profile: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, payload_profile / "p" / "leak.j2")
    with pytest.raises(RenderError, match=r"template not found: leak\.j2"):
        render_payload(payload_profile, "{% include 'leak.j2' %}")


def test_loader_sees_only_the_profile_chain_and_snippets(tree: TreeBuilder) -> None:
    root = tree(
        {
            "a/profile.yaml": "kind: kickstart\nkernel: k\n",
            "a/ks.cfg.j2": "{% include 'b-only.j2' %}",
            "b/profile.yaml": "kind: kickstart\nkernel: k\n",
            "b/ks.cfg.j2": "",
            "b/b-only.j2": "from b",
        }
    )
    ps = load_profiles(root)
    profile = ps.get("a")
    assert profile is not None
    with pytest.raises(RenderError, match=r"template not found: b-only\.j2"):
        render_answer(ps, profile, None, sample_system("a"), fixed_facts(), "ks.cfg")


def test_boot_scripts_render_in_the_sandbox_too(sample_set: ProfileSet) -> None:
    profile = sample_set.get("debian12-preseed")
    text = render_boot_script(
        "ipxe", "install", sample_set, profile, None, hostile_system("debian12-preseed"), fixed_facts()
    )
    # a hostname that is not a DNS name never reaches the kernel command line
    assert "hostname={{7*7}}" not in text and "hostname=" not in text
