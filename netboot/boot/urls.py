"""Every machine-facing URL and path, spelled in ONE place so DHCP, TFTP, HTTP and the templates agree.

DHCP hands out the boot-script and loader URLs, boot scripts and answer files put the others on kernel
command lines and in post-install steps, and the HTTP server routes the same paths. Changing a path here
changes every side. The HTTP base (``http://SERVER[:PORT]``) is built by :func:`http_base` and nowhere else.

Paths (``<mac>`` is the colon spelling, ``52:54:00:12:34:56``; the server accepts any spelling
:class:`~netboot.mac.MacAddress` parses):

* ``/boot.ipxe?mac=<mac>``                       the per-MAC iPXE script (``&profile=<name>`` from the menu)
* ``/answer/<mac>/<file>?token=<token>``         an answer file (``ks.cfg``, ``preseed.cfg``, ``user-data``,
  ``meta-data``, ``autoinst.xml``, jumpstart's ``rules``/``profile``/``sysidcfg``/``finish``)
* ``/files/<profile>/<path>``                    a kernel/initrd from the profile's data directory
* ``/done/<mac>?token=<token>``                  the completion callback (GET or POST) that ends install mode
* ``/loaders/<name>``                            an iPXE binary, for UEFI HTTP Boot clients
* ``/shim-grub/<mac>.img``                       the shim-grub chain's disk image for UEFI HTTP Boot
  (:mod:`netboot.shimdisk`; ``<mac>`` with dashes, or ``any`` for an image that names no machine)

TFTP names of the Secure Boot chain (``boot_chain: shim-grub``), as shim and Debian's signed GRUB ask for
them (read from their traffic, ``docs/secure-boot-research.md``): the boot file ``shimx64.efi``; shim then
asks ``grubx64.efi`` beside it (and ``mmx64.efi`` when GRUB fails verification); GRUB asks only
``/grub/grub.cfg``, which sources ``/grub/grub.cfg-01-<mac>``; kernels and initrds come as
``/files/<profile>/<path>`` (that GRUB has no http).
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from netboot.mac import MacAddress

#: Route patterns for the HTTP server (Flask/werkzeug syntax), matching the builders below.
BOOT_SCRIPT_ROUTE = "/boot.ipxe"
ANSWER_ROUTE = "/answer/<mac>/<file>"
FILES_ROUTE = "/files/<profile>/<path:path>"
DONE_ROUTE = "/done/<mac>"
LOADER_ROUTE = "/loaders/<name>"
SHIM_DISK_ROUTE = "/shim-grub/<name>.img"
#: the ``<name>`` of the image that names no machine (GRUB then takes the MAC of its first card)
SHIM_DISK_ANY = "any"

#: the boot file of the shim-grub chain, and the GRUB shim loads beside it
SHIM_BOOT_FILE = "shimx64.efi"
GRUB_FILE = "grubx64.efi"
#: the one config name Debian's signed GRUB asks for (its prefix is ``(tftp,<server>)/grub``)
GRUB_CONFIG = "grub/grub.cfg"

#: What iPXE substitutes with the booting NIC's MAC; used where the script is for an unknown machine.
IPXE_MAC = "${net0/mac}"


def http_base(host: str, port: int) -> str:
    """``http://HOST[:PORT]``: the one spelling of this server's HTTP base (no :80, IPv6 in brackets)."""
    bracketed = f"[{host}]" if ":" in host else host
    return f"http://{bracketed}" if port == 80 else f"http://{bracketed}:{port}"


def _mac(mac: MacAddress | str) -> str:
    # A literal iPXE variable passes through unquoted so iPXE can expand it.
    return mac if isinstance(mac, str) else mac.colon


def _token_query(token: str | None) -> str:
    return "?" + urlencode({"token": token}) if token else ""


