"""The ``netboot`` command line: the ``main`` group, with one module per command group below it.

Every command takes ``--config FILE`` and ``--data-dir DIR`` so it acts on the same state as the daemon.
Errors are one line naming the thing at fault (a file and line, a flag, a MAC), with exit status 2 for bad
input and 1 for failures (:func:`netboot.cli.common.fail`).

Imports point one way: this module imports the command modules, they import :mod:`netboot.cli.common`, and
nothing below imports this module. A new command group is one module with a ``COMMANDS`` list, named in
:data:`COMMAND_MODULES`.
"""

from __future__ import annotations

from types import ModuleType

import click

from netboot import __version__
from netboot.cli import accounts, db, lab, leases, profiles, serve, systems

COMMAND_MODULES: tuple[ModuleType, ...] = (serve, leases, systems, profiles, accounts, db, lab)
"""Each has ``COMMANDS``, the click commands and groups it adds to ``netboot``."""


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="netboot")
def main() -> None:
    """netboot: install operating systems over the network, per MAC address.

    One daemon answers PXE and UEFI HTTP boots (DHCP or ProxyDHCP), serves boot loaders over TFTP and
    HTTP, and renders each machine's answer file on request from its profile.

    Start with `netboot serve --help`.
    """


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        main.add_command(_command)

__all__ = ["main"]
