"""The site's ``boot-chain`` reaches the boot core: the runtime fills :class:`Site` from the config, and the
core's choice for a machine nobody configured carries it (a system's own override still wins)."""

from __future__ import annotations

from dataclasses import replace

from netboot.inventory import SystemState
from netboot.mac import MacAddress

from .conftest import MAC, RuntimeFactory, register


def test_the_site_default_reaches_every_choice(make_runtime: RuntimeFactory) -> None:
    plain = make_runtime()
    assert plain.core.site.boot_chain == "ipxe"
    assert plain.core.choice(None).boot_chain == "ipxe"
    rt = make_runtime(boot_chain="shim-grub")
    assert rt.core.site.boot_chain == "shim-grub"
    assert rt.core.choice(None).boot_chain == "shim-grub"  # an unknown machine
    register(rt, MAC)
    mac = MacAddress.parse(MAC)
    system = rt.store.systems.get(mac)
    assert system is not None
    assert rt.core.choice(system).boot_chain == "shim-grub"  # the sample profiles say nothing
    own = replace(system, state=SystemState.INSTALLED, boot_chain="ipxe")
    assert rt.core.choice(own).boot_chain == "ipxe"
