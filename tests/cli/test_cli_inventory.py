"""``netboot system / profile / render / check`` (issue 4): the inventory from the command line.

Every command takes ``--config FILE`` and ``--data-dir DIR`` and so acts on the daemon's state. Most tests
drive the click command in-process (``CliRunner``) for speed; a few run the real console script
(``.venv/bin/netboot``) as a subprocess: add/list/show/remove, ``check`` on the samples, ``serve`` refusing
a broken profile, and ``--help``. Bad input exits with status 2 and one line naming the field, and nothing
is stored.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from netboot.cli import main
from netboot.config import load_config
from netboot.mac import MacAddress
from netboot.render.validate import find_tool
from netboot.runtime import Runtime, build_runtime
from netboot.webapp import create_app

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "profiles"
NETBOOT = Path(sys.executable).with_name("netboot")
MAC = "52:54:00:12:34:56"
OTHER = "52:54:00:65:43:21"
UNKNOWN = "52:54:00:aa:bb:cc"
SAMPLES = ["debian12-preseed", "local", "opensuse-autoyast", "rocky9-kickstart", "solaris10-jumpstart",
           "ubuntu24-autoinstall"]
ANSWER_FILES = {
    "debian12-preseed": ["preseed.cfg"],
    "opensuse-autoyast": ["autoinst.xml"],
    "rocky9-kickstart": ["ks.cfg"],
    "solaris10-jumpstart": ["rules", "profile", "sysidcfg", "finish"],
    "ubuntu24-autoinstall": ["user-data", "meta-data"],
}

Cli = Callable[..., Result]


def write_config(path: Path, **keys: str) -> Path:
    text = "server-ip: 10.0.0.1\n" + "".join(f"{k}: {v}\n" for k, v in keys.items())
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def state(tmp_path: Path) -> tuple[Path, Path]:
    """(config file, data dir) shared by the CLI calls of one test."""
    return write_config(tmp_path / "netboot.yaml"), tmp_path / "data"


@pytest.fixture
def cli(state: tuple[Path, Path]) -> Cli:
    """``cli("system", "list", "--json")``: run in-process with this test's --config and --data-dir."""
    config, data = state

    def run(*args: str, config_file: Path | None = None) -> Result:
        argv = [*args, "--config", str(config_file or config), "--data-dir", str(data)]
        return CliRunner().invoke(main, argv, catch_exceptions=False)

    return run


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.output)
    return result.stdout


