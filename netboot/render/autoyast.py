"""A structural validator for AutoYaST profiles (there is no standalone upstream one to run here).

AutoYaST reads ``autoinst.xml``: a ``<profile>`` root in the ``http://www.suse.com/1.0/yast2ns``
namespace, one child element per YaST module (``general``, ``partitioning``, ``software``, ``users``,
...), and typed values marked with ``config:type`` from ``http://www.suse.com/1.0/configns``. A wrong
namespace or a ``config:type="boolean"`` holding ``yes`` makes AutoYaST stop and ask, which defeats an
unattended install; this check finds those with the line, using expat so entity declarations are refused
rather than expanded.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from xml.parsers import expat

from netboot.render.problem import Problem

YAST_NS = "http://www.suse.com/1.0/yast2ns"
CONFIG_NS = "http://www.suse.com/1.0/configns"
#: Sections an unattended install needs: no confirmation, disks, packages, a root password.
REQUIRED_SECTIONS = ("general", "partitioning", "software", "users")
#: Top-level sections of AutoYaST in openSUSE Leap 15 / SLES 15 (unknown ones are warnings).
KNOWN_SECTIONS = (
    "add-on",
    "audit-laf",
    "auth-client",
    "bootloader",
    "configuration_management",
    "deploy_image",
    "dhcp-server",
    "dns-server",
    "fcoe-client",
    "files",
    "firewall",
    "firstboot",
    "ftp-server",
    "general",
    "groups",
    "host",
    "http-server",
    "iscsi-client",
    "kdump",
    "keyboard",
    "language",
    "login_settings",
    "mail",
    "networking",
    "nfs",
    "nfs_server",
    "nis",
    "ntp-client",
    "partitioning",
    "printer",
    "proxy",
    "report",
    "samba-client",
    "scripts",
    "security",
    "services-manager",
    "software",
    "ssh_import",
    "suse_register",
    "sysconfig",
    "timezone",
    "upgrade",
    "user_defaults",
    "users",
)
CONFIG_TYPES = ("boolean", "integer", "list", "symbol")


@dataclass
class _Element:
    ns: str
    name: str
    line: int
    path: tuple[str, ...]
    config_type: str | None
    text: list[str] = field(default_factory=list)


def _split(qname: str) -> tuple[str, str]:
    ns, _, local = qname.rpartition(" ")
    return ns, local


def check_autoyast(content: str, file: str = "autoinst.xml") -> list[Problem]:
    """Problems in an AutoYaST profile; an empty list means AutoYaST would take it unattended."""
    problems: list[Problem] = []
    stack: list[_Element] = []
    sections: dict[str, int] = {}
    values: dict[tuple[str, ...], str] = {}
    parser = expat.ParserCreate(namespace_separator=" ")
    root_ok = [True]

    def add(line: int | None, message: str, severity: str = "error") -> None:
        problems.append(Problem(file, line, message, severity))

    def start(qname: str, attrs: dict[str, str]) -> None:
        ns, name = _split(qname)
        line = parser.CurrentLineNumber
        config_type = None
        for key, value in attrs.items():
            attr_ns, attr = _split(key)
            if attr_ns == CONFIG_NS and attr == "type":
                config_type = value
                if value not in CONFIG_TYPES:
                    add(line, f"<{name}> config:type {value!r} is not one of {', '.join(CONFIG_TYPES)}")
            elif attr == "type" and not attr_ns:
                add(line, f"<{name}> has 'type' without the config namespace (write config:type)")
        path = (*(e.name for e in stack), name)
        if not stack:
            if ns != YAST_NS or name != "profile":
                add(line, f'root must be <profile xmlns="{YAST_NS}">, got <{name}> in {ns or "no namespace"}')
                root_ok[0] = False
        elif ns != YAST_NS and root_ok[0]:  # one message for a wrong root namespace, not one per element
            add(line, f"<{name}> is not in the yast2 namespace {YAST_NS}")
        if len(stack) == 1:
            if name in sections:
                add(line, f"section <{name}> appears twice (first on line {sections[name]})")
            sections.setdefault(name, line)
            if name not in KNOWN_SECTIONS:
                close = difflib.get_close_matches(name, KNOWN_SECTIONS, n=1, cutoff=0.6)
                hint = f" (did you mean <{close[0]}>?)" if close else ""
                add(line, f"unknown section <{name}>{hint}", "warning" if not close else "error")
        stack.append(_Element(ns, name, line, path, config_type))

    def end(qname: str) -> None:
        element = stack.pop()
        text = "".join(element.text).strip()
        values.setdefault(element.path, text)
        if element.config_type == "boolean" and text not in ("true", "false"):
            add(element.line, f"<{element.name}> is boolean: 'true' or 'false', not {text!r}")
        if element.config_type == "integer":
            try:
                int(text)
            except ValueError:
                add(element.line, f"<{element.name}> is integer, not {text!r}")

    def chars(data: str) -> None:
        if stack:
            stack[-1].text.append(data)

    def entity(*args: object) -> None:
        add(parser.CurrentLineNumber, "entity declarations are not allowed")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.EntityDeclHandler = entity
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(content.encode("utf-8"), True)
    except expat.ExpatError as exc:
        return [
            *problems,
            Problem(file, exc.lineno, f"not well-formed XML: {expat.errors.messages[exc.code]}"),
        ]
    for name in REQUIRED_SECTIONS:
        if name not in sections:
            add(
                None, f"missing section <{name}> (an unattended install needs {', '.join(REQUIRED_SECTIONS)})"
            )
    if "general" in sections and values.get(("profile", "general", "mode", "confirm")) != "false":
        add(
            sections["general"], "general/mode/confirm is not false: the installation would wait for a person"
        )
    return problems
