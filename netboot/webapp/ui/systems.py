"""UI pages: systems (list, register one or many, edit, reinstall, remove), discovered machines,
profiles and leases.

Each system's page and the list say which boot chain it gets (``ipxe`` or ``shim-grub``, see
:func:`netboot.profiles.boot_chain_for`) and where that comes from; the forms set or clear its own. The
page's loaders table (and the list's tooltip and "missing" badge) says what each firmware gets, from the
boot core's own DHCP answer (:func:`netboot.webapp.preview.system_loaders`).

Secret variables are ``<secret>`` on every page (the system's variables and preview, the profile's
variables, the edit form); an admin may add ``?reveal=secrets`` to a system or profile page (audited; 403
for viewers). The edit form sends back ``<secret>`` where it showed it: the stored value is kept there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from werkzeug.wrappers.response import Response as BaseResponse

from netboot import registration
from netboot.inventory import System, SystemState
from netboot.registration import FieldError, NotFound
from netboot.schema_types import BOOT_CHAIN_CHOICES
from netboot.secretvars import restore
from netboot.store.systems import SystemPage
from netboot.webapp import preview
from netboot.webapp.api import audit_reveal, event_json, reveal_asked
from netboot.webapp.auth import actor
from netboot.webapp.ui.blueprint import Page, _is_admin, _runtime, fmt_json, ui


@ui.get("/")
def index() -> BaseResponse:
    return redirect(url_for("ui.systems"))


# -------------------------------------------------------------------------------------------- systems


#: the system form's fields, as :func:`registration.register` and :func:`registration.set_fields` name them
_FORM_FIELDS = ("mac", "hostname", "profile", "ip", "vars", "boot_chain")
#: the boot chain select's help (the CLI's ``--boot-chain`` and the API say the same)
BOOT_CHAIN_HINT = (
    "ipxe: iPXE loads the boot script (no Secure Boot); shim-grub: the Microsoft-signed shim loads "
    "signed GRUB, for machines with UEFI Secure Boot on"
)


def _system_form_values(system: Any = None) -> dict[str, str]:
    if system is None:
        return {name: "" for name in _FORM_FIELDS}
    return {
        "mac": system.mac.colon,
        "hostname": system.hostname or "",
        "profile": system.profile or "",
        "ip": str(system.ip) if system.ip else "",
        "vars": fmt_json(dict(system.variables)) if system.variables else "",
        "boot_chain": system.boot_chain or "",
    }


def _form_extras(runtime: Any, system: System | None = None) -> dict[str, Any]:
    """What the system form's boot chain select needs: the choices, their help, what "inherit" gives."""
    inherited = runtime.config.boot_chain
    if system is not None:
        inherited = runtime.core.choice(replace(system, boot_chain=None)).boot_chain
    return {"chains": BOOT_CHAIN_CHOICES, "chain_hint": BOOT_CHAIN_HINT, "inherited_chain": inherited}


@dataclass(frozen=True)
class ChainShown:
    """The boot chain a system gets and the level that said it (``this system``, ``group lab`` ...)."""

    chain: str
    source: str


def _chain_of(runtime: Any, system: System) -> ChainShown:
    """The chain the boot core would pick for ``system`` now, and which of its levels set it."""
    choice = runtime.core.choice(system)
    if system.boot_chain is not None:
        source = "set on this system"
    elif choice.group is not None and choice.group.boot_chain is not None:
        source = f"from group {choice.group.name}"
    elif choice.profile is not None and choice.profile.boot_chain is not None:
        source = f"from profile {choice.profile.name}"
    else:
        source = "the site default (boot-chain)"
    return ChainShown(choice.boot_chain, source)


@dataclass(frozen=True)
class ChainCell:
    """The systems list's boot chain cell: the chain, each firmware's boot file in a line (the tooltip),
    and the files this server lacks that stop one of its firmware from booting."""

    chain: str
    summary: str
    missing: tuple[str, ...]


def _chain_cell(runtime: Any, system: System) -> ChainCell:
    rows = preview.system_loaders(runtime, system)
    summary = "; ".join(f"{r.label}: {r.boot_file or 'no boot file'}" for r in rows)
    missing = tuple(dict.fromkeys(name for r in rows for name in r.missing))
    return ChainCell(_chain_of(runtime, system).chain, summary, missing)


#: rows a list page shows unless ``?limit=`` says (at most :data:`PAGE_MAX`)
PAGE_SIZE = 50
PAGE_MAX = 500
#: the query strings a list page keeps in its previous/next links
_LIST_ARGS = ("q", "state", "profile", "limit")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    """A whole-number query string within bounds; anything else is the default (a page, not an error)."""
    try:
        return min(high, max(low, int(request.args.get(name, ""))))
    except ValueError:
        return default


def _paging() -> tuple[int, int]:
    """``(limit, offset)`` of the page asked for."""
    return _int_arg("limit", PAGE_SIZE, 1, PAGE_MAX), _int_arg("offset", 0, 0, 2**31)


