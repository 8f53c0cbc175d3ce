"""The daemon's configuration: one YAML file, defaults for everything, CLI flags on top.

``netboot serve`` with no file works (ProxyDHCP + TFTP + HTTP on the first interface's address). A bad file
is refused at start with every problem as ``file:line: key: reason``. :mod:`.model` holds the frozen
types the rest of netboot reads, :mod:`.schema` the file's shape (pydantic) and its reading,
:mod:`.overrides` the ``netboot serve`` flags.
"""

from netboot.config.model import (
    DEBIAN_IPXE_DIR,
    DHCP_MODES,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_TFTP_LOOPS,
    Config,
    ConfigError,
    DhcpConfig,
    DnsConfig,
    HttpConfig,
    LimitsConfig,
    LoadersConfig,
    LogConfig,
    PortsConfig,
    Reservation,
    default_data_dir,
    network_of,
    problems,
    validate,
)
from netboot.config.overrides import Overrides, apply_overrides
from netboot.config.schema import ConfigFile, config_keys, load_config, parse, parse_range

__all__ = [
    "DEBIAN_IPXE_DIR",
    "DHCP_MODES",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "MAX_TFTP_LOOPS",
    "Config",
    "ConfigError",
    "ConfigFile",
    "DhcpConfig",
    "DnsConfig",
    "HttpConfig",
    "LimitsConfig",
    "LoadersConfig",
    "LogConfig",
    "Overrides",
    "PortsConfig",
    "Reservation",
    "apply_overrides",
    "config_keys",
    "default_data_dir",
    "load_config",
    "network_of",
    "parse",
    "parse_range",
    "problems",
    "validate",
]
