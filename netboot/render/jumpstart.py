"""A structural validator for Solaris 10 JumpStart files: ``rules``, the class ``profile``, ``sysidcfg``.

Solaris checks these with its own ``check`` script on a Solaris host, which netboot cannot run. This
module knows the keywords of the three files (from the Solaris 10 "Custom JumpStart" guide) and the shape
of each line, and reports problems with their line numbers, so a typo is found before a machine sits at
an interactive sysid prompt.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterator, Mapping

from netboot.render.problem import Problem

#: rules keywords and how many values each takes
RULE_KEYWORDS: Mapping[str, int] = {
    "any": 1,
    "arch": 1,
    "disksize": 2,
    "domainname": 1,
    "hostaddress": 1,
    "hostname": 1,
    "installed": 2,
    "karch": 1,
    "memsize": 1,
    "model": 1,
    "network": 1,
    "osname": 1,
    "totaldisk": 1,
}
PROBE_KEYWORDS = (
    "arch", "disks", "domainname", "hostaddress", "hostname", "installed", "karch", "memsize", "model",
    "network", "osname", "rootdisk", "totaldisk",
)  # fmt: skip
_RANGE = re.compile(r"^\d+(-\d+)?$")

#: class-profile keywords and their minimum number of values
PROFILE_KEYWORDS: Mapping[str, int] = {
    "archive_location": 1,
    "backup_media": 2,
    "boot_device": 2,
    "bootenv": 2,
    "client_arch": 1,
    "client_root": 1,
    "client_swap": 1,
    "cluster": 1,
    "dontuse": 1,
    "fdisk": 3,
    "filesys": 2,
    "forced_deployment": 0,
    "geo": 1,
    "install_type": 1,
    "layout_constraint": 2,
    "local_customization": 1,
    "locale": 1,
    "metadb": 1,
    "no_content_check": 0,
    "no_master_check": 0,
    "num_clients": 1,
    "package": 1,
    "partitioning": 1,
    "patch": 2,
    "pool": 4,
    "root_device": 1,
    "system_type": 1,
    "usedisk": 1,
}
PROFILE_VALUES: Mapping[str, tuple[str, ...]] = {
    "install_type": ("initial_install", "upgrade", "flash_install", "flash_update"),
    "system_type": ("standalone", "server"),
    "partitioning": ("default", "existing", "explicit"),
}

#: sysidcfg keywords; the first group must be present or the installer prompts
SYSID_REQUIRED = (
    "name_service", "network_interface", "root_password", "security_policy", "system_locale", "terminal",
    "timezone", "timeserver",
)  # fmt: skip
SYSID_PROMPTS_LATER = ("nfs4_domain", "auto_reg")  # asked by Solaris 10 8/07 and 9/10 and later
SYSID_KEYWORDS = (*SYSID_REQUIRED, *SYSID_PROMPTS_LATER, "keyboard", "service_profile", "domain_name")
SYSID_VALUES: Mapping[str, tuple[str, ...]] = {
    "name_service": ("NIS", "NIS+", "DNS", "LDAP", "NONE"),
    "security_policy": ("kerberos", "NONE"),
    "service_profile": ("limited_net", "open"),
}
SYSID_SUBKEYS: Mapping[str, tuple[str, ...]] = {
    "network_interface": (
        "primary", "dhcp", "hostname", "ip_address", "netmask", "protocol_ipv6", "default_route",
    ),
    "name_service": ("domain_name", "name_server", "search", "profile", "profile_server", "proxy_dn",
                     "proxy_password"),
    "security_policy": ("default_realm", "admin_server", "kdc"),
    "auto_reg": ("oracle_user", "oracle_password", "http_proxy_host", "http_proxy_port",
                 "http_proxy_user", "http_proxy_password", "disable"),
}  # fmt: skip


def _hint(word: str, choices: tuple[str, ...] | Mapping[str, int]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _logical_lines(content: str) -> Iterator[tuple[int, list[str]]]:
    """Non-comment lines as word lists, with ``\\`` continuations joined; the first line's number."""
    lines = content.splitlines()
    i = 0
    while i < len(lines):
        start, text = i + 1, lines[i]
        while text.rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
            text = text.rstrip()[:-1] + " " + lines[i]
        i += 1
        words = text.split("#", 1)[0].split()
        if words:
            yield start, words


