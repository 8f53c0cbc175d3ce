"""Rendering: profiles + one context -> answer files and boot configs, in a sandbox, on request.

The public API the daemon and CLI use:

* :func:`render_answer` -> :class:`RenderedFile` (``/answer/<mac>/<file>``)
* :func:`render_boot_script` -> str (``/boot.ipxe``, grub.cfg, pxelinux config)
* :func:`build_context` and :class:`ServerFacts` (the one context builder)
* :func:`validate` -> list of :class:`Problem` (the installers' validators; not on the request path)
* :func:`check_all` (``netboot check``)
* :class:`RenderError` (``file:line: reason``), :class:`UnknownAnswerFile` (404)
* :mod:`netboot.boot.urls`: the machine-facing URL paths
"""

from __future__ import annotations

from netboot.render.check import check_all, check_profile, sample_system
from netboot.render.context import ServerFacts, build_context
from netboot.render.engine import RenderedFile, render_answer, render_boot_script
from netboot.render.errors import RenderError, UnknownAnswerFile
from netboot.render.kinds import BOOT_KINDS, DECISIONS, KINDS
from netboot.render.problem import Problem
from netboot.render.validate import tool_versions, validate

__all__ = [
    "BOOT_KINDS",
    "DECISIONS",
    "KINDS",
    "Problem",
    "RenderError",
    "RenderedFile",
    "ServerFacts",
    "UnknownAnswerFile",
    "build_context",
    "check_all",
    "check_profile",
    "render_answer",
    "render_boot_script",
    "sample_system",
    "tool_versions",
    "validate",
]
