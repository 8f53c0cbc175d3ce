"""The shapes of the REST API: request bodies, query strings and responses, as pydantic models.

The same models check what comes in (:mod:`netboot.webapp.api` validates every body and query string with
them), build what goes out, and are the OpenAPI document's schemas (:mod:`netboot.webapp.openapi`), so the
document cannot drift from the code.

The models check the form of each value (types, required and unknown keys, a MAC in any spelling, a
profile name's characters, the ``local_boot``, ``boot_chain`` and ``state`` choices) with the field types
every schema shares (:mod:`netboot.schema_types`); :mod:`netboot.registration` keeps the checks the UI
and CLI share and those that need the running server (the profile is loaded, RFC 1123 host names, a
unicast IPv4 address, 64 KiB of variables, duplicates). :func:`refusals` turns a validation error into
the API's error shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import ErrorDetails

from netboot.schema_types import BootChain, LocalBoot, Mac, ProfileName, reason_of, type_name

if TYPE_CHECKING:
    from collections.abc import Iterable

    from netboot.boot.loaders_view import LoaderRow
    from netboot.inventory import System as StoredSystem
    from netboot.store.accounts import AuditEntry as StoredAuditEntry
    from netboot.store.events import StoredEvent
    from netboot.store.leases import Lease as StoredLease

State = Literal["install", "installed", "local", "discovered"]
#: states an admin may set (``discovered`` is only ever set by a boot)
SettableState = Literal["install", "installed", "local"]

MAC_HELP = "any common spelling: 52:54:00:12:34:56, 52-54-00-12-34-56, 5254.0012.3456, 525400123456"


def _json_string(value: Any) -> Any:
    # schema_types.Mac also takes a YAML integer (an unquoted 525400123456); JSON has no such excuse
    if not isinstance(value, str):
        raise ValueError(f"expected a string such as 52:54:00:12:34:56, got {type_name(value)}")
    return value


#: a MAC in a JSON body, parsed to a MacAddress; the document shows every spelling the parser accepts
BodyMac = Annotated[
    Mac,
    BeforeValidator(_json_string),
    WithJsonSchema({"type": "string", "description": MAC_HELP, "examples": ["52:54:00:12:34:56"]}),
]
Labels = dict[str, str]
LOCAL_BOOT_HELP = (
    "how the machine boots its disk, over its group's and profile's: skip (no boot file at DHCP time), "
    "auto, exit or sanboot (iPXE hands back to the firmware); null inherits"
)
BOOT_CHAIN_HELP = (
    "which loaders the machine gets, over its group's and profile's and the site's boot-chain: "
    "ipxe: iPXE loads the boot script (no Secure Boot); shim-grub: the Microsoft-signed shim loads "
    "signed GRUB, for machines with UEFI Secure Boot on; null inherits"
)


class ApiModel(BaseModel):
    """Unknown keys are refused in bodies and never emitted in responses."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_default(schema: dict[str, Any]) -> None:
    """A PATCH key left out means "keep it", which a JSON-Schema ``default`` would misstate."""
    schema.pop("default", None)