def refused(result: Result, field: str) -> str:
    """Exit status 2 and one line on stderr that starts with the field at fault."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"netboot: {field}"), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def systems(cli: Cli) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(ok(cli("system", "list", "--json")))
    return rows


def show(cli: Cli, mac: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(ok(cli("system", "show", mac, "--json")))
    return found


def snapshot(cli: Cli) -> list[dict[str, Any]]:
    """Every system with its token (what must not change when input is refused)."""
    return [{**row, "token": show(cli, row["mac"])["token"]} for row in systems(cli)]


def open_runtime(state: tuple[Path, Path]) -> Runtime:
    config, data = state
    return build_runtime(replace(load_config(config), data_dir=data))


# ----------------------------------------------------------------------------------------- system


def test_add_list_show(cli: Cli) -> None:
    out = ok(cli("system", "add", "52-54-00-12-34-56", "--profile", "debian12-preseed", "--hostname", "Web1",
                 "--ip", "10.0.0.50", "--var", "disk=/dev/vda", "--var", "n=3", "--var", 'tags=["a", "b"]',
                 "--label", "rack=r1"))
    assert out == f"registered {MAC} (web1) -> debian12-preseed; its next netboot installs it\n"
    rows = systems(cli)
    assert len(rows) == 1
    row = rows[0]
    assert {k: row[k] for k in ("mac", "hostname", "profile", "state", "ip", "vars", "labels")} == {
        "mac": MAC, "hostname": "web1", "profile": "debian12-preseed", "state": "install", "ip": "10.0.0.50",
        "vars": {"disk": "/dev/vda", "n": 3, "tags": ["a", "b"]}, "labels": {"rack": "r1"},
    }
    assert "token" not in row  # the list never shows tokens
    detail = show(cli, "5254.0012.3456")
    assert detail["mac"] == MAC and detail["state"] == "install"
    assert isinstance(detail["token"], str) and len(detail["token"]) >= 20
    assert [(e["phase"], e["summary"]) for e in detail["events"]] == [
        ("admin", f"registered by cli:{getpass.getuser()} with profile debian12-preseed")]
    text = ok(cli("system", "show", MAC))
    assert f"token:      {detail['token']}\n" in text and "state:      install\n" in text
    table = ok(cli("system", "list")).splitlines()
    assert table[0].split() == ["MAC", "HOSTNAME", "PROFILE", "STATE", "IP", "LAST", "SEEN"]
    assert table[1].split()[:5] == [MAC, "web1", "debian12-preseed", "install", "10.0.0.50"]
    # filters
    assert len(json.loads(ok(cli("system", "list", "--json", "--state", "install")))) == 1
    assert json.loads(ok(cli("system", "list", "--json", "--state", "installed"))) == []
    assert json.loads(ok(cli("system", "list", "--json", "--profile", "rocky9-kickstart"))) == []
    assert ok(cli("system", "list", "--state", "installed")) == "no systems\n"


@pytest.mark.parametrize(("args", "field"), [
    (["system", "add", "zz:zz:zz", "--profile", "debian12-preseed"], "mac:"),
    (["system", "add", "52:54:00:12:34", "--profile", "debian12-preseed"], "mac:"),
    (["system", "add", "52-54-00-12-34-56", "--profile", "rocky9-kickstart"], "mac:"),  # already registered
    (["system", "add", OTHER, "--profile", "debian12"], "profile:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--hostname", "WEB1"], "hostname:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--hostname", "bad_name!"], "hostname:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--ip", "10.0.0.50"], "ip:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--ip", "10.0.0.300"], "ip:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--ip", "127.0.0.1"], "ip:"),
    (["system", "add", OTHER, "--profile", "rocky9-kickstart", "--var", "novalue"], "--var:"),
    (["system", "set", OTHER, "--hostname", "x"], "mac:"),
    (["system", "set", MAC, "--profile", "nosuch"], "profile:"),
    (["system", "set", MAC, "--hostname", "-bad-"], "hostname:"),
    (["system", "set", MAC], "nothing to change"),
    (["system", "show", OTHER], "mac:"),
    (["system", "show", "not-a-mac"], "mac:"),
    (["system", "remove", OTHER], "mac:"),
    (["system", "reinstall", OTHER], "mac:"),
    (["render", "not-a-mac"], "mac:"),
    (["render", OTHER, "--kind", "preseed.cfg"], "no system"),
    (["render", MAC, "--kind", "nosuch"], "profile 'debian12-preseed' (preseed) has no answer file 'nosuch'"),
    (["profile", "show", "nosuch"], "no profile 'nosuch'"),
])
def test_bad_input_names_the_field_and_stores_nothing(cli: Cli, args: list[str], field: str) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed", "--hostname", "web1", "--ip", "10.0.0.50"))
    before = snapshot(cli)
    message = refused(cli(*args), field)
    if field == "profile:" and "add" in args:
        assert "did you mean 'debian12-preseed'" in message
    if field == "hostname:" and "WEB1" in args:
        assert "already used by 52:54:00:12:34:56" in message
    assert snapshot(cli) == before


def test_duplicate_hostname_or_ip_on_set_is_refused(cli: Cli) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed", "--hostname", "web1", "--ip", "10.0.0.50"))
    ok(cli("system", "add", OTHER, "--profile", "rocky9-kickstart", "--hostname", "db1"))
    before = snapshot(cli)
    refused(cli("system", "set", OTHER, "--hostname", "web1"), "hostname:")
    refused(cli("system", "set", OTHER, "--ip", "10.0.0.50"), "ip:")
    assert snapshot(cli) == before


def test_an_invalid_choice_is_a_usage_error(cli: Cli) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed"))
    before = snapshot(cli)
    result = cli("system", "set", MAC, "--state", "discovered")
    assert result.exit_code == 2 and "--state" in result.stderr
    assert snapshot(cli) == before


def test_set_changes_fields_and_state(cli: Cli) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed", "--hostname", "web1", "--ip", "10.0.0.50",
           "--var", "a=1", "--var", "b=2"))
    first = show(cli, MAC)["token"]
    out = ok(cli("system", "set", MAC, "--hostname", "web2", "--ip", "", "--var", "c=x", "--unset-var", "a"))
    assert out == f"{MAC}: hostname, ip, variables updated (state install)\n"
    now = show(cli, MAC)
    assert (now["hostname"], now["ip"], now["vars"]) == ("web2", None, {"b": 2, "c": "x"})
    assert now["token"] == first  # editing fields keeps the pending install's token
    ok(cli("system", "set", MAC, "--state", "installed"))
    assert show(cli, MAC)["state"] == "installed"
    ok(cli("system", "set", MAC, "--state", "install", "--profile", "rocky9-kickstart"))
    again = show(cli, MAC)
    assert (again["state"], again["profile"]) == ("install", "rocky9-kickstart")
    assert again["token"] and again["token"] != first
    ok(cli("system", "set", MAC, "--hostname", ""))
    assert show(cli, MAC)["hostname"] is None
    assert [e["phase"] for e in show(cli, MAC)["events"]] == ["admin"] * 5


def test_remove(cli: Cli) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed"))
    ok(cli("system", "add", OTHER, "--profile", "debian12-preseed"))
    assert ok(cli("system", "remove", "52-54-00-12-34-56")) == f"removed {MAC}\n"
    assert [r["mac"] for r in systems(cli)] == [OTHER]
    refused(cli("system", "remove", MAC), "mac:")
    assert [r["mac"] for r in systems(cli)] == [OTHER]


def test_reinstall(cli: Cli, state: tuple[Path, Path]) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed"))
    first = show(cli, MAC)["token"]
    rt = open_runtime(state)
    try:
        # the machine boots from 10.0.0.9 (its DHCP, its script), installs, and calls back
        rt.recorder.learn("10.0.0.9", MacAddress.parse(MAC))
        rt.core.boot_config("ipxe", MacAddress.parse(MAC), host=None, client_ip="10.0.0.9")
        rt.core.complete(MacAddress.parse(MAC), first, client_ip="10.0.0.9")
        rt.store.systems.seen(MacAddress.parse(UNKNOWN), arch="bios", uuid=None, now=1.0)  # a discovered MAC
    finally:
        rt.close()
    assert (show(cli, MAC)["state"], show(cli, MAC)["token"]) == ("installed", None)
    assert ok(cli("system", "reinstall", MAC)) == f"{MAC}: its next netboot installs debian12-preseed\n"
    again = show(cli, MAC)
    assert again["state"] == "install" and again["token"] not in (None, first)
    # a discovered machine has no profile to reinstall: register it first
    before = snapshot(cli)
    refused(cli("system", "reinstall", UNKNOWN), "profile:")
    assert snapshot(cli) == before
    # and registering it takes the discovered record over
    ok(cli("system", "add", UNKNOWN, "--profile", "rocky9-kickstart"))
    taken = show(cli, UNKNOWN)
    assert (taken["state"], taken["profile"], taken["arch"]) == ("install", "rocky9-kickstart", "bios")


# ---------------------------------------------------------------------------------------- profile


def test_profile_list_and_show(cli: Cli) -> None:
    lines = ok(cli("profile", "list")).splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["debian12-preseed", "preseed"], ["local", "local"], ["opensuse-autoyast", "autoyast"],
        ["rocky9-kickstart", "kickstart"], ["solaris10-jumpstart", "jumpstart"],
        ["ubuntu24-autoinstall", "autoinstall"]]
    listed = json.loads(ok(cli("profile", "list", "--json")))
    assert [p["name"] for p in listed] == SAMPLES
    assert listed[0] == {"name": "debian12-preseed", "kind": "preseed",
                         "description": "Debian 12 bookworm (preseed)", "parent": None}
    shown = json.loads(ok(cli("profile", "show", "debian12-preseed")))
    assert shown["kind"] == "preseed" and shown["file"] == str(PROFILES / "debian12-preseed" / "profile.yaml")
    assert shown["kernel"]["path"] == "debian-installer/amd64/linux"
    assert shown["initrds"][0]["path"] == "debian-installer/amd64/initrd.gz"
    assert shown["templates"] == {"preseed.cfg": "preseed.cfg.j2"}
    assert shown["variables"]["suite"] == "bookworm"
    assert shown["data_dir"] == "/usr/lib/debian-installer/images/12/amd64/text"
    message = refused(cli("profile", "show", "nosuch"), "no profile")
    assert "debian12-preseed" in message


def test_profile_list_reports_a_broken_profile(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "profiles"
    shutil.copytree(PROFILES, broken)
    yaml = broken / "rocky9-kickstart" / "profile.yaml"
    yaml.write_text(yaml.read_text().replace("\ncmdline:", "\ncmdlnie:"))
    line = yaml.read_text().splitlines().index("cmdlnie: [ip=dhcp, inst.text]") + 1
    config = write_config(tmp_path / "b.yaml", **{"profiles-dir": str(broken)})
    result = cli("profile", "list", config_file=config)
    assert result.exit_code == 1
    assert "rocky9-kickstart" not in result.stdout and "debian12-preseed" in result.stdout
    expected = f"rocky9-kickstart/profile.yaml:{line}: unknown key 'cmdlnie' (did you mean 'cmdline'?)"
    assert expected in result.stderr


# ----------------------------------------------------------------------------------------- render


def test_render_prints_exactly_what_the_machine_gets(cli: Cli, state: tuple[Path, Path]) -> None:
    macs = {}
    for i, profile in enumerate(ANSWER_FILES):
        mac = f"52:54:00:00:01:{i:02x}"
        ok(cli("system", "add", mac, "--profile", profile, "--hostname", f"h{i}", "--var", "extra=1"))
        macs[profile] = mac
    rt = open_runtime(state)
    try:
        client = create_app(rt).test_client()
        for profile, files in ANSWER_FILES.items():
            mac = macs[profile]
            # the machine (the test client at 127.0.0.1) DHCPs, then fetches its script: its token is served
            rt.recorder.learn("127.0.0.1", MacAddress.parse(mac))
            client.get("/boot.ipxe", query_string={"mac": mac})
            token = rt.store.systems.get(MacAddress.parse(mac)).token  # type: ignore[union-attr]
            for file in files:
                rendered = ok(cli("render", mac, "--kind", file))
                served = client.get(f"/answer/{mac}/{file}", query_string={"token": token})
                assert served.status_code == 200
                assert rendered == served.get_data(as_text=True), (profile, file)
                assert f"token={token}" in rendered or file in ("rules", "profile", "sysidcfg", "meta-data")
            # the boot configs: the iPXE script over HTTP, pxelinux and GRUB over TFTP
            assert ok(cli("render", mac)) == client.get("/boot.ipxe", query_string={"mac": mac}).get_data(
                as_text=True)
            pxelinux = rt.core.tftp_file(f"pxelinux.cfg/01-{mac.replace(':', '-')}", ("127.0.0.1", 2000))
            grub = rt.core.tftp_file(f"grub/grub.cfg-01-{mac.replace(':', '-')}", ("127.0.0.1", 2000))
            assert pxelinux is not None and grub is not None
            assert ok(cli("render", mac, "--kind", "pxelinux")) == pxelinux.decode()
            assert ok(cli("render", mac, "--kind", "grub")) == grub.decode()
    finally:
        rt.close()


def test_render_changes_and_records_nothing(cli: Cli, state: tuple[Path, Path]) -> None:
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed"))
    before = snapshot(cli)
    events = show(cli, MAC)["events"]
    ok(cli("render", MAC))
    ok(cli("render", MAC, "--kind", "preseed.cfg"))
    unknown = ok(cli("render", UNKNOWN))  # an unknown machine: what it would get (local boot by default)
    assert "boots from its local disk" in unknown
    assert snapshot(cli) == before  # the unknown MAC was not recorded as discovered
    assert show(cli, MAC)["events"] == events


def test_render_an_unknown_mac_under_a_default_profile(cli: Cli, tmp_path: Path) -> None:
    config = write_config(tmp_path / "default.yaml", **{"unknown-default": "profile:debian12-preseed"})
    result = cli("render", UNKNOWN, config_file=config)
    assert result.exit_code == 0, result.output
    assert f"install profile debian12-preseed on {UNKNOWN}" in result.stdout
    assert f"/answer/{UNKNOWN}/preseed.cfg" in result.stdout
    assert "Traceback" not in result.output
    assert systems(cli) == []  # preview only: nothing registered


def test_render_failure_names_the_template_line(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "profiles"
    shutil.copytree(PROFILES, broken)
    template = broken / "debian12-preseed" / "preseed.cfg.j2"
    lines = template.read_text().splitlines()
    lines.insert(9, "{{ vars.nosuch.x }}")
    template.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "b.yaml", **{"profiles-dir": str(broken)})
    ok(cli("system", "add", MAC, "--profile", "debian12-preseed", config_file=config))
    result = cli("render", MAC, "--kind", "preseed.cfg", config_file=config)
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing partial
    assert f"netboot: render failed: {template}:10: UndefinedError" in result.stderr


# ------------------------------------------------------------------------------------------- check


def test_check_fails_on_a_broken_copy(cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "profiles"
    shutil.copytree(PROFILES, broken)
    yaml = broken / "opensuse-autoyast" / "profile.yaml"  # a typo in a key
    yaml.write_text(yaml.read_text().replace("\nkernel:", "\nkernal:"))
    typo_line = yaml.read_text().splitlines().index("kernal:") + 1
    template = broken / "debian12-preseed" / "preseed.cfg.j2"  # a template that fails to render
    lines = template.read_text().splitlines()
    lines.insert(19, "d-i broken/x string {{ vars.nosuch.x }}")
    template.write_text("\n".join(lines) + "\n")
    kickstart = broken / "rocky9-kickstart" / "ks.cfg.j2"  # renders, but ksvalidator refuses it
    lines = kickstart.read_text().splitlines()
    lines.insert(3, "frobnicate --now")
    kickstart.write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "b.yaml", **{"profiles-dir": str(broken)})
    result = cli("check", "--quiet", config_file=config)
    assert result.exit_code == 1
    err = result.stderr
    expected = f"opensuse-autoyast/profile.yaml:{typo_line}: error: unknown key 'kernal'"
    assert expected + " (did you mean 'kernel'?)" in err
    assert "debian12-preseed/preseed.cfg.j2:20: error: UndefinedError" in err
    if find_tool("ksvalidator"):  # pykickstart installed: the validator ran on the rendered ks.cfg
        assert "rocky9-kickstart:ks.cfg:" in err and "frobnicate" in err


# ------------------------------------------------------------------------------------------- --help

HELP = {
    ("system", "add"): ["--profile", "--hostname", "--ip", "--var", "--label"],
    ("system", "list"): ["--json", "--state", "--profile"],
    ("system", "show"): ["--json", "--events"],
    ("system", "set"): ["--profile", "--hostname", "--ip", "--var", "--unset-var", "--state"],
    ("system", "remove"): [],
    ("system", "reinstall"): [],
    ("profile", "list"): ["--json"],
    ("profile", "show"): [],
    ("render",): ["--kind"],
    ("check",): ["--quiet"],
    ("serve",): ["--interface", "--server-ip", "--dhcp-mode", "--dhcp-range", "--http-port", "--profiles"],
}


@pytest.mark.parametrize("command", list(HELP), ids=" ".join)
def test_help_mentions_every_option(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], prog_name="netboot")
    assert result.exit_code == 0
    for option in [*HELP[command], "--config", "--data-dir"]:
        assert option in result.stdout, (command, option)
    assert result.stdout.startswith(f"Usage: netboot {' '.join(command)} ")


@pytest.mark.parametrize("group", ["system", "profile"])
def test_group_help_lists_its_commands(group: str) -> None:
    result = CliRunner().invoke(main, [group, "--help"], prog_name="netboot")
    assert result.exit_code == 0
    for command in {c[1] for c in HELP if c[0] == group}:
        assert f"  {command} " in result.stdout


# --------------------------------------------------------------------- the real console script


def real(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    if not NETBOOT.exists():
        pytest.skip(f"{NETBOOT} not installed (pip install -e .)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETBOOT_")}
    return subprocess.run([str(NETBOOT), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)


def test_console_script_acts_on_the_data_dir(state: tuple[Path, Path]) -> None:
    config, data = state
    opts = ["--config", config, "--data-dir", data]
    done = real("system", "add", MAC, "--profile", "debian12-preseed", "--hostname", "web1", *opts)
    assert done.returncode == 0, done.stderr
    done = real("system", "add", OTHER, "--profile", "debian12-preseed", "--hostname", "web1", *opts)
    assert done.returncode == 2 and done.stderr.startswith("netboot: hostname: ") and done.stdout == ""
    listed = real("system", "list", "--json", *opts)
    assert listed.returncode == 0 and [r["mac"] for r in json.loads(listed.stdout)] == [MAC]
    help_text = real("system", "add", "--help")
    assert help_text.returncode == 0 and "--profile" in help_text.stdout and "--data-dir" in help_text.stdout
    # --config alone names the data dir too (and --data-dir overrides it)
    other_config = write_config(data.parent / "other.yaml", **{"data-dir": str(data)})
    listed = real("system", "list", "--json", "--config", other_config)
    assert listed.returncode == 0 and [r["mac"] for r in json.loads(listed.stdout)] == [MAC]
    elsewhere = data.parent / "elsewhere"
    empty = real("system", "list", "--json", "--config", other_config, "--data-dir", elsewhere)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_check_passes_on_the_sample_profiles(state: tuple[Path, Path]) -> None:
    config, data = state
    done = real("check", "--config", config, "--data-dir", data, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "checked 6 profiles" in done.stdout and ": 0 errors," in done.stdout


def test_serve_refuses_to_start_on_a_profile_typo(state: tuple[Path, Path], tmp_path: Path) -> None:
    config, data = state
    broken = tmp_path / "profiles"
    shutil.copytree(PROFILES, broken)
    yaml = broken / "rocky9-kickstart" / "profile.yaml"
    yaml.write_text(yaml.read_text().replace("\nkernel:", "\nkernal:"))
    line = yaml.read_text().splitlines().index("kernal:") + 1
    # no DHCP and ephemeral ports: even if it did start it would disturb nothing (and the timeout ends it)
    done = real("serve", "--config", config, "--data-dir", data, "--profiles", broken, "--dhcp-mode", "off",
                "--tftp-port", "0", "--http-port", "0", timeout=60)
    assert done.returncode == 1, done.stderr
    expected = f"rocky9-kickstart/profile.yaml:{line}: unknown key 'kernal' (did you mean 'kernel'?)"
    assert expected in done.stderr
    assert "netboot ready" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
