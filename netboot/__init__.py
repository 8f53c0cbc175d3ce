"""netboot: a network-install server appliance.

One daemon answers PXE and UEFI HTTP boots per MAC (DHCP or ProxyDHCP), serves loaders over TFTP and
HTTP, and renders each machine's answer file on request from its profile.
"""

__version__ = "0.1.0"