@dataclass(frozen=True)
class Pager:
    """What a list page says about its page: "first-last of total" and the links to its neighbours."""

    first: int
    last: int
    total: int
    previous: str | None
    next: str | None


def _pager(page: SystemPage, endpoint: str) -> Pager:
    kept: dict[str, Any] = {k: v for k in _LIST_ARGS if (v := request.args.get(k))}
    previous = (
        url_for(endpoint, **kept, offset=max(0, page.offset - page.limit)) if page.offset > 0 else None
    )
    after = page.offset + page.limit
    following = url_for(endpoint, **kept, offset=after) if after < page.total else None
    shown = len(page.systems)
    return Pager(page.offset + 1 if shown else 0, page.offset + shown, page.total, previous, following)


@ui.get("/systems")
def systems() -> Page:
    runtime = _runtime()
    state = request.args.get("state", "")
    profile = request.args.get("profile", "")
    q = request.args.get("q", "")
    chosen = SystemState(state) if state in ("install", "installed", "local") else None
    limit, offset = _paging()
    page = runtime.store.systems.page(state=chosen, profile=profile or None, q=q, limit=limit, offset=offset)
    return render_template(
        "systems.html",
        systems=page.systems,
        chains={s.mac: _chain_cell(runtime, s) for s in page.systems},
        pager=_pager(page, "ui.systems"),
        state=state,
        profile=profile,
        q=q,
        profiles=preview.profile_names(runtime),
        discovered=runtime.store.systems.count(SystemState.DISCOVERED),
    )