def check_rules(content: str, file: str = "rules") -> list[Problem]:
    """``[!]keyword value [&& [!]keyword value]... begin profile finish`` or ``probe keyword``."""
    problems: list[Problem] = []
    rules = 0
    for line, words in _logical_lines(content):

        def add(message: str, line: int = line) -> None:
            problems.append(Problem(file, line, message))

        if words[0] == "probe":
            if len(words) != 2 or words[1] not in PROBE_KEYWORDS:
                add(f"a probe line is 'probe <keyword>', keywords: {', '.join(PROBE_KEYWORDS)}")
            continue
        i = 0
        ok = True
        while True:
            if i < len(words) and words[i] == "!":
                i += 1
            if i >= len(words):
                add("a rule needs a keyword, then begin, profile and finish")
                ok = False
                break
            keyword = words[i].lstrip("!")
            if keyword not in RULE_KEYWORDS:
                add(f"unknown rule keyword {keyword!r}{_hint(keyword, RULE_KEYWORDS)}")
                ok = False
                break
            count = RULE_KEYWORDS[keyword]
            values = words[i + 1 : i + 1 + count]
            if len(values) < count:
                add(f"rule keyword {keyword!r} takes {count} value(s)")
                ok = False
                break
            if keyword == "any" and values != ["-"]:
                add("'any' takes '-' as its value")
            if keyword in ("memsize", "totaldisk") and not _RANGE.match(values[0]):
                add(f"{keyword} takes a size in MB or a range like 512-2048, not {values[0]!r}")
            if keyword == "disksize" and not _RANGE.match(values[1]):
                add(f"disksize takes a disk and a size range, not {values[1]!r}")
            i += 1 + count
            if i < len(words) and words[i] == "&&":
                i += 1
                continue
            break
        if not ok:
            continue
        rest = words[i:]
        if len(rest) != 3:
            add(f"after the rule come begin, profile and finish ('-' for none), got {len(rest)} word(s)")
            continue
        profile = rest[1]
        if profile == "-":
            add("the profile of a rule cannot be '-' (use '=' for a begin-script-derived profile)")
        rules += 1
    if rules == 0:
        problems.append(Problem(file, None, "no rule: every machine would stop and ask"))
    return problems


def check_profile(content: str, file: str = "profile") -> list[Problem]:
    """A class profile: ``install_type`` first, known keywords, enumerated values, enough arguments."""
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    first = True
    for line, words in _logical_lines(content):
        keyword, args = words[0], words[1:]
        if first and keyword != "install_type":
            problems.append(Problem(file, line, "install_type must be the first keyword of a profile"))
        first = False
        if keyword not in PROFILE_KEYWORDS:
            problems.append(
                Problem(file, line, f"unknown profile keyword {keyword!r}{_hint(keyword, PROFILE_KEYWORDS)}")
            )
            continue
        seen.setdefault(keyword, line)
        if len(args) < PROFILE_KEYWORDS[keyword]:
            problems.append(
                Problem(file, line, f"{keyword} needs at least {PROFILE_KEYWORDS[keyword]} value(s)")
            )
            continue
        allowed = PROFILE_VALUES.get(keyword)
        if allowed and args[0] not in allowed:
            problems.append(
                Problem(
                    file,
                    line,
                    f"{keyword} {args[0]!r} is not one of {', '.join(allowed)}{_hint(args[0], allowed)}",
                )
            )
        if keyword in ("cluster", "package") and len(args) > 1 and args[1] not in ("add", "delete"):
            problems.append(Problem(file, line, f"{keyword} takes 'add' or 'delete' after the name"))
    if "install_type" not in seen:
        problems.append(Problem(file, None, "missing install_type"))
    return problems


