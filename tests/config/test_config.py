"""netboot.config and netboot.yamlsource: defaults, every key, refusals naming file:line: key: reason."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any

import pytest

from netboot.config import (
    Config,
    ConfigError,
    DhcpConfig,
    LoadersConfig,
    Overrides,
    Reservation,
    apply_overrides,
    config_keys,
    default_data_dir,
    load_config,
    parse,
    validate,
)
from netboot.mac import MacAddress
from netboot.yamlsource import Located, SourceError, load, loads

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "netboot.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> SourceError:
    path = write(tmp_path, text)
    with pytest.raises(SourceError) as info:
        load_config(path)
    assert info.value.file == str(path)
    return info.value


# ------------------------------------------------------------------------------------------- defaults


def test_no_file_means_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NETBOOT_DATA_DIR", str(tmp_path / "state"))
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.source is None
    assert cfg.server_ip is None and cfg.bind_ip is None and cfg.interfaces == ()
    d = cfg.dhcp
    assert (d.mode, d.port, d.proxy_port, d.lease_time) == ("proxy", 67, 4011, 3600)
    assert d.subnet is None and d.range_first is None and d.range_last is None and d.reservations == ()
    assert (cfg.ports.tftp, cfg.ports.http, cfg.ports.dns) == (69, 8080, 53)
    assert cfg.tftp_enabled and cfg.http_enabled and not cfg.dns.enabled
    assert cfg.loaders == LoadersConfig(
        dir=None, bios="undionly.kpxe", uefi_x64="ipxe.efi", uefi_arm64=None, uefi_ia32=None, snponly=False
    )
    assert (cfg.log.level, cfg.log.format) == ("INFO", "text")
    assert cfg.unknown_default == "local"
    assert cfg.data_dir == tmp_path / "state"
    assert cfg.db_url == f"sqlite:///{tmp_path / 'state' / 'netboot.db'}"
    assert cfg.tftp_dir == tmp_path / "state" / "tftp"
    assert cfg.files_dir == tmp_path / "state" / "files"
    validate(cfg)


def test_default_data_dir_without_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NETBOOT_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = Path("/var/lib/netboot") if os.geteuid() == 0 else tmp_path / ".local/share/netboot"
    assert default_data_dir() == expected


def test_explicit_paths_win_over_data_dir() -> None:
    cfg = Config(data_dir=Path("/d"), tftp_root=Path("/t"), database_url="postgresql://db/netboot")
    assert cfg.tftp_dir == Path("/t")
    assert cfg.db_url == "postgresql://db/netboot"


def test_empty_and_comment_only_files_are_defaults(tmp_path: Path) -> None:
    for text in ("", "# nothing yet\n", "---\n"):
        cfg = load_config(write(tmp_path, text))
        assert replace(cfg, source=None) == Config()


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such configuration file") as info:
        load_config(tmp_path / "nope.yaml")
    assert str(info.value).startswith(str(tmp_path / "nope.yaml"))


def test_sample_config_in_the_repo_loads() -> None:
    sample = REPO / "netboot.yaml"
    if not sample.is_file():
        pytest.skip("no sample netboot.yaml")
    cfg = load_config(sample)
    assert cfg.source == str(sample)
    assert cfg.profiles_dir == REPO / "profiles"


# --------------------------------------------------------------------------------------- every key

#: key -> (YAML value, how to read it back from the Config, expected). One row per documented key.
KEYS: dict[str, tuple[str, Callable[[Config], Any], Any]] = {
    "server-ip": ("10.0.0.1", lambda c: c.server_ip, IPv4Address("10.0.0.1")),
    "bind-ip": ("10.0.0.2", lambda c: c.bind_ip, IPv4Address("10.0.0.2")),
    "interfaces": ("[eth1, br0]", lambda c: c.interfaces, ("eth1", "br0")),
    "data-dir": ("/srv/netboot", lambda c: c.data_dir, Path("/srv/netboot")),
    "database-url": ("postgresql://u@db/netboot", lambda c: c.database_url, "postgresql://u@db/netboot"),
    "profiles-dir": ("/srv/profiles", lambda c: c.profiles_dir, Path("/srv/profiles")),
    "tftp-root": ("/srv/tftp", lambda c: c.tftp_root, Path("/srv/tftp")),
    "tftp-loops": ("2", lambda c: c.tftp_loops, 2),
    "tftp-pin": ("false", lambda c: c.tftp_pin, False),
    "unknown-default": ("profile:debian12", lambda c: c.unknown_default, "profile:debian12"),
    "local-boot": ("exit", lambda c: c.local_boot, "exit"),
    "boot-chain": ("shim-grub", lambda c: c.boot_chain, "shim-grub"),
    "dhcp.mode": ("'off'", lambda c: c.dhcp.mode, "off"),
    "dhcp.port": ("1067", lambda c: c.dhcp.port, 1067),
    "dhcp.proxy-port": ("5011", lambda c: c.dhcp.proxy_port, 5011),
    "dhcp.subnet": ("10.0.0.7/24", lambda c: c.dhcp.subnet, IPv4Network("10.0.0.0/24")),
    "dhcp.range": (
        "10.0.0.100-10.0.0.200",
        lambda c: (c.dhcp.range_first, c.dhcp.range_last),
        (IPv4Address("10.0.0.100"), IPv4Address("10.0.0.200")),
    ),
    "dhcp.router": ("10.0.0.254", lambda c: c.dhcp.router, IPv4Address("10.0.0.254")),
    "dhcp.dns-servers": (
        "[10.0.0.1, 9.9.9.9]",
        lambda c: c.dhcp.dns_servers,
        (IPv4Address("10.0.0.1"), IPv4Address("9.9.9.9")),
    ),
    "dhcp.domain": ("lab.example", lambda c: c.dhcp.domain, "lab.example"),
    "dhcp.lease-time": ("7200", lambda c: c.dhcp.lease_time, 7200),
    "dhcp.reservations": (
        "[{mac: '52-54-00-12-34-56', ip: 10.0.0.50, hostname: web1}]",
        lambda c: c.dhcp.reservations,
        (Reservation(MacAddress.parse("52:54:00:12:34:56"), IPv4Address("10.0.0.50"), "web1"),),
    ),
    "ports.tftp": ("1069", lambda c: c.ports.tftp, 1069),
    "ports.http": ("8081", lambda c: c.ports.http, 8081),
    "ports.dns": ("5353", lambda c: c.ports.dns, 5353),
    "services.tftp": ("false", lambda c: c.tftp_enabled, False),
    "services.http": ("false", lambda c: c.http_enabled, False),
    "dns.enabled": ("true", lambda c: c.dns.enabled, True),
    "dns.domain": ("boot.example", lambda c: c.dns.domain, "boot.example"),
    "dns.ttl": ("60", lambda c: c.dns.ttl, 60),
    "dns.tcp-timeout": ("3", lambda c: c.dns.tcp_timeout, 3),
    "dns.tcp-connections": ("8", lambda c: c.dns.tcp_connections, 8),
    "http.max-body": ("1048576", lambda c: c.http.max_body, 1048576),
    "http.max-header": ("8192", lambda c: c.http.max_header, 8192),
    "http.connection-limit": ("200", lambda c: c.http.connection_limit, 200),
    "http.idle-timeout": ("5", lambda c: c.http.idle_timeout, 5),
    "http.threads": ("4", lambda c: c.http.threads, 4),
    "http.trusted-proxies": (
        "[10.0.0.5, 10.1.0.0/16]",
        lambda c: c.http.trusted_proxies,
        (IPv4Network("10.0.0.5/32"), IPv4Network("10.1.0.0/16")),
    ),
    "limits.discovered-per-minute": ("10", lambda c: c.limits.discovered_per_minute, 10),
    "limits.discovered-max": ("100", lambda c: c.limits.discovered_max, 100),
    "limits.events-max": ("1000", lambda c: c.limits.events_max, 1000),
    "limits.event-retention-days": ("7", lambda c: c.limits.event_retention_days, 7),
    "limits.install-token-ttl": ("600", lambda c: c.limits.install_token_ttl, 600),
    "loaders.dir": ("/srv/ipxe", lambda c: c.loaders.dir, Path("/srv/ipxe")),
    "loaders.bios": ("ipxe.pxe", lambda c: c.loaders.bios, "ipxe.pxe"),
    "loaders.uefi-x64": ("x64.efi", lambda c: c.loaders.uefi_x64, "x64.efi"),
    "loaders.uefi-arm64": ("arm64.efi", lambda c: c.loaders.uefi_arm64, "arm64.efi"),
    "loaders.uefi-ia32": ("ia32.efi", lambda c: c.loaders.uefi_ia32, "ia32.efi"),
    "loaders.snponly": ("true", lambda c: c.loaders.snponly, True),
    "log.level": ("debug", lambda c: c.log.level, "DEBUG"),
    "log.format": ("json", lambda c: c.log.format, "json"),
}


def _yaml_for(key: str, value: str) -> str:
    section, _, name = key.rpartition(".")
    return f"{section}:\n  {name}: {value}\n" if section else f"{name}: {value}\n"


def test_the_table_covers_every_documented_key() -> None:
    assert sorted(KEYS) == sorted(config_keys())
    assert len(config_keys()) == len(set(config_keys()))


@pytest.mark.parametrize("key", sorted(KEYS))
def test_every_key_parses(tmp_path: Path, key: str) -> None:
    value, read, expected = KEYS[key]
    cfg = load_config(write(tmp_path, _yaml_for(key, value)))
    assert read(cfg) == expected
    # and nothing else moved
    assert read(Config()) != expected


def test_all_keys_together(tmp_path: Path) -> None:
    sections: dict[str, list[str]] = {}
    for key, (value, _, _) in KEYS.items():
        section, _, name = key.rpartition(".")
        sections.setdefault(section, []).append(f"{name}: {value}")
    sections["dhcp"] = [line for line in sections["dhcp"] if not line.startswith("mode:")] + ["mode: full"]
    text = "\n".join(sections.pop(""))
    for section, lines in sections.items():
        text += f"\n{section}:\n" + "".join(f"  {line}\n" for line in lines)
    cfg = load_config(write(tmp_path, text))
    for key, (_, read, expected) in KEYS.items():
        if key != "dhcp.mode":
            assert read(cfg) == expected, key
    assert cfg.dhcp.mode == "full"


def test_hyphenated_keys_only(tmp_path: Path) -> None:
    """Keys are spelled with dashes, as documented; the Python spelling is refused with a hint."""
    error = refused(tmp_path, "dhcp:\n  lease_time: 60\n")
    assert error.key == "dhcp.lease_time"
    assert "did you mean 'lease-time'" in error.reason


def test_scalars_accepted_where_a_list_is_usual(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "interfaces: eth1\ndhcp:\n  dns-servers: 10.0.0.1\n"))
    assert cfg.interfaces == ("eth1",)
    assert cfg.dhcp.dns_servers == (IPv4Address("10.0.0.1"),)


@pytest.mark.parametrize("written", ["off", '"off"', "false", "no"])
def test_dhcp_mode_off_as_yaml_reads_a_bare_off(tmp_path: Path, written: str) -> None:
    """YAML 1.1 turns a bare ``off`` (and ``no``, ``false``) into false: the admin meant the mode ``off``."""
    assert load_config(write(tmp_path, f"dhcp:\n  mode: {written}\n")).dhcp.mode == "off"


def test_full_mode_example(tmp_path: Path) -> None:
    cfg = load_config(
        write(
            tmp_path,
            """\
        dhcp:
          mode: full
          subnet: 10.0.0.0/24
          range: 10.0.0.100 - 10.0.0.200
          router: 10.0.0.1
          reservations:
            - mac: "52:54:00:12:34:56"
              ip: 10.0.0.50
              hostname: web1
            - {mac: 5254.0012.3457, ip: 10.0.0.51}
        """,
        )
    )
    d = cfg.dhcp
    assert d.mode == "full"
    assert (d.range_first, d.range_last) == (IPv4Address("10.0.0.100"), IPv4Address("10.0.0.200"))
    assert [(str(r.mac), str(r.ip), r.hostname) for r in d.reservations] == [
        ("52:54:00:12:34:56", "10.0.0.50", "web1"),
        ("52:54:00:12:34:57", "10.0.0.51", None),
    ]


def test_unquoted_mac_is_not_read_as_a_number(tmp_path: Path) -> None:
    """YAML 1.1 reads ``52:54:00:12:34:56`` as a base-60 integer; an admin means the MAC."""
    cfg = load_config(
        write(
            tmp_path,
            """\
        dhcp:
          reservations:
            - {mac: 52:54:00:12:34:56, ip: 10.0.0.50}
        """,
        )
    )
    assert cfg.dhcp.reservations[0].mac == MacAddress.parse("52:54:00:12:34:56")


# ------------------------------------------------------------------------------------------ refusals

BAD: list[tuple[str, str, int, str | None, str]] = [
    # (id, file text, line, key, reason fragment)
    (
        "unknown top key",
        "log:\n  level: INFO\nsevrer-ip: 10.0.0.1\n",
        3,
        "sevrer-ip",
        "unknown key (did you mean 'server-ip'?)",
    ),
    (
        "unknown nested key",
        "dhcp:\n  mode: proxy\n  rnage: 10.0.0.1-10.0.0.9\n",
        3,
        "dhcp.rnage",
        "unknown key (did you mean 'range'?)",
    ),
    ("unknown key, no hint", "dhcp:\n  zzzzzz: 1\n", 2, "dhcp.zzzzzz", "unknown key"),
    ("unknown section", "tftp:\n  port: 69\n", 1, "tftp", "unknown key"),
    (
        "unknown reservation key",
        "dhcp:\n  reservations:\n    - mac: '52:54:00:12:34:56'\n      ip: 10.0.0.5\n      hostnmae: x\n",
        5,
        "dhcp.reservations.0.hostnmae",
        "did you mean 'hostname'",
    ),
    ("section not a mapping", "dhcp: full\n", 1, "dhcp", "must be a mapping"),
    ("document not a mapping", "- a\n- b\n", 1, None, "must be a mapping"),
    ("top-level value on its own line", "log:\n  level: INFO\nserver-ip: 300.1.1.1\n", 3, "server-ip", "300"),
    (
        "bad unknown-default",
        "\n\nunknown-default: reinstall\n",
        3,
        "unknown-default",
        "must be local, menu or profile:NAME",
    ),
    ("empty profile name", "unknown-default: 'profile:'\n", 1, "unknown-default", "profile:NAME"),
    ("wrong type: port as text", "ports:\n  http: '8080'\n", 2, "ports.http", "must be a port number"),
    ("wrong type: bool as int", "dhcp:\n  lease-time: true\n", 2, "dhcp.lease-time", "positive integer"),
    ("wrong type: int as bool", "services:\n  tftp: 1\n", 2, "services.tftp", "must be true or false"),
    ("wrong type: list as string", "database-url: [a]\n", 1, "database-url", "non-empty string"),
    ("empty string", "dhcp:\n  domain: ''\n", 2, "dhcp.domain", "non-empty string"),
    ("bad port: too big", "dhcp:\n  proxy-port: 65536\n", 2, "dhcp.proxy-port", "0..65535"),
    ("bad port: negative", "ports:\n  tftp: -1\n", 2, "ports.tftp", "0..65535"),
    ("bad port: float", "ports:\n  dns: 53.5\n", 2, "ports.dns", "0..65535"),
    ("bad port: null", "dhcp:\n  port:\n", 2, "dhcp.port", "0..65535"),
    ("lease time zero", "dhcp:\n  lease-time: 0\n", 2, "dhcp.lease-time", "positive integer"),
    ("no tftp loops", "tftp-loops: 0\n", 1, "tftp-loops", "must be 'auto' or a number of loops 1..1024"),
    ("tftp loops by name", "log: {level: INFO}\ntftp-loops: all\n", 2, "tftp-loops", "got 'all'"),
    ("tftp loops as yes", "tftp-loops: true\n", 1, "tftp-loops", "got True"),
    ("bad mode", "dhcp:\n  mode: authoritative\n", 2, "dhcp.mode", "must be one of proxy, full, off"),
    ("bad log level", "log:\n  level: chatty\n", 2, "log.level", "must be one of"),
    ("bad ip", "dhcp:\n  router: 10.0.0\n", 2, "dhcp.router", "10.0.0"),
    (
        "bad dns server",
        "dhcp:\n  dns-servers: [10.0.0.1, dns.example]\n",
        2,
        "dhcp.dns-servers",
        "dns.example",
    ),
    ("bad subnet", "dhcp:\n  subnet: 10.0.0.0/33\n", 2, "dhcp.subnet", "33"),
    ("bad range: one address", "dhcp:\n  range: 10.0.0.100\n", 2, "dhcp.range", "must be FIRST-LAST"),
    (
        "bad range: reversed",
        "dhcp:\n  range: 10.0.0.200-10.0.0.100\n",
        2,
        "dhcp.range",
        "range end 10.0.0.100 is before its start 10.0.0.200",
    ),
    ("bad range: not addresses", "dhcp:\n  range: a-b\n", 2, "dhcp.range", "'a'"),
    (
        "full mode without range",
        "log:\n  level: INFO\ndhcp:\n  mode: full\n",
        3,
        "dhcp.range",
        "full DHCP mode needs an address range",
    ),
    (
        "range outside subnet",
        "dhcp:\n  mode: full\n  subnet: 10.0.0.0/24\n  range: 10.0.1.1-10.0.1.9\n",
        4,
        "dhcp.range",
        "10.0.1.1 is outside subnet 10.0.0.0/24",
    ),
    (
        "router outside subnet",
        "dhcp:\n  mode: full\n  subnet: 10.0.0.0/24\n  range: 10.0.0.1-10.0.0.9\n  router: 192.168.0.1\n",
        5,
        "dhcp.router",
        "192.168.0.1 is outside subnet",
    ),
    (
        "reservation outside subnet",
        "dhcp:\n  mode: full\n  subnet: 10.0.0.0/24\n  range: 10.0.0.1-10.0.0.9\n"
        "  reservations:\n    - {mac: '52:54:00:12:34:56', ip: 10.9.9.9}\n",
        5,
        "dhcp.reservations",
        "10.9.9.9 (52:54:00:12:34:56) is outside 10.0.0.0/24",
    ),
    (
        "duplicate reservation MAC (other spelling)",
        "dhcp:\n  reservations:\n"
        "    - {mac: '52:54:00:12:34:56', ip: 10.0.0.5}\n    - {mac: 525400123456, ip: 10.0.0.6}\n",
        4,
        "dhcp.reservations.1",
        "MAC 52:54:00:12:34:56 is reserved twice",
    ),
    (
        "duplicate reservation address",
        "dhcp:\n  reservations:\n"
        "    - {mac: '52:54:00:12:34:56', ip: 10.0.0.5}\n    - {mac: '52:54:00:12:34:57', ip: 10.0.0.5}\n",
        4,
        "dhcp.reservations.1",
        "address 10.0.0.5 is reserved twice",
    ),
    (
        "reservation without ip",
        "dhcp:\n  reservations:\n    - mac: '52:54:00:12:34:56'\n",
        3,
        "dhcp.reservations.0",
        "missing required key 'ip'",
    ),
    (
        "reservation bad mac",
        "dhcp:\n  reservations:\n    - mac: '52:54:00:12:34'\n      ip: 10.0.0.5\n",
        3,
        "dhcp.reservations.0.mac",
        "not a MAC address",
    ),
    (
        "reservations not a list",
        "dhcp:\n  reservations:\n    web1: 10.0.0.5\n",
        2,
        "dhcp.reservations",
        "must be a list",
    ),
    ("duplicate key", "dhcp:\n  mode: proxy\n  port: 67\n  mode: full\n", 4, "dhcp.mode", "duplicate key"),
    ("duplicate top key", "log: {level: INFO}\nlog: {level: DEBUG}\n", 2, "log", "duplicate key"),
]


@pytest.mark.parametrize(
    ("text", "line", "key", "reason"), [row[1:] for row in BAD], ids=[row[0] for row in BAD]
)
def test_bad_files_are_refused_with_file_line_key_reason(
    tmp_path: Path, text: str, line: int, key: str | None, reason: str
) -> None:
    error = refused(tmp_path, text)
    path = tmp_path / "netboot.yaml"
    assert (error.line, error.key) == (line, key)
    assert reason in error.reason
    prefix = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
    assert str(error) == prefix + error.reason


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("dhcp:\n  mode: [full\n", 3),  # unclosed flow sequence: reported where the parser gave up
        ("dhcp:\n  mode: proxy\n   port: 67\n", 3),
        ("dhcp:\n\tmode: proxy\n", 2),  # tab indentation
        ("a: 1\n---\nb: 2\n", 2),  # two documents
        ("dhcp: {mode: proxy\n", 2),
    ],
)
def test_yaml_syntax_errors_name_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    error = refused(tmp_path, text)
    assert error.line == line
    assert error.key is None
    assert error.reason.startswith("YAML syntax: ")
    assert str(error).startswith(f"{tmp_path / 'netboot.yaml'}:{line}: YAML syntax: ")


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("dhcp:\n  <<: {port: 68}\n", 2),  # merge key
        ("dhcp:\n  mode: !!python/object/apply:os.system [true]\n", 2),  # unsafe tag
        ("log:\n  level: !custom INFO\n", 2),  # unknown tag
    ],
)
def test_unsupported_yaml_is_an_error_not_a_traceback(tmp_path: Path, text: str, line: int) -> None:
    error = refused(tmp_path, text)
    assert error.line == line
    assert str(error).startswith(f"{tmp_path / 'netboot.yaml'}:{line}: ")


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "netboot.yaml"
    path.write_bytes(b"dhcp:\n  mode: \xff\xfe\n")
    with pytest.raises(SourceError, match="cannot read") as info:
        load_config(path)
    assert info.value.file == str(path)
    with pytest.raises(SourceError, match="cannot read"):
        load(tmp_path)  # a directory


# ----------------------------------------------------------------------------------- relative paths


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = write(
        tmp_path / "etc" / "netboot",
        """\
        data-dir: state
        profiles-dir: ../profiles
        tftp-root: ./tftp
        loaders:
          dir: ipxe
        """,
    )
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(conf)
    base = conf.parent
    assert cfg.data_dir == base / "state"
    assert cfg.profiles_dir is not None and cfg.profiles_dir.resolve() == (tmp_path / "etc" / "profiles")
    assert cfg.tftp_root == base / "tftp"
    assert cfg.loaders.dir == base / "ipxe"
    assert cfg.db_url == f"sqlite:///{base / 'state' / 'netboot.db'}"


def test_relative_config_path_resolves_against_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "conf", "profiles-dir: profiles\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(Path("conf/netboot.yaml"))
    assert cfg.profiles_dir == tmp_path / "conf" / "profiles"
    assert cfg.profiles_dir.is_absolute()


def test_absolute_and_home_paths_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    conf = write(
        tmp_path / "etc", "data-dir: /var/lib/nb\nprofiles-dir: ~/profiles\nloaders:\n  dir: /usr/lib/ipxe\n"
    )
    cfg = load_config(conf)
    assert cfg.data_dir == Path("/var/lib/nb")
    assert cfg.profiles_dir == tmp_path / "home" / "profiles"
    assert cfg.loaders.dir == Path("/usr/lib/ipxe")


def test_unset_paths_stay_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETBOOT_DATA_DIR", str(tmp_path / "state"))
    cfg = load_config(write(tmp_path, "log:\n  level: INFO\n"))
    assert cfg.profiles_dir is None and cfg.tftp_root is None and cfg.loaders.dir is None
    assert cfg.data_dir == tmp_path / "state"


# -------------------------------------------------------------------------------------- overrides

BASE = Config(data_dir=Path("/base"))


@pytest.mark.parametrize(
    ("overrides", "read", "expected"),
    [
        (Overrides(interfaces=("eth1", "eth2")), lambda c: c.interfaces, ("eth1", "eth2")),
        (Overrides(server_ip="10.0.0.9"), lambda c: c.server_ip, IPv4Address("10.0.0.9")),
        (Overrides(dhcp_mode="off"), lambda c: c.dhcp.mode, "off"),
        (
            Overrides(dhcp_range="10.0.0.10-10.0.0.20"),
            lambda c: (c.dhcp.range_first, c.dhcp.range_last),
            (IPv4Address("10.0.0.10"), IPv4Address("10.0.0.20")),
        ),
        (Overrides(dhcp_port=1067), lambda c: c.dhcp.port, 1067),
        (Overrides(tftp_port=1069), lambda c: c.ports.tftp, 1069),
        (Overrides(http_port=8081), lambda c: c.ports.http, 8081),
        (Overrides(data_dir="/elsewhere"), lambda c: c.data_dir, Path("/elsewhere")),
        (Overrides(profiles="/p"), lambda c: c.profiles_dir, Path("/p")),
        (Overrides(loaders="/l"), lambda c: c.loaders.dir, Path("/l")),
    ],
    ids=[
        "interfaces",
        "server-ip",
        "dhcp-mode",
        "dhcp-range",
        "dhcp-port",
        "tftp-port",
        "http-port",
        "data-dir",
        "profiles",
        "loaders",
    ],
)
def test_each_flag_overrides_only_its_setting(
    overrides: Overrides, read: Callable[[Config], Any], expected: Any
) -> None:
    out = apply_overrides(BASE, overrides)
    assert read(out) == expected
    assert read(BASE) != expected
    assert apply_overrides(BASE, Overrides()) == BASE  # no flags, no change


def test_flags_win_over_the_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "ports:\n  http: 8000\ndhcp:\n  mode: proxy\n  port: 67\n"))
    out = apply_overrides(
        cfg, Overrides(http_port=9000, dhcp_mode="full", dhcp_range="10.0.0.1-10.0.0.5", dhcp_port=0)
    )
    assert (out.ports.http, out.dhcp.mode, out.dhcp.port) == (9000, "full", 0)
    assert out.ports.tftp == cfg.ports.tftp and out.source == cfg.source


def test_full_mode_flag_with_range_from_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "dhcp:\n  range: 10.0.0.1-10.0.0.5\n"))
    assert apply_overrides(cfg, Overrides(dhcp_mode="full")).dhcp.mode == "full"


@pytest.mark.parametrize(
    ("overrides", "key", "reason"),
    [
        (Overrides(server_ip="10.0.0.300"), "--server-ip", "10.0.0.300"),
        (Overrides(server_ip="eth0"), "--server-ip", "eth0"),
        (Overrides(dhcp_range="10.0.0.1"), "--dhcp-range", "FIRST-LAST"),
        (Overrides(dhcp_range="10.0.0.9-10.0.0.1"), "--dhcp-range", "before its start"),
        (Overrides(dhcp_range="10.0.0.1-x"), "--dhcp-range", "'x'"),
        (Overrides(dhcp_mode="full"), "dhcp.range", "needs an address range"),
        (Overrides(dhcp_mode="authoritative"), "--dhcp-mode", "proxy, full, off"),
        (Overrides(dhcp_port=65536), "--dhcp-port", "0..65535"),
        (Overrides(tftp_port=-1), "--tftp-port", "0..65535"),
        (Overrides(http_port=70000), "--http-port", "0..65535"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(overrides: Overrides, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        apply_overrides(BASE, overrides)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(info.value) == f"{key}: {info.value.reason}"


def test_range_flag_outside_the_configured_subnet_is_refused() -> None:
    cfg = replace(
        BASE,
        dhcp=DhcpConfig(
            mode="full",
            subnet=IPv4Network("10.0.0.0/24"),
            range_first=IPv4Address("10.0.0.1"),
            range_last=IPv4Address("10.0.0.9"),
        ),
    )
    with pytest.raises(ConfigError, match="outside subnet"):
        apply_overrides(cfg, Overrides(dhcp_range="10.1.0.1-10.1.0.9"))


# ------------------------------------------------------------------------------------- yamlsource


def test_lines_of_every_key_and_item() -> None:
    doc = loads(
        textwrap.dedent("""\
        # comment
        server-ip: 10.0.0.1
        dhcp:
          mode: full

          reservations:
            - mac: "52:54:00:12:34:56"
              ip: 10.0.0.5
            - {mac: "52:54:00:12:34:57", ip: 10.0.0.6}
        log: {level: INFO,
              format: json}
        """),
        "f.yaml",
    )
    assert doc.file == "f.yaml"
    assert doc.lines["server-ip"] == 2
    assert doc.lines["dhcp"] == 3
    assert doc.lines["dhcp.mode"] == 4
    assert doc.lines["dhcp.reservations"] == 6
    assert doc.lines["dhcp.reservations.0"] == 7
    assert doc.lines["dhcp.reservations.0.mac"] == 7
    assert doc.lines["dhcp.reservations.0.ip"] == 8
    assert doc.lines["dhcp.reservations.1"] == 9
    assert doc.lines["dhcp.reservations.1.ip"] == 9
    assert doc.lines["log.level"] == 10
    assert doc.lines["log.format"] == 11
    assert doc.data == {
        "server-ip": "10.0.0.1",
        "dhcp": {
            "mode": "full",
            "reservations": [
                {"mac": "52:54:00:12:34:56", "ip": "10.0.0.5"},
                {"mac": "52:54:00:12:34:57", "ip": "10.0.0.6"},
            ],
        },
        "log": {"level": "INFO", "format": "json"},
    }


def test_line_falls_back_to_the_enclosing_key() -> None:
    doc = loads("a: 1\nb:\n  c: 2\n")
    assert doc.line("b.c") == 3
    assert doc.line("b.c.d.e") == 3
    assert doc.line("b.missing") == 2
    assert doc.line("zzz") == 1  # the document itself
    error = doc.error("b.c.d", "bad")
    assert (error.file, error.line, error.key, error.reason) == ("<string>", 3, "b.c.d", "bad")
    assert str(error) == "<string>:3: b.c.d: bad"
    assert str(doc.error("", "whole document")) == "<string>:1: whole document"


def test_source_error_formats() -> None:
    assert str(SourceError("f.yaml", 3, "k", "bad")) == "f.yaml:3: k: bad"
    assert str(SourceError("f.yaml", None, "k", "bad")) == "f.yaml: k: bad"
    assert str(SourceError("f.yaml", None, None, "bad")) == "f.yaml: bad"
    assert isinstance(SourceError("f", 1, None, "x"), ValueError)


def test_scalars_keep_yaml_types() -> None:
    doc = loads("i: 5\nf: 1.5\nb: true\nn: null\ns: '5'\nl: [1, two]\nt: 10.0.0.1\n")
    assert doc.data == {"i": 5, "f": 1.5, "b": True, "n": None, "s": "5", "l": [1, "two"], "t": "10.0.0.1"}


def test_sexagesimal_looking_scalars_stay_text() -> None:
    """YAML 1.2 has no base-60 numbers; MACs and times like 52:54:00:12:34:56 or 1:30 are text."""
    doc = loads("mac: 52:54:00:12:34:56\ntime: 1:30\nratio: 1:30.5\nquoted: '52:54'\nint: 5254\n")
    assert doc.data == {
        "mac": "52:54:00:12:34:56",
        "time": "1:30",
        "ratio": "1:30.5",
        "quoted": "52:54",
        "int": 5254,
    }


def test_anchors_and_aliases_are_values() -> None:
    doc = loads("a: &x {k: 1}\nb: *x\n")
    assert doc.data == {"a": {"k": 1}, "b": {"k": 1}}
    assert doc.lines["b"] == 2


def test_duplicate_key_in_nested_item() -> None:
    with pytest.raises(SourceError) as info:
        loads("l:\n  - a: 1\n    a: 2\n", "f.yaml")
    assert (info.value.file, info.value.line, info.value.key) == ("f.yaml", 3, "l.0.a")
    assert str(info.value) == "f.yaml:3: l.0.a: duplicate key"


def test_empty_document() -> None:
    doc = loads("")
    assert doc == Located("<string>", {}, {})
    assert doc.line("x") is None


def test_load_reads_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "a:\n  b: 1\n")
    doc = load(path)
    assert doc.file == str(path)
    assert doc.data == {"a": {"b": 1}}
    assert doc.lines["a.b"] == 2


def test_parse_accepts_a_located_document() -> None:
    cfg = parse(loads("ports:\n  http: 81\n", "/etc/netboot/netboot.yaml"))
    assert cfg.ports.http == 81
    assert cfg.source == "/etc/netboot/netboot.yaml"
