"""What the blueprints may use of the daemon, as a Protocol: the web app's one seam to the composition.

The app factory stores the daemon's composition in ``app.extensions``; a blueprint asks
:func:`services_of` and sees only these members, typed by their narrow interfaces (the boot core, the
store's repositories, the recorder), never the composition module itself. This module imports no
blueprint, so the blueprints and the factory do not import each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from flask import Flask

from netboot.boot.core import BootCore
from netboot.config import Config
from netboot.events import EventRecorder
from netboot.loaders import Loaders
from netboot.profiles import ProfileSet
from netboot.shimdisk import ShimDisk
from netboot.store import Store

EXTENSION = "netboot"


class WebServices(Protocol):
    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def recorder(self) -> EventRecorder: ...

    @property
    def loaders(self) -> Loaders: ...

    @property
    def core(self) -> BootCore: ...

    @property
    def shim_disk(self) -> ShimDisk:
        """The shim-grub chain's UEFI HTTP Boot image."""
        ...

    @property
    def profiles(self) -> ProfileSet:
        """The loaded profiles now (reloaded when a file changes)."""
        ...

    @property
    def profile_errors(self) -> list[str]:
        """Problems of the last profile (re)load, ``file:line: key: reason`` each."""
        ...

    @property
    def profiles_dir(self) -> Path: ...


def services_of(app: Flask) -> WebServices:
    services: WebServices = app.extensions[EXTENSION]
    return services

