"""netboot.yaml through its pydantic schema: every error of a file at once, the local-boot key, and the
shared field types of netboot.schema_types."""

from __future__ import annotations

import textwrap
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from netboot.config import Config, load_config
from netboot.mac import MacAddress
from netboot.schema_types import (
    BOOT_CHAIN_CHOICES,
    DEFAULT_BOOT_CHAIN,
    DEFAULT_LOCAL_BOOT,
    LOCAL_BOOT_CHOICES,
    FileModel,
    Hostname,
    IPv4,
    LocalBoot,
    Mac,
    ProfileName,
    Text,
    reason_of,
)
from netboot.yamlsource import SourceError, SourceErrors, loads, schema_errors


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "netboot.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused_all(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(SourceErrors) as info:
        load_config(path)
    assert str(info.value) == "\n".join(str(e) for e in info.value.errors)
    return [str(e).removeprefix(f"{path}:") for e in info.value.errors]


def test_every_error_of_a_file_is_reported_in_file_order(tmp_path: Path) -> None:
    errors = refused_all(
        tmp_path,
        """\
        sevrer-ip: 10.0.0.1
        dhcp:
          mode: authoritative
          lease_time: 60
          reservations:
            - {mac: '52:54:00:12:34', ip: 10.0.0.5}
        ports:
          http: '8080'
        log: {level: chatty}
        """,
    )
    assert errors == [
        "1: sevrer-ip: unknown key (did you mean 'server-ip'?)",
        "3: dhcp.mode: must be one of proxy, full, off; got 'authoritative'",
        "4: dhcp.lease_time: unknown key (did you mean 'lease-time'?)",
        "6: dhcp.reservations.0.mac: not a MAC address: '52:54:00:12:34' (use e.g. 52:54:00:12:34:56)",
        "8: ports.http: must be a port number 0..65535, got '8080'",
        "9: log.level: must be one of DEBUG, INFO, WARNING, ERROR; got 'chatty'",
    ]


def test_cross_key_problems_are_all_reported_too(tmp_path: Path) -> None:
    errors = refused_all(
        tmp_path,
        """\
        dhcp:
          mode: full
          subnet: 10.0.0.0/24
          router: 192.168.0.1
          reservations:
            - {mac: '52:54:00:12:34:56', ip: 10.0.0.5}
            - {mac: '52-54-00-12-34-56', ip: 10.0.0.5}
        """,
    )
    assert errors == [
        "1: dhcp.range: full DHCP mode needs an address range (FIRST-LAST)",
        "4: dhcp.router: 192.168.0.1 is outside subnet 10.0.0.0/24",
        "7: dhcp.reservations.1: MAC 52:54:00:12:34:56 is reserved twice",
        "7: dhcp.reservations.1: address 10.0.0.5 is reserved twice",
    ]


def test_a_single_error_is_still_one_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "dhcp:\n  port: x\n")
    with pytest.raises(SourceError) as info:
        load_config(path)
    assert (info.value.line, info.value.key) == (2, "dhcp.port")
    assert str(info.value) == f"{path}:2: dhcp.port: must be a port number 0..65535, got 'x'"


def test_local_boot_defaults_to_skip_and_takes_every_choice(tmp_path: Path) -> None:
    assert Config().local_boot == DEFAULT_LOCAL_BOOT == "skip"
    assert load_config(write(tmp_path, "log: {level: INFO}\n")).local_boot == "skip"
    for choice in LOCAL_BOOT_CHOICES:
        assert load_config(write(tmp_path, f"local-boot: {choice}\n")).local_boot == choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "local-boot: skpi\n",
            "1: local-boot: unknown local boot method 'skpi' (did you mean 'skip'?); one of: ",
        ),
        ("local-boot: 1\n", "1: local-boot: expected a string, got a number"),
        ("local_boot: exit\n", "1: local_boot: unknown key (did you mean 'local-boot'?)"),
    ],
)
def test_local_boot_refusals(tmp_path: Path, text: str, expected: str) -> None:
    errors = refused_all(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith(expected)


def test_boot_chain_defaults_to_ipxe_and_takes_every_choice(tmp_path: Path) -> None:
    assert Config().boot_chain == DEFAULT_BOOT_CHAIN == "ipxe"
    assert load_config(write(tmp_path, "log: {level: INFO}\n")).boot_chain == "ipxe"
    assert BOOT_CHAIN_CHOICES == ("ipxe", "shim-grub")
    for choice in BOOT_CHAIN_CHOICES:
        assert load_config(write(tmp_path, f"boot-chain: {choice}\n")).boot_chain == choice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "boot-chain: shim-grbu\n",
            "1: boot-chain: unknown boot chain 'shim-grbu' (did you mean 'shim-grub'?); "
            "one of: ipxe, shim-grub",
        ),
        ("boot-chain: 1\n", "1: boot-chain: expected a string, got a number"),
        ("boot_chain: ipxe\n", "1: boot_chain: unknown key (did you mean 'boot-chain'?)"),
    ],
)
def test_boot_chain_refusals(tmp_path: Path, text: str, expected: str) -> None:
    errors = refused_all(tmp_path, text)
    assert len(errors) == 1 and errors[0].startswith(expected)


