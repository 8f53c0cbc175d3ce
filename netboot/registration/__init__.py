"""The one way systems are registered, changed, marked for reinstall and removed.

The web UI, the REST API and the CLI all call these functions, so a system gets the same checks and the
same audit line whichever way it came in. :mod:`netboot.registration.fields` holds the rule of each field
(every refusal a :class:`FieldError` naming it); :mod:`netboot.registration.ops` the operations, each of
which writes an audit entry (who, what, when) and an ``admin`` event on the system's timeline.
"""

from netboot.registration.fields import (
    MAX_VARIABLES_BYTES,
    SETTABLE_STATES,
    UNSET,
    Duplicate,
    FieldError,
    NotFound,
    check_boot_chain,
    check_hostname,
    check_ip,
    check_labels,
    check_local_boot,
    check_state,
    check_variables,
    parse_mac,
    parse_variables_text,
)
from netboot.registration.ops import (
    Deps,
    LineError,
    check_profile,
    get,
    load_profile_set,
    prepare,
    profiles_of,
    register,
    register_lines,
    reinstall,
    remove,
    set_fields,
)

__all__ = [
    "MAX_VARIABLES_BYTES",
    "SETTABLE_STATES",
    "UNSET",
    "Deps",
    "Duplicate",
    "FieldError",
    "LineError",
    "NotFound",
    "check_boot_chain",
    "check_hostname",
    "check_ip",
    "check_labels",
    "check_local_boot",
    "check_profile",
    "check_state",
    "check_variables",
    "get",
    "load_profile_set",
    "parse_mac",
    "parse_variables_text",
    "prepare",
    "profiles_of",
    "register",
    "register_lines",
    "reinstall",
    "remove",
    "set_fields",
]
