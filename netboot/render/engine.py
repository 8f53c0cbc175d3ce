"""Render an answer file or a boot script for one machine, on request, in memory.

This is what the HTTP server calls per request: pick the template, build the one context, render in the
sandbox, and turn any failure into a :class:`RenderError` naming the template file and line. Nothing is
written to disk and no validator runs here (validators are for ``netboot check`` and the tests).

Jinja environments are cached per :class:`ProfileSet` and profile (weakly, so a reloaded set drops the
old ones), and each compiles a template once: a set is a snapshot of the profiles folder, and a changed
file there makes a new set (:attr:`netboot.runtime.Runtime.profiles`), so a render never stats its
templates.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError

from netboot.boot.urls import IPXE_MAC
from netboot.inventory import System
from netboot.profiles import Group, Profile, ProfileSet, boot_chain_for
from netboot.render.context import ServerFacts, boot_file_presence, build_context
from netboot.render.environment import NetbootSandbox, make_environment
from netboot.render.errors import RenderError, UnknownAnswerFile
from netboot.render.kinds import BOOT_KINDS, DECISIONS, KINDS, LOCAL_BOOT_METHODS
from netboot.render.memo import RenderMemo


@dataclass(frozen=True, slots=True)
class RenderedFile:
    """A rendered answer file, ready to send."""

    content: str
    content_type: str
    filename: str
    #: the template file it came from (for events and error messages)
    template: str


_envs: weakref.WeakKeyDictionary[ProfileSet, dict[str, NetbootSandbox]] = weakref.WeakKeyDictionary()
_envs_lock = threading.Lock()
_memos: weakref.WeakKeyDictionary[ProfileSet, RenderMemo] = weakref.WeakKeyDictionary()


def memo_for(profile_set: ProfileSet) -> RenderMemo:
    """The renders of ``profile_set``'s machines (:mod:`netboot.render.memo`); it goes with the set."""
    with _envs_lock:
        memo = _memos.get(profile_set)
        if memo is None:
            memo = _memos[profile_set] = RenderMemo()
        return memo


def environment_for(profile_set: ProfileSet, profile: Profile | None) -> NetbootSandbox:
    """The sandbox for ``profile``: its folder, its ancestors' folders, then ``_snippets``."""
    key = profile.name if profile else ""
    with _envs_lock:
        per_set = _envs.setdefault(profile_set, {})
        env = per_set.get(key)
        if env is None:
            roots = [*(profile.search_path if profile else ()), profile_set.snippets_dir]
            env = per_set[key] = make_environment(roots)
        return env