def test_reservation_hostname_must_be_a_host_name(tmp_path: Path) -> None:
    errors = refused_all(
        tmp_path,
        "dhcp:\n  reservations:\n    - {mac: '52:54:00:12:34:56', ip: 10.0.0.5, hostname: 'web 1'}\n",
    )
    assert errors == [
        "3: dhcp.reservations.0.hostname: 'web 1' is not a host name"
        " (letters, digits, inner '-', dot-separated labels)"
    ]


# ---------------------------------------------------------------------------------- shared types


class Body(FileModel):
    mac: Mac
    ip: IPv4 | None = None
    hostname: Hostname | None = None
    profile: ProfileName | None = None
    local_boot: LocalBoot | None = None
    note: Text = ""


@pytest.mark.parametrize(
    "spelling", ["52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", "5254.00ab.cdef", "525400abcdef"]
)
def test_mac_type_takes_every_spelling_and_serialises_colon_form(spelling: str) -> None:
    body = Body.model_validate({"mac": spelling, "ip": "10.0.0.9"})
    assert body.mac == MacAddress.parse("52:54:00:ab:cd:ef")
    assert body.ip == IPv4Address("10.0.0.9")
    assert body.model_dump(mode="json")["mac"] == "52:54:00:ab:cd:ef"


def test_shared_types_refuse_with_admin_reasons() -> None:
    with pytest.raises(ValidationError) as info:
        Body.model_validate(
            {
                "mac": 5254001234,
                "ip": "10.0.0",
                "hostname": "-web",
                "profile": "a/b",
                "local_boot": "exti",
                "note": "two\nlines",
                "extra": 1,
            }
        )
    reasons = {e["loc"][0]: reason_of(e) for e in info.value.errors()}
    assert reasons == {
        "mac": "YAML read this MAC address as a number: put it in quotes",
        "ip": "Expected 4 octets in '10.0.0'",
        "hostname": "'-web' is not a host name (letters, digits, inner '-', dot-separated labels)",
        "profile": "'a/b' is not a profile name (must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$)",
        "local_boot": "unknown local boot method 'exti' (did you mean 'exit'?); "
        "one of: skip, auto, exit, sanboot",
        "note": "must not contain control characters (newline, tab, ...): '\\n' at character 4",
        "extra": "Extra inputs are not permitted",
    }


def test_shared_types_describe_the_wire_form_in_json_schema() -> None:
    props = Body.model_json_schema()["properties"]
    assert props["mac"]["type"] == "string" and "pattern" in props["mac"]
    assert {"format": "ipv4", "type": "string"} in props["ip"]["anyOf"]
    assert {"type": "string", "enum": list(LOCAL_BOOT_CHOICES)} in props["local_boot"]["anyOf"]


def test_schema_errors_suggest_keys_of_nested_models_and_name_missing_keys() -> None:
    class Inner(FileModel):
        alpha: int
        beta: int = 0

    class Outer(BaseModel):
        items: tuple[Inner, ...] = ()

    doc = loads("items:\n  - alpha: 1\n  - betta: 2\n", "f.yaml")
    with pytest.raises(ValidationError) as info:
        Outer.model_validate(doc.data)
    errors = [str(e) for e in schema_errors(doc, info.value, Outer)]
    assert errors == [
        "f.yaml:3: items.1: missing required key 'alpha'",
        "f.yaml:3: items.1.betta: unknown key (did you mean 'beta'?)",
    ]


#: (YAML with "{bad}" where a string goes, the line, the key the error names): every free string of
#: netboot.yaml; the two domains reach DHCP option 15, DNS answers and the Debian kernel line
CONFIG_STRINGS = [
    ('dhcp:\n  domain: "lab{bad}.test"\n', 2, "dhcp.domain"),
    ('dns:\n  enabled: true\n  domain: "lab{bad}.test"\n', 3, "dns.domain"),
    (
        'dhcp:\n  reservations:\n    - {{mac: "52:54:00:12:34:56", ip: 10.0.0.5, hostname: "w{bad}"}}\n',
        3,
        "dhcp.reservations.0.hostname",
    ),
    ('loaders:\n  bios: "undionly{bad}.kpxe"\n', 2, "loaders.bios"),
    ('loaders:\n  dir: "/srv/{bad}"\n', 2, "loaders.dir"),
    ('database-url: "sqlite:////srv/{bad}.db"\n', 1, "database-url"),
    ('profiles-dir: "/srv/{bad}"\n', 1, "profiles-dir"),
    ('interfaces: [eth0, "eth{bad}1"]\n', 1, "interfaces"),
    ('unknown-default: "profile:p{bad}"\n', 1, "unknown-default"),
]


@pytest.mark.parametrize(("text", "line", "key"), CONFIG_STRINGS, ids=[r[2] for r in CONFIG_STRINGS])
@pytest.mark.parametrize(
    ("escape", "char"),
    [("\\n", "\n"), ("\\r", "\r"), ("\\e", "\x1b"), ("\\0", "\x00"), ("\\N", "\x85")],
    ids=["lf", "cr", "esc", "nul", "nel"],
)
def test_control_characters_are_refused_in_every_config_string(
    tmp_path: Path, text: str, line: int, key: str, escape: str, char: str
) -> None:
    errors = refused_all(tmp_path, text.format(bad=escape))
    assert len(errors) == 1 and errors[0].startswith(f"{line}: {key}: "), errors
    assert repr(char) in errors[0] and errors[0].isprintable(), errors
