"""Which loaders one machine gets, firmware by firmware, and what each fetches next (pure): the table the UI
and the API show for a system.

This is not a second decision table. Each row starts from the boot core's own DHCP answer
(:meth:`netboot.boot.core.BootCore.dhcp`, so :func:`netboot.boot.decide.decide` and the local-boot rule;
asked of a core over :class:`OneSystem`) to a request built by :func:`request_for` as that firmware would
send it, and only explains that answer:
whether the named file is on this server (:class:`netboot.loaders.Loaders`), which files the loader asks
next, the config it reads and how the kernel and initrd travel:

==================  ====================================================================================
answer              row
==================  ====================================================================================
``LocalBoot``       no boot file: the firmware goes on to its next boot device (``local_boot: skip``)
``NoBoot``          no boot file, with the decision's reason and what to install or configure
an iPXE loader      ``boot.ipxe?mac=<mac>`` over HTTP, then the kernel and initrd over HTTP
``shimx64.efi``     ``grubx64.efi`` (and ``mmx64.efi``, ``fbx64.efi`` if something fails) over TFTP, then
                    ``grub/grub.cfg-01-<mac>``, then the kernel and initrd over TFTP from the profile's
                    data directory (Debian 12's signed GRUB has no http)
``shim-grub/*.img`` UEFI HTTP Boot on the shim-grub chain: a disk image holding shim, GRUB and MokManager
                    (:mod:`netboot.shimdisk`), then the same ``grub.cfg`` and kernel over TFTP
==================  ====================================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from netboot.arch import Arch, arch_from_code
from netboot.boot import urls
from netboot.boot.choose import BootChoice
from netboot.boot.classify import BootRequest
from netboot.boot.decide import IPXE_CHAIN, SHIM_CHAIN, BootDecision, DhcpAnswer, LocalBoot
from netboot.inventory import System
from netboot.loaders import SHIM_FILES, SHIM_REQUIRED, Loaders, apt_install
from netboot.mac import MacAddress
from netboot.shimdisk import MTOOLS_PACKAGE, disk_contents


@dataclass(frozen=True, slots=True)
class Firmware:
    """One kind of boot client, by the option-93 code it sends (:data:`netboot.arch.ARCH_CODES`)."""

    label: str
    code: int


#: the firmware a table row is made for, in the order shown
FIRMWARES = (
    Firmware("BIOS", 0),
    Firmware("UEFI x64 PXE", 7),
    Firmware("UEFI x64 HTTP Boot", 16),
    Firmware("UEFI ARM64", 11),
)

#: what shim asks beside itself: GRUB always, MokManager and the fallback only when something fails
SHIM_NEXT = tuple(name for name in SHIM_FILES if name != urls.SHIM_BOOT_FILE)


def request_for(firmware: Firmware, mac: MacAddress) -> BootRequest:
    """The request ``firmware`` sends when ``mac`` boots from the network (before any iPXE runs)."""
    code = arch_from_code(firmware.code)
    return BootRequest(
        mac=mac,
        arch=code.arch,
        arch_code=firmware.code,
        pxe=not code.http,
        http=code.http,
        ipxe=False,
        vendor_class=f"{'HTTPClient' if code.http else 'PXEClient'}:Arch:{firmware.code:05d}",
        user_classes=(),
        uuid=None,
    )


class OneSystem:
    """A read-only :class:`~netboot.boot.ports.Inventory` holding the one system a view asks about, for a
    :class:`~netboot.boot.core.BootCore` made for that view: its DHCP answer is then the real one without a
    database read per firmware, and asking it cannot change anything (a write raises)."""

    def __init__(self, system: System) -> None:
        self._system = system

    def get(self, mac: MacAddress) -> System | None:
        return self._system if mac == self._system.mac else None

    def _read_only(self, *_: object, **__: object) -> System:
        raise RuntimeError("the loaders view changes nothing")

    add = save = _read_only

    def seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> System:
        return self._read_only()

    def stage_seen(self, mac: MacAddress, *, arch: str | None, uuid: str | None, now: float) -> None:
        self._read_only()


def grub_config_name(mac: MacAddress) -> str:
    """The per-MAC config the shim-grub chain's GRUB reads: ``grub/grub.cfg`` sources it by GRUB's
    ``$net_default_mac``, which is the colon spelling (:data:`netboot.boot.tftpnames.GRUB_STUB`)."""
    return f"{urls.GRUB_CONFIG}-01-{mac.colon}"


@dataclass(frozen=True, slots=True)
class LoaderFile:
    """A file the loader asks for next, whether this server has it, and the package that has it if not."""

    name: str
    found: bool
    package: str | None = None
    #: False for what is asked only when something fails (MokManager, the fallback)
    always: bool = True


@dataclass(frozen=True, slots=True)
class LoaderRow:
    """What one firmware gets when this machine boots from the network now."""

    #: :attr:`BootRequest.kind`: ``bios``, ``uefi-x64``, ``uefi-x64-http``, ``uefi-arm64``
    firmware: str
    label: str
    #: the chain that serves this firmware (BIOS is always ``ipxe``); None: it gets no boot file
    chain: str | None
    #: the boot file DHCP names (a TFTP name, or a URL for HTTP Boot); None: no boot file
    boot_file: str | None
    #: ``tftp`` or ``http``
    via: str | None
    #: whether the boot file is on this server
    found: bool | None
    #: files the loader fetches from this server next (shim's GRUB, MokManager, fallback)
    then: tuple[LoaderFile, ...]
    #: the config the loader reads: the ``boot.ipxe`` script or GRUB's per-MAC ``grub.cfg``
    config: str | None
    #: how the config is fetched: ``http`` (iPXE) or ``tftp`` (GRUB)
    config_via: str | None
    #: how the kernel and initrd are fetched: ``http`` or ``tftp``; None when the machine loads none
    kernel_via: str | None
    #: files this server lacks that stop this firmware from booting (install them, or set loaders.*)
    missing: tuple[str, ...]
    #: why it gets nothing (then :attr:`boot_file` is None), what is missing, or what the config does
    #: instead of installing
    note: str | None


def _shim_chain(request: BootRequest, choice: BootChoice) -> bool:
    """A UEFI x64 client (PXE or HTTP Boot) on the shim-grub chain."""
    return choice.boot_chain == SHIM_CHAIN and request.arch is Arch.UEFI_X64


def _no_boot_missing(request: BootRequest, choice: BootChoice, loaders: Loaders) -> dict[str, str | None]:
    """The files whose absence from this server is why ``request`` gets no boot file: name -> the Debian
    package that has it (None for an iPXE loader named in netboot.yaml)."""
    if _shim_chain(request, choice):
        missing: dict[str, str | None] = dict(loaders.shim_required_missing)
        if request.http:
            missing.update(dict.fromkeys(loaders.mtools_missing, MTOOLS_PACKAGE))
        return missing
    wanted = loaders.missing.get(request.arch)
    return {wanted: None} if wanted is not None else {}


def _no_boot_detail(
    request: BootRequest, choice: BootChoice, missing: dict[str, str | None], loaders: Loaders
) -> str:
    """What to install or configure so this firmware gets a boot file (empty when that is not the cause)."""
    if any(missing.values()):
        return "; missing on this server: " + ", ".join(f"{n} (package {p})" for n, p in missing.items())
    if missing:
        return f"; {', '.join(missing)} is not in loaders.dir nor /usr/lib/ipxe"
    if not _shim_chain(request, choice) and request.arch not in loaders.by_arch:
        return f"; set loaders.{request.arch.value} in netboot.yaml"
    return ""


def _after_loader(choice: BootChoice, chain: str, grub_fetches: bool) -> tuple[str | None, str | None]:
    """``(kernel_via, note)``: what the config does once the loader has it."""
    installs = choice.decision == "install" and choice.profile is not None and choice.profile.installs
    if chain == IPXE_CHAIN:
        if installs:
            return "http", None
        if choice.decision == "menu":
            return "http", "boot.ipxe is the profile menu (the kernel of the profile picked)"
        return None, f"boot.ipxe boots the local disk ({choice.script_local_boot})"
    if installs and grub_fetches:
        return "tftp", None
    if installs:
        assert choice.profile is not None
        return None, (
            f"a kernel or initrd of profile {choice.profile.name} is only a URL here, not a file in its "
            "data_dir: Debian 12's signed GRUB fetches only netboot's files, over TFTP (it has no http), so "
            "grub.cfg boots the local disk and this machine does not install"
        )
    if choice.decision == "menu":
        return None, "GRUB has no profile menu: grub.cfg boots the local disk (register it to install)"
    return None, "grub.cfg boots the local disk (GRUB exit)"


def loader_row(
    firmware: Firmware,
    request: BootRequest,
    answer: DhcpAnswer | None,
    choice: BootChoice,
    loaders: Loaders,
    grub_fetches: bool = True,
) -> LoaderRow:
    """Explain ``answer``, the boot core's DHCP answer to ``request``; ``choice`` is the machine's boot
    choice for that firmware's architecture, ``grub_fetches`` whether GRUB's config for its profile loads
    every kernel and initrd (netboot's files, over TFTP) rather than booting the local disk."""
    kind, label = request.kind, firmware.label
    if not isinstance(answer, BootDecision):
        missing: dict[str, str | None] = {}
        if answer is None:
            note = "not a boot client"
        elif isinstance(answer, LocalBoot):
            note = f"{answer.reason}: the firmware goes on to its next boot device"
        else:
            missing = _no_boot_missing(request, choice, loaders)
            note = f"{answer.reason}{_no_boot_detail(request, choice, missing, loaders)}"
        return LoaderRow(kind, label, None, None, None, None, (), None, None, None, tuple(missing), note)
    name = unquote(answer.boot_file.rsplit("/", 1)[-1]) if answer.via == "http" else answer.boot_file
    found = name in loaders.paths
    notes: list[str] = [] if found else [f"{name} is not on this server"]
    lacking_names = [] if found else [name]
    then: tuple[LoaderFile, ...] = ()
    if answer.via == "http" and urls.is_shim_disk_url(answer.boot_file):
        found = loaders.shim_http_ready
        lacking_names = [*loaders.shim_required_missing, *loaders.mtools_missing]
        notes = [f"a disk image holding {', '.join(disk_contents(loaders.paths))}, started from a RAM "
                 "disk (Debian 12's signed GRUB cannot read its config over HTTP)"]
        chain, config_via = SHIM_CHAIN, "tftp"
        config = grub_config_name(request.mac)
    elif name == urls.SHIM_BOOT_FILE:
        chain, config_via = SHIM_CHAIN, "tftp"
        then = tuple(
            LoaderFile(n, n in loaders.paths, loaders.shim_missing.get(n), always=n in SHIM_REQUIRED)
            for n in SHIM_NEXT
        )
        config = grub_config_name(request.mac)
        lacking_names += [f.name for f in then if f.always and not f.found]
        helpers = loaders.shim_helpers_missing
        if helpers:
            notes.append(
                f"{', '.join(helpers)} not installed ({apt_install(helpers.values())}): shim has no "
                "MokManager or fallback to offer if verification fails"
            )
    else:
        chain, config_via = IPXE_CHAIN, "http"
        config = urls.boot_script_url("", request.mac).lstrip("/")
    kernel_via, after = _after_loader(choice, chain, grub_fetches)
    if after:
        notes.append(after)
    return LoaderRow(kind, label, chain, answer.boot_file, answer.via, found, then, config, config_via,
                     kernel_via, tuple(lacking_names), "; ".join(notes) or None)
