"""What every ``netboot`` subcommand shares: the error exit, ``--config``/``--data-dir``, opening the state.

Errors are one line naming the thing at fault (a file and line, a flag, a MAC), with exit status 2 for bad
input and 1 for failures. Subcommand modules import this module only (never :mod:`netboot.cli` itself, which
imports them to register their commands), so the package has no import circle.
"""

from __future__ import annotations

import getpass
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from netboot import registration
from netboot.config import Config, ConfigError, Overrides, apply_overrides, load_config
from netboot.runtime import Runtime, build_runtime
from netboot.store import Store, StoreError, StoreLimits, open_store
from netboot.yamlsource import SourceError

F = TypeVar("F", bound=Callable[..., Any])

BAD_INPUT = 2
"""Exit status for input at fault (a flag, a file, a MAC); 1 is for failures of the operation itself."""


def fail(message: str, status: int = BAD_INPUT) -> NoReturn:
    """Print ``netboot: MESSAGE`` on stderr (each line of a many-error message prefixed) and exit."""
    for line in message.splitlines() or [""]:
        click.echo(f"netboot: {line}", err=True)
    sys.exit(status)


def state_options(func: F) -> F:
    """``--config`` and ``--data-dir``: shared by every command that touches netboot's state."""
    func = click.option(
        "--data-dir",
        "data_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="State directory (database, TFTP root, files). Overrides the config file.",
    )(func)
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="NETBOOT_CONFIG",
        help="YAML configuration file (docs/configuration.md). [env: NETBOOT_CONFIG]",
    )(func)
    return func


def load(config_file: Path | None, data_dir: Path | None, overrides: Overrides | None = None) -> Config:
    """The configuration as the daemon would read it, with ``--data-dir`` and flag overrides applied."""
    try:
        cfg = load_config(config_file)
        if data_dir is not None:
            cfg = replace(cfg, data_dir=data_dir)
        if overrides is not None:
            cfg = apply_overrides(cfg, overrides)
    except SourceError as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(f"{exc.key}: {exc.reason}")
    return cfg


def store_of(config_file: Path | None, data_dir: Path | None) -> Store:
    """The daemon's database alone (accounts, leases): no profiles loaded. The caller closes it."""
    cfg = load(config_file, data_dir)
    try:
        return open_store(cfg.db_url, StoreLimits.of(cfg.limits))
    except StoreError as exc:
        fail(str(exc), 1)


@contextmanager
def opened(config_file: Path | None, data_dir: Path | None) -> Iterator[Runtime]:
    """The daemon's whole state (store, profiles, groups) for one command; a refused field exits 2."""
    cfg = load(config_file, data_dir)
    try:
        runtime = build_runtime(cfg)
    except StoreError as exc:
        fail(str(exc), 1)
    try:
        yield runtime
    except registration.FieldError as exc:
        fail(str(exc))
    finally:
        # events are written by a background thread; a short-lived command must not drop its own
        runtime.store.events.wait_idle()
        runtime.close()


def actor() -> str:
    """Who made a change from the shell, for the audit log: ``cli:<login>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in the environment nor the password database
        return "cli"


def when(ts: float | None, *, seconds: bool = True) -> str:
    """A time stamp in local time for tables; ``-`` for none."""
    if not ts:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(ts))


def echo_json(value: Any, default: Callable[[Any], Any] | None = None) -> None:
    """``--json`` output: one indented document on stdout (``default`` as for :func:`json.dumps`)."""
    click.echo(json.dumps(value, indent=2, default=default))