def _template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost template frame of a traceback Jinja has rewritten to point at template lines."""
    found = None
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:
            found = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def render_template(env: NetbootSandbox, name: str, context: dict[str, Any]) -> tuple[str, str]:
    """Render template ``name``; return ``(text, template file)`` or raise :class:`RenderError`."""
    try:
        template: Template = env.get_template(name)
    except TemplateSyntaxError as exc:
        raise RenderError(exc.filename or name, exc.lineno, exc.message or "syntax error") from None
    except TemplateNotFound as exc:
        raise RenderError(name, None, f"template not found: {exc.name}") from None
    filename = template.filename or name
    try:
        return template.render(context), filename
    except TemplateSyntaxError as exc:  # an included template with a syntax error
        raise RenderError(exc.filename or filename, exc.lineno, exc.message or "syntax error") from None
    except TemplateNotFound as exc:
        raise RenderError(filename, _line_of(exc.__traceback__), f"template not found: {exc.name}") from None
    except Exception as exc:  # every failure inside a template becomes one error type
        where = _template_frame(exc.__traceback__)
        file, line = where if where else (filename, None)
        reason = str(exc) or type(exc).__name__
        raise RenderError(file, line, f"{type(exc).__name__}: {reason}") from None


def _line_of(tb: TracebackType | None) -> int | None:
    where = _template_frame(tb)
    return where[1] if where else None


def render_answer(
    profile_set: ProfileSet,
    profile: Profile,
    group: Group | None,
    system: System,
    facts: ServerFacts,
    kind_file: str,
) -> RenderedFile:
    """Render ``kind_file`` (``ks.cfg``, ``user-data``, ...) of ``profile`` for ``system``.

    Raises :class:`UnknownAnswerFile` when the profile's kind has no such file (answer 404) and
    :class:`RenderError` when its template fails (answer 500 and log the message).
    """
    kind = KINDS[profile.kind]
    spec = kind.file(kind_file)
    if spec is None or kind_file not in profile.templates:
        raise UnknownAnswerFile(f"profile {profile.name!r} ({profile.kind}) has no answer file {kind_file!r}")

    def render() -> RenderedFile:
        env = environment_for(profile_set, profile)
        text, template = render_template(
            env, profile.templates[kind_file], build_context(facts, profile, group, system)
        )
        return RenderedFile(text, spec.content_type, kind_file, template)

    return memo_for(profile_set).get_or_render(
        ("answer", system.mac, kind_file),
        (profile, group),
        (system, facts, boot_file_presence(facts, profile)),
        render,
    )


def boot_template_name(kind: str, decision: str) -> str:
    """``boot/<decision>.<kind>.j2``, found in the profile's folders first, then ``_snippets``."""
    return f"boot/{decision}.{kind}.j2"


def render_boot_script(
    kind: str,
    decision: str,
    profile_set: ProfileSet,
    profile: Profile | None,
    group: Group | None,
    system: System | None,
    facts: ServerFacts,
    *,
    local_boot: str | None = None,
    boot_chain: str | None = None,
) -> str:
    """The boot configuration (iPXE script, grub.cfg, pxelinux config) for one decision.

    ``install`` needs an installer profile and a system; with a ``local``-kind profile it renders the
    local boot. ``local`` boots the disk the ``local_boot`` way (``auto``, ``exit`` or ``sanboot``): the one
    the boot core resolved from the system, its group, its profile and the site, else the profile's own.
    ``menu`` lists the menu profiles for an unknown machine (iPXE; grub and pxelinux boot local).
    ``boot_chain`` (``ipxe`` or ``shim-grub``) is the one the boot core resolved, the site's default
    included; without it, the system's, group's or profile's, else ``ipxe`` (a template may say which
    loaders the machine came through, e.g. GRUB's ``exit`` for a shim-grub local boot).
    """
    if kind not in BOOT_KINDS:
        raise ValueError(f"unknown boot config kind {kind!r}; one of {', '.join(BOOT_KINDS)}")
    if decision not in DECISIONS:
        raise ValueError(f"unknown boot decision {decision!r}; one of {', '.join(DECISIONS)}")
    if decision == "install":
        if profile is None or system is None:
            raise ValueError("an install boot script needs a profile and a system")
        if not profile.installs:
            decision = "local"
    if local_boot is None:
        own = profile.local_boot if profile else None
        local_boot = own if own in LOCAL_BOOT_METHODS else "auto"
    chain = boot_chain or boot_chain_for(system, group, profile)

    def render() -> str:
        context = build_context(facts, profile, group, system)
        context["local_boot"] = local_boot
        context["boot_chain"] = chain
        if decision == "menu":
            context["menu"] = [
                {
                    "name": p.name,
                    "description": p.description or p.name,
                    "boot_script": facts.boot_script_url(system.mac if system else IPXE_MAC, p.name),
                }
                for p in profile_set.menu_profiles()
            ]
        env = environment_for(profile_set, profile)
        text, _ = render_template(env, boot_template_name(kind, decision), context)
        return text

    return memo_for(profile_set).get_or_render(
        ("boot", kind, system.mac if system else None),
        (profile, group),
        (decision, system, facts, local_boot, chain, boot_file_presence(facts, profile)),
        render,
    )