_PUNCT = frozenset({"=", "{", "}"})
_SYSID_TOKEN = re.compile(r'\s+|#[^\n]*|"[^"\n]*"|[={}]|[^\s={}#"]+')


def _sysid_tokens(content: str, file: str, problems: list[Problem]) -> Iterator[tuple[str, int]]:
    line = 1
    pos = 0
    while pos < len(content):
        m = _SYSID_TOKEN.match(content, pos)
        if m is None:  # an unterminated quote
            problems.append(Problem(file, line, "unterminated quoted value"))
            return
        text = m.group(0)
        if not text.isspace() and not text.startswith("#"):
            yield (text[1:-1] if text.startswith('"') else text), line
        line += text.count("\n")
        pos = m.end()


def check_sysidcfg(content: str, file: str = "sysidcfg") -> list[Problem]:
    """``keyword=value [{sub=value ...}]`` statements, known keywords once each, none left to prompt."""
    problems: list[Problem] = []
    tokens = list(_sysid_tokens(content, file, problems))
    seen: dict[str, int] = {}
    i = 0

    def add(line: int | None, message: str, severity: str = "error") -> None:
        problems.append(Problem(file, line, message, severity))

    while i < len(tokens):
        keyword, line = tokens[i]
        if keyword in _PUNCT:
            add(line, f"unexpected {keyword!r}: statements are keyword=value")
            i += 1
            continue
        if i + 2 >= len(tokens) or tokens[i + 1][0] != "=" or tokens[i + 2][0] in _PUNCT:
            add(line, f"{keyword!r} needs '=value'")
            i += 1
            continue
        value = tokens[i + 2][0]
        i += 3
        if keyword not in SYSID_KEYWORDS:
            add(line, f"unknown sysidcfg keyword {keyword!r}{_hint(keyword, SYSID_KEYWORDS)}")
        elif keyword in seen and keyword != "network_interface":
            add(line, f"{keyword} given twice (first on line {seen[keyword]})")
        seen.setdefault(keyword, line)
        allowed = SYSID_VALUES.get(keyword)
        if allowed and value not in allowed:
            add(line, f"{keyword}={value} is not one of {', '.join(allowed)}")
        if i < len(tokens) and tokens[i][0] == "{":
            i = _sysid_block(tokens, i + 1, keyword, line, add)
    for keyword in SYSID_REQUIRED:
        if keyword not in seen:
            add(None, f"missing {keyword}: the installer would stop and ask for it")
    for keyword in SYSID_PROMPTS_LATER:
        if keyword not in seen:
            add(None, f"missing {keyword}: Solaris 10 updates that know it would stop and ask", "warning")
    return problems


def _sysid_block(
    tokens: list[tuple[str, int]], i: int, keyword: str, line: int, add: Callable[..., None]
) -> int:
    allowed = SYSID_SUBKEYS.get(keyword, ())
    while i < len(tokens) and tokens[i][0] != "}":
        sub, sub_line = tokens[i]
        if sub in _PUNCT:
            add(sub_line, f"unexpected {sub!r} inside {keyword} {{...}}")
            i += 1
            continue
        if sub not in allowed:
            add(sub_line, f"unknown {keyword} option {sub!r}{_hint(sub, allowed)}")
        i += 1
        if i < len(tokens) and tokens[i][0] == "=":
            if i + 1 >= len(tokens) or tokens[i + 1][0] in _PUNCT:
                add(sub_line, f"{sub}= needs a value")
                i += 1
            else:
                i += 2
    if i >= len(tokens):
        add(line, f"{keyword} {{ is never closed")
        return i
    return i + 1


CHECKS: Mapping[str, Callable[[str, str], list[Problem]]] = {
    "rules": check_rules,
    "profile": check_profile,
    "sysidcfg": check_sysidcfg,
}
