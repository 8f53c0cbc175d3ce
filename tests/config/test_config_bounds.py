"""The edges of every bounded key of netboot.yaml: the last value accepted and the first refused.

A validator that is off by one refuses a setting the docs promise (port 65535, one TFTP loop, a lease of
one second, a one-address range) or lets through one they do not.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netboot.config import Config, load_config
from netboot.config.model import MAX_TFTP_LOOPS
from netboot.yamlsource import SourceError, SourceErrors


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "netboot.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_config(path)


def refusal(tmp_path: Path, text: str) -> str:
    with pytest.raises(SourceErrors) as info:
        load(tmp_path, text)
    (error,) = info.value.errors
    return str(error).split(": ", 1)[1]


def test_ports_reach_65535_and_zero(tmp_path: Path) -> None:
    cfg = load(tmp_path, "dhcp:\n  port: 65535\n  proxy-port: 0\nports:\n  http: 65535\n")
    assert (cfg.dhcp.port, cfg.dhcp.proxy_port, cfg.ports.http) == (65535, 0, 65535)
    assert "must be a port number 0..65535, got 65536" in refusal(tmp_path, "ports:\n  http: 65536\n")
    assert "got -1" in refusal(tmp_path, "ports:\n  tftp: -1\n")


def test_positive_numbers_start_at_one(tmp_path: Path) -> None:
    assert load(tmp_path, "dhcp:\n  lease-time: 1\n").dhcp.lease_time == 1
    assert "must be a positive integer, got 0" in refusal(tmp_path, "dhcp:\n  lease-time: 0\n")
    assert "positive integer, got True" in refusal(tmp_path, "dhcp:\n  lease-time: true\n")


@pytest.mark.parametrize("loops", [1, MAX_TFTP_LOOPS, "auto"])
def test_tftp_loops_accepted(tmp_path: Path, loops: object) -> None:
    assert load(tmp_path, f"tftp-loops: {loops}\n").tftp_loops == loops


@pytest.mark.parametrize("loops", [0, MAX_TFTP_LOOPS + 1, "AUTO", "two", "true"])
def test_tftp_loops_refused(tmp_path: Path, loops: object) -> None:
    assert f"must be 'auto' or a number of loops 1..{MAX_TFTP_LOOPS}" in refusal(
        tmp_path, f"tftp-loops: {loops}\n"
    )


def test_log_level_any_case_and_format_exactly(tmp_path: Path) -> None:
    cfg = load(tmp_path, "log:\n  level: debug\n  format: json\n")
    assert (cfg.log.level, cfg.log.format) == ("DEBUG", "json")
    assert "must be one of DEBUG, INFO, WARNING, ERROR; got 'verbose'" in refusal(
        tmp_path, "log:\n  level: verbose\n"
    )
    assert "must be one of text, json; got 'JSON'" in refusal(tmp_path, "log:\n  format: JSON\n")


@pytest.mark.parametrize("value", ["local", "menu", "profile:rocky9-kickstart"])
def test_unknown_default_accepted(tmp_path: Path, value: str) -> None:
    assert load(tmp_path, f"unknown-default: {value}\n").unknown_default == value


@pytest.mark.parametrize("value", ["profile:", "Menu", "ask"])
def test_unknown_default_refused(tmp_path: Path, value: str) -> None:
    assert "must be local, menu or profile:NAME" in refusal(tmp_path, f"unknown-default: '{value}'\n")


def test_a_range_may_be_one_address_but_not_backwards(tmp_path: Path) -> None:
    full = "dhcp:\n  mode: full\n  subnet: 10.0.0.0/24\n  range: {}\n"
    cfg = load(tmp_path, full.format("10.0.0.5-10.0.0.5"))
    assert str(cfg.dhcp.range_first) == str(cfg.dhcp.range_last) == "10.0.0.5"
    assert "range end 10.0.0.4 is before its start 10.0.0.5" in refusal(
        tmp_path, full.format("10.0.0.5-10.0.0.4")
    )


def test_a_missing_configuration_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        load_config(tmp_path / "absent.yaml")
    assert str(info.value) == f"{tmp_path / 'absent.yaml'}: no such configuration file"