@ui.route("/systems/new", methods=["GET", "POST"])
def system_new() -> Page:
    runtime = _runtime()
    profiles = preview.installer_profile_names(runtime)
    if request.method == "GET":
        values = _system_form_values()
        values["mac"] = request.args.get("mac", "")
        extras = _form_extras(runtime)
        return render_template(
            "system_form.html", mode="new", values=values, errors={}, profiles=profiles, **extras
        )
    values = {k: request.form.get(k, "") for k in _FORM_FIELDS}
    try:
        variables = registration.parse_variables_text(values["vars"])
        system = registration.register(
            runtime,
            values["mac"],
            values["profile"],
            values["hostname"] or None,
            values["ip"] or None,
            variables,
            actor(),
            boot_chain=values["boot_chain"] or None,
        )
    except FieldError as exc:
        return render_template(
            "system_form.html",
            mode="new",
            values=values,
            errors={exc.field: exc.message},
            profiles=profiles,
            **_form_extras(runtime),
        ), 400
    flash(f"Registered {system.mac} ({system.hostname or 'no host name'}) with profile {system.profile}.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.route("/systems/bulk", methods=["GET", "POST"])
def system_bulk() -> Page:
    runtime = _runtime()
    if request.method == "GET":
        return render_template("bulk.html", text="", errors=[], profiles=preview.profile_names(runtime))
    text = request.form.get("lines", "")
    done, errors = registration.register_lines(runtime, text, actor())
    if errors:
        return render_template(
            "bulk.html", text=text, errors=errors, done=done, profiles=preview.profile_names(runtime)
        ), 400
    flash(f"Registered {len(done)} system{'s' if len(done) != 1 else ''}.")
    return redirect(url_for("ui.systems"))


def _load_system(mac: str) -> Any:
    try:
        return registration.get(_runtime(), mac)
    except NotFound:
        return None
    except FieldError:
        return None


@ui.get("/systems/<mac>")
def system(mac: str) -> Page:
    runtime = _runtime()
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    reveal = reveal_asked()
    if reveal:
        audit_reveal(f"system {found.mac}", "ui system", preview.system_secret_paths(runtime, found))
    runtime.store.events.wait_idle(0.25)  # so "registered by ..." is there right after registering
    events = runtime.store.events.list(found.mac, limit=200)
    files = preview.preview_system(runtime, found, hide_token=not _is_admin(), reveal=reveal)
    profiles, _ = preview.profile_set(runtime)
    secrets = preview.system_secret_strings(runtime, found)  # a render error in the timeline may quote one
    return render_template(
        "system.html",
        system=preview.shown_system(profiles, found, reveal=reveal),
        revealed=reveal,
        events=[event_json(e, secrets) for e in events],
        last_id=events[-1].id if events else 0,
        files=files,
        chain=_chain_of(runtime, found),
        loaders=preview.system_loaders(runtime, found),
    )


@ui.route("/systems/<mac>/edit", methods=["GET", "POST"])
def system_edit(mac: str) -> Page:
    runtime = _runtime()
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    profiles = preview.installer_profile_names(runtime)
    names = preview.system_secret_names(preview.profile_set(runtime)[0], found)
    if request.method == "GET":
        shown = preview.shown_system(preview.profile_set(runtime)[0], found)
        return render_template(
            "system_form.html",
            mode="edit",
            values=_system_form_values(shown),
            errors={},
            profiles=profiles,
            system=found,
            **_form_extras(runtime, found),
        )
    values = {k: request.form.get(k, "") for k in _FORM_FIELDS if k != "mac"}
    values["mac"] = found.mac.colon
    # a form without the select (an older page, a script) keeps the system's own chain
    chain: dict[str, Any] = {}
    if "boot_chain" in request.form:
        chain["boot_chain"] = values["boot_chain"] or None
    else:
        values["boot_chain"] = found.boot_chain or ""
    try:
        variables = registration.parse_variables_text(values["vars"])
        if variables:
            variables = restore(variables, found.variables, names)
        registration.set_fields(
            runtime,
            found.mac,
            actor(),
            profile=values["profile"],
            hostname=values["hostname"] or None,
            ip=values["ip"] or None,
            variables=variables,
            **chain,
        )
    except FieldError as exc:
        return render_template(
            "system_form.html",
            mode="edit",
            values=values,
            errors={exc.field: exc.message},
            profiles=profiles,
            system=found,
            **_form_extras(runtime, found),
        ), 400
    flash(f"Saved {found.mac}.")
    return redirect(url_for("ui.system", mac=found.mac.colon))


@ui.post("/systems/<mac>/reinstall")
def system_reinstall(mac: str) -> Page:
    try:
        system = registration.reinstall(_runtime(), mac, actor())
    except FieldError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    flash(f"{system.mac} will install at its next network boot.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.post("/systems/<mac>/state")
def system_state(mac: str) -> Page:
    try:
        system = registration.set_fields(_runtime(), mac, actor(), state=request.form.get("state", ""))
    except FieldError as exc:
        return render_template("error.html", status=400, message=exc.message), 400
    flash(f"{system.mac} is now {system.state.value}.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


@ui.route("/systems/<mac>/remove", methods=["GET", "POST"])
def system_remove(mac: str) -> Page:
    found = _load_system(mac)
    if found is None:
        return render_template("error.html", status=404, message=f"No system {mac}."), 404
    if request.method == "GET":
        return render_template("confirm_remove.html", system=found)
    registration.remove(_runtime(), found.mac, actor())
    flash(f"Removed {found.mac}.")
    target = "ui.discovered" if found.state is SystemState.DISCOVERED else "ui.systems"
    return redirect(url_for(target))


# ----------------------------------------------------------------------------------------- discovered


def _discovered_page(error: str | None = None) -> str:
    """The discovered machines, the one seen last first, a page at a time."""
    runtime = _runtime()
    limit, offset = _paging()
    page = runtime.store.systems.page(state=SystemState.DISCOVERED, limit=limit, offset=offset)
    return render_template(
        "discovered.html",
        machines=page.systems,
        pager=_pager(page, "ui.discovered"),
        profiles=preview.installer_profile_names(runtime),
        error=error,
    )


@ui.get("/discovered")
def discovered() -> Page:
    return _discovered_page()


@ui.post("/discovered/<mac>/register")
def discovered_register(mac: str) -> Page:
    runtime = _runtime()
    try:
        system = registration.register(
            runtime,
            mac,
            request.form.get("profile", ""),
            request.form.get("hostname") or None,
            None,
            None,
            actor(),
        )
    except FieldError as exc:
        return _discovered_page(f"{mac}: {exc.field}: {exc.message}"), 400
    flash(f"Registered {system.mac} with profile {system.profile}: it installs at its next network boot.")
    return redirect(url_for("ui.system", mac=system.mac.colon))


# ------------------------------------------------------------------------------------------- profiles


@ui.get("/profiles")
def profiles() -> Page:
    summaries, errors = preview.profile_summaries(_runtime())  # the list shows no variables: no reveal
    return render_template("profiles.html", profiles=summaries, errors=errors)


@ui.get("/profiles/<name>")
def profile(name: str) -> Page:
    runtime = _runtime()
    reveal = reveal_asked()
    summary = preview.profile_summary(runtime, name, reveal=reveal)
    if summary is None:
        return render_template("error.html", status=404, message=f"No profile {name}."), 404
    if reveal:
        audit_reveal(f"profile {summary.name}", "ui profile", list(summary.secret_paths))
    validated = preview.profile_validate(runtime, name) if request.args.get("validate") == "1" else None
    loaded = preview.profile_set(runtime)[0].get(name)
    return render_template(
        "profile.html",
        profile=summary,
        # None: neither the profile nor a parent says (its machines get their group's or the site's)
        boot_chain=loaded.boot_chain if loaded is not None else None,
        site_boot_chain=runtime.config.boot_chain,
        validated=validated,
        revealed=reveal,
        kind_description=preview.kind_description(summary.kind),
    )


# --------------------------------------------------------------------------------------------- leases


@ui.get("/leases")
def leases() -> Page:
    runtime = _runtime()
    now = time.time()
    rows = sorted(runtime.store.leases.all(), key=lambda x: int(x.ip))
    return render_template("leases.html", leases=rows, now=now, mode=runtime.config.dhcp.mode)