def _keep(description: str | None = None) -> Any:
    """The default of a PATCH key: not given (``model_fields_set`` tells it from an explicit null)."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


# ------------------------------------------------------------------------------------------ bodies


class SystemCreate(ApiModel):
    """A registration. Host name and IP stay strings here: :mod:`netboot.registration` checks and
    normalises them for the UI, the CLI and the API alike (lowercased, a trailing dot dropped, empty = none).
    """

    mac: BodyMac
    profile: ProfileName = Field(description="a loaded profile's name")
    hostname: str | None = Field(None, description="RFC 1123, lowercased; empty or null for none")
    ip: str | None = Field(None, description="a unicast IPv4 address; empty or null for none")
    vars: dict[str, Any] | None = Field(None, description="variables over the profile's (at most 64 KiB)")
    labels: Labels | None = None
    local_boot: LocalBoot | None = Field(None, description=LOCAL_BOOT_HELP)
    boot_chain: BootChain | None = Field(None, description=BOOT_CHAIN_HELP)


class SystemPatch(ApiModel):
    """Only the keys given change; null clears hostname, ip, vars, labels, local_boot and boot_chain.

    A key left out holds ``None`` here whatever its type (pydantic does not check defaults), and an
    explicit null for ``profile`` or ``state`` is refused by their types; read the body only through
    :meth:`changes`, which has just the keys that were sent.
    """

    profile: ProfileName = _keep()
    hostname: str | None = _keep()
    ip: str | None = _keep()
    vars: dict[str, Any] | None = _keep()
    labels: Labels | None = _keep()
    state: SettableState = _keep("install marks it for reinstall (a fresh token)")
    local_boot: LocalBoot | None = _keep(LOCAL_BOOT_HELP)
    boot_chain: BootChain | None = _keep(BOOT_CHAIN_HELP)

    def changes(self) -> dict[str, Any]:
        """The keys that were sent, named as :func:`netboot.registration.set_fields` names them."""
        return {("variables" if k == "vars" else k): getattr(self, k) for k in self.model_fields_set}


# ----------------------------------------------------------------------------------- query strings


class Query(BaseModel):
    """Query strings: unknown parameters are ignored (cache busters), empty ones mean the default."""

    model_config = ConfigDict(extra="ignore", frozen=True)


#: rows an API list answers with when the query does not say, and at most
PAGE_DEFAULT = 100
PAGE_MAX = 1000
PAGING_HELP = (
    "Limit/offset pagination: `limit` rows (default 100, at most 1000) after skipping `offset`; the answer's "
    "`total` counts every match (in SQL), so the next page is `offset + limit` while that is below `total`."
)


class PageQuery(Query):
    """A page of a list: the query strings every list endpoint shares."""

    limit: int = Field(PAGE_DEFAULT, ge=1, le=PAGE_MAX, description="rows per page (at most 1000)")
    offset: int = Field(0, ge=0, le=2**31, description="rows to skip: 0 is the first page")


REVEAL_HELP = (
    "`secrets`: show secret variables (root password hashes, tokens: see docs/security.md) as they are "
    "instead of `<secret>`. Admin only (403 for anyone else); every reveal is written to the audit log"
)


class RevealQuery(Query):
    """``?reveal=secrets``, on every answer that carries variables."""

    reveal: Literal["secrets"] | None = Field(None, description=REVEAL_HELP)


class SystemsQuery(PageQuery, RevealQuery):
    state: State | None = Field(None, description="discovered lists unknown machines seen booting")
    profile: str | None = None
    q: str = Field("", description="substring of MAC, host name, profile, IP or state")


class DiscoveredQuery(PageQuery):
    """The discovered machines, the one seen last first."""


class EventsQuery(Query):
    since_id: int = Field(
        0, ge=0, le=2**62, description="only events with a larger id (poll with the last_id you got)"
    )
    limit: int = Field(200, ge=1, le=1000)


class LeasesQuery(Query):
    all: bool = Field(False, description="include expired and declined leases")


class AuditQuery(Query):
    limit: int = Field(100, ge=1, le=1000)
    before_id: int = Field(0, ge=0, le=2**62, description="only entries with a smaller id (0: newest)")


# --------------------------------------------------------------------------------------- responses


class Me(ApiModel):
    name: str
    role: Literal["admin", "viewer"]
    via: Literal["token", "session"]
    token: int | None = Field(description="the token's id, null when signed in with the session")


Via = Literal["tftp", "http"]


class LoaderFile(ApiModel):
    """A file a loader fetches from this server next (shim's GRUB, MokManager, fallback)."""

    name: str
    found: bool = Field(description="whether this server has it")
    package: str | None = Field(description="the Debian package that has it, when it is missing")
    always: bool = Field(description="false for what is asked only when something fails (MokManager)")


class Loader(ApiModel):
    """What one kind of firmware gets if the machine boots from the network now: the boot core's DHCP
    answer, whether its files are on this server, and what the loader fetches next."""

    firmware: Literal["bios", "uefi-x64", "uefi-x64-http", "uefi-arm64"]
    label: str = Field(examples=["UEFI x64 PXE"])
    chain: BootChain | None = Field(description="the chain serving this firmware; null: no boot file")
    boot_file: str | None = Field(description="what DHCP names: a TFTP file, or a URL for HTTP Boot")
    via: Via | None
    found: bool | None = Field(description="whether the boot file is on this server")
    then: list[LoaderFile]
    config: str | None = Field(description="the boot.ipxe script or GRUB's per-MAC grub.cfg it reads")
    config_via: Via | None
    kernel_via: Via | None = Field(description="how the kernel and initrd come; null: it loads none")
    missing: list[str] = Field(description="files this server lacks that stop this firmware booting")
    note: str | None = Field(description="why it gets nothing, what is missing, what it does instead")

    @classmethod
    def of(cls, row: LoaderRow) -> Loader:
        return cls.model_validate(
            {
                **{name: getattr(row, name) for name in cls.model_fields if name != "then"},
                "missing": list(row.missing),
                "then": [
                    LoaderFile(name=f.name, found=f.found, package=f.package, always=f.always)
                    for f in row.then
                ],
            }
        )


class System(ApiModel):
    mac: str = Field(examples=["52:54:00:12:34:56"])
    hostname: str | None
    profile: str | None
    state: State
    ip: str | None
    vars: dict[str, Any]
    labels: Labels
    arch: str | None
    uuid: str | None
    first_seen: float | None
    last_seen: float | None
    local_boot: LocalBoot | None
    #: the system's own override; null: it inherits (its group's, profile's, then the site's)
    boot_chain: BootChain | None
    loaders: list[Loader] = Field(
        description="what each firmware gets if it boots from the network now (BIOS, UEFI x64 PXE, "
        "UEFI x64 HTTP Boot, UEFI ARM64), decided as DHCP would"
    )

    @classmethod
    def of(cls, system: StoredSystem, loaders: Iterable[LoaderRow]) -> System:
        return cls.model_validate({**system.as_json(), "loaders": [Loader.of(row) for row in loaders]})


class Paged(ApiModel):
    """What every list answer says about its page."""

    total: int = Field(description="rows matching the query, on every page")
    offset: int = Field(description="rows skipped before this page")
    limit: int = Field(description="rows per page asked for (this page may have fewer: the last one)")


class SystemList(Paged):
    systems: list[System]


class Event(ApiModel):
    id: int
    time: float
    mac: str | None
    client_ip: str | None
    phase: str = Field(
        description="dhcp, tftp, http, boot-script, answer-file, install-done, discovered, admin"
    )
    summary: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, event: StoredEvent) -> Event:
        return cls(
            id=event.id,
            time=event.time,
            mac=event.mac.colon if event.mac else None,
            client_ip=event.client_ip,
            phase=event.phase,
            summary=event.summary,
            detail=dict(event.detail),
        )