def boot_script_url(base: str, mac: MacAddress | str, profile: str | None = None) -> str:
    """``<base>/boot.ipxe?mac=<mac>[&profile=<name>]``."""
    url = f"{base}{BOOT_SCRIPT_ROUTE}?mac={_mac(mac)}"
    if profile:
        url += "&" + urlencode({"profile": profile})
    return url


def ipxe_script_url(base: str) -> str:
    """The boot file DHCP gives iPXE: its per-MAC script, with ``${net0/mac}`` expanded by iPXE itself."""
    return boot_script_url(base, IPXE_MAC)


#: the path prefix loaders are served under (for readers of the HTTP log and events)
LOADER_PREFIX = LOADER_ROUTE.removesuffix("<name>")


def loader_url(base: str, name: str) -> str:
    """``<base>/loaders/<name>``: a loader for a UEFI HTTP Boot client."""
    return f"{base}{LOADER_PREFIX}{quote(name, safe='')}"


#: the path prefix of the disk images, from the route (``/shim-grub/``)
SHIM_DISK_PREFIX = SHIM_DISK_ROUTE.removesuffix("<name>.img")


def shim_disk_url(base: str, mac: MacAddress | None) -> str:
    """``<base>/shim-grub/<mac>.img``: the disk image a UEFI HTTP Boot client on the shim-grub chain gets.

    The MAC is spelled with dashes (a plain path segment for any firmware's URI parser); None gives the
    ``any`` image, for a site's DHCP server that hands every machine one URL."""
    name = mac.colon.replace(":", "-") if mac is not None else SHIM_DISK_ANY
    return f"{base}{SHIM_DISK_PREFIX}{name}.img"


def is_shim_disk_url(url: str) -> bool:
    """Whether ``url`` is one :func:`shim_disk_url` built."""
    path = "/" + url.split("://", 1)[-1].partition("/")[2]
    return path.startswith(SHIM_DISK_PREFIX) and path.endswith(".img") and path.count("/") == 2


def tftp_files_path(profile: str, path: str) -> str:
    """``/files/<profile>/<path>``: a profile's kernel or initrd as TFTP serves it (GRUB's ``(tftp,...)``)."""
    return f"/files/{profile}/{path.lstrip('/')}"


def answer_dir_url(base: str, mac: MacAddress | str) -> str:
    """``<base>/answer/<mac>/``: the directory of a machine's answer files (no token)."""
    return f"{base}/answer/{_mac(mac)}/"


def answer_url(base: str, mac: MacAddress | str, file: str, token: str | None) -> str:
    """``<base>/answer/<mac>/<file>?token=<token>``."""
    return answer_dir_url(base, mac) + quote(file, safe="") + _token_query(token)


def nocloud_seed_url(base: str, mac: MacAddress | str, token: str | None) -> str:
    """The ``s=`` seed for cloud-init's NoCloud datasource, with ``%s`` where the file name goes.

    cloud-init appends ``user-data``/``meta-data`` to the seed, or, when the seed contains ``%s``,
    substitutes it (``%`` operator in cloud-init 22, ``str.replace`` in later ones): that keeps
    ``?token=`` after the file name. A URL that already holds ``%`` would read differently under the two,
    so it is refused; tokens are URL-safe and MAC addresses are hex, so this never happens in practice.
    """
    head, query = answer_dir_url(base, mac), _token_query(token)
    if "%" in head + query:
        raise ValueError(f"a NoCloud seed URL cannot contain '%': {head}{query}")
    return head + "%s" + query


def files_url(base: str, profile: str, path: str) -> str:
    """``<base>/files/<profile>/<path>``: a boot file served from the profile's data directory."""
    return f"{base}/files/{quote(profile, safe='')}/{quote(path, safe='/')}"


def done_url(base: str, mac: MacAddress | str, token: str | None) -> str:
    """``<base>/done/<mac>?token=<token>``: the installer's post step calls this when it has finished."""
    return f"{base}/done/{_mac(mac)}" + _token_query(token)