class EventList(ApiModel):
    mac: str
    events: list[Event]
    last_id: int


class Rendered(ApiModel):
    name: str
    kind: str
    content: str | None
    error: str | None


class Preview(ApiModel):
    mac: str
    files: list[Rendered]


class Discovered(ApiModel):
    mac: str
    arch: str | None
    uuid: str | None
    first_seen: float | None
    last_seen: float | None

    @classmethod
    def of(cls, system: StoredSystem) -> Discovered:
        return cls(
            mac=system.mac.colon,
            arch=system.arch,
            uuid=system.uuid,
            first_seen=system.first_seen,
            last_seen=system.last_seen,
        )


class DiscoveredList(Paged):
    machines: list[Discovered]


class Profile(ApiModel):
    name: str
    kind: str
    description: str
    parent: str | None
    lineage: list[str]
    variables: dict[str, Any]
    answer_files: list[str]
    installs: bool
    ok: bool
    problems: list[str]


class ProfileList(ApiModel):
    profiles: list[Profile]
    errors: list[str] = Field(description="problems of the last profile load, file:line: reason each")


class Lease(ApiModel):
    ip: str
    mac: str
    hostname: str | None
    state: str
    starts: float
    expires: float
    active: bool

    @classmethod
    def of(cls, lease: StoredLease, now: float) -> Lease:
        return cls(
            ip=str(lease.ip),
            mac=lease.mac.colon,
            hostname=lease.hostname,
            state=lease.state,
            starts=lease.starts,
            expires=lease.expires,
            active=lease.active(now),
        )


class LeaseList(ApiModel):
    mode: str
    leases: list[Lease]


class AuditEntry(ApiModel):
    id: int
    time: float
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    ok: bool

    @classmethod
    def of(cls, entry: StoredAuditEntry) -> AuditEntry:
        return cls(
            id=entry.id,
            time=entry.time,
            actor=entry.actor,
            action=entry.action,
            target=entry.target,
            detail=entry.detail,
            ok=entry.ok,
        )


class AuditList(ApiModel):
    entries: list[AuditEntry]


class OpenApiDocument(BaseModel):
    """This document (described, not built, by this model)."""

    model_config = ConfigDict(extra="allow")


class ErrorDetail(ApiModel):
    message: str
    field: str | None = Field(description="the input at fault (its top-level key)")
    fields: dict[str, str] | None = Field(
        None, description="every refused input of a body or query string: dotted path -> reason"
    )


class Error(ApiModel):
    error: ErrorDetail


# ------------------------------------------------------------------------------------------ errors


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def _reason(err: ErrorDetails, model: type[BaseModel]) -> str:
    """One refusal in words: pydantic's message, or a better one where it has a generic one."""
    key = str(err["loc"][0]) if err["loc"] else ""
    if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
        return f"unknown field {key[:64]!r}; allowed: {', '.join(model.model_fields)}"
    if err["type"] == "missing":
        return "is required"
    message = reason_of(err)
    return message[:1].lower() + message[1:]


def refusals(exc: ValidationError, model: type[BaseModel]) -> tuple[str, str | None, dict[str, str]]:
    """A validation error as the API's error: ``(message, field, {path: reason})``.

    ``field`` is the first refused input's top-level key (what a form would highlight); ``fields`` has
    every refusal by dotted path (``labels.rack``).
    """
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        fields.setdefault(_path(err["loc"])[:128], _reason(err, model))
    first = exc.errors(include_url=False)[0]["loc"]
    field = str(first[0])[:64] if first else None
    message = "; ".join(f"{path}: {reason}" for path, reason in fields.items())
    return message, field, fields
