"""Validators for rendered files: the installers' own tools where they exist, our own checks elsewhere.

Which validator checks what:

=====================  ==========================================================================
kickstart (ks.cfg)     ``ksvalidator`` from pykickstart, ``-v <validate.version>`` (default RHEL9)
preseed                ``debconf-set-selections --checkonly`` (debconf)
autoinstall user-data  ``cloud-init schema --config-file``; YAML lines; the ``autoinstall`` section's
                       keys (version 1, known sections) checked here
autoinstall meta-data  YAML mapping with ``instance-id``
autoyast               :mod:`netboot.render.autoyast` (namespace, ``<profile>`` root, sections, types)
jumpstart              :mod:`netboot.render.jumpstart` (rules/profile/sysidcfg keywords), ``sh -n``
                       for the finish script
ipxe / grub / pxelinux header and known commands (``grub-script-check`` too when installed)
=====================  ==========================================================================

External tools run as subprocesses with a timeout, on a temporary copy of the text, never on the request
path: ``netboot check`` and the tests call these. A missing tool is a *warning* naming the package to
install, so ``check`` still reports everything else.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from netboot.render import jumpstart
from netboot.render.autoyast import check_autoyast
from netboot.render.bootcheck import CHECKS as BOOT_CHECKS
from netboot.render.cloudconfig import check_meta_data, check_user_data, parse_schema_output
from netboot.render.kinds import BOOT_KINDS, KINDS
from netboot.render.problem import Problem

__all__ = ["DEFAULT_TIMEOUT", "VALIDATORS", "Problem", "find_tool", "tool_versions", "validate"]

#: How long one external validator may run.
DEFAULT_TIMEOUT = 60.0


Validator = Callable[[str, str, Mapping[str, str], float], list[Problem]]


def find_tool(name: str) -> str | None:
    """A validator executable: next to this Python first (the venv), then on PATH, then /usr/sbin."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")


def _missing(file: str, tool: str, package: str) -> list[Problem]:
    return [Problem(file, None, f"{tool} not installed ({package}); not checked", "warning")]


def run_tool(argv: list[str], content: str, file: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with ``{}`` replaced by a temporary copy of ``content`` named ``file``."""
    with tempfile.TemporaryDirectory(prefix="netboot-validate-") as tmp:
        path = Path(tmp) / (Path(file).name or "file")
        path.write_text(content, encoding="utf-8")
        args = [str(path) if a == "{}" else a for a in argv]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": tmp}
        result = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp, check=False
        )
    # messages should name the file, not our temporary copy
    result.stdout = result.stdout.replace(str(path), file)
    result.stderr = result.stderr.replace(str(path), file)
    return result


def _tool_problems(
    argv: list[str], content: str, file: str, timeout: float, parse: Callable[[str, int], list[Problem]]
) -> list[Problem]:
    try:
        result = run_tool(argv, content, file, timeout)
    except subprocess.TimeoutExpired:
        return [Problem(file, None, f"{Path(argv[0]).name} did not finish within {timeout:g}s")]
    except OSError as exc:
        return [Problem(file, None, f"cannot run {argv[0]}: {exc}")]
    return parse(result.stdout + "\n" + result.stderr, result.returncode)


_LINE = re.compile(r"\bline (\d+)|^[^:\s]+: (\d+): ")
_SEVERITY_PREFIX = re.compile(r"^(error|warning): ", re.IGNORECASE)


def _lines_with_numbers(file: str, output: str, rc: int, tool: str, skip: tuple[str, ...]) -> list[Problem]:
    """Turn tool output into problems: one per paragraph, with the first ``line N`` it mentions."""
    problems: list[Problem] = []
    paragraph: list[str] = []

    def flush() -> None:
        text = _SEVERITY_PREFIX.sub("", " ".join(paragraph).strip())
        paragraph.clear()
        if text:
            m = _LINE.search(text)
            problems.append(Problem(file, int(m.group(1) or m.group(2)) if m else None, text))

    for raw in output.splitlines():
        line = raw.strip()
        if not line or any(line.startswith(s) for s in skip):
            flush()
            continue
        paragraph.append(line)
        if not line.endswith(":"):
            flush()
    flush()
    if rc != 0 and not problems:
        problems.append(Problem(file, None, f"{tool} failed (exit {rc})"))
    return problems


# --------------------------------------------------------------------------------------- kickstart


def validate_kickstart(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
    tool = find_tool("ksvalidator")
    if tool is None:
        return _missing(file, "ksvalidator", "pip install pykickstart")
    version = options.get("version", "RHEL9")

    def parse(output: str, rc: int) -> list[Problem]:
        found = _lines_with_numbers(file, output, rc, "ksvalidator", ("Checking kickstart file",))
        # "The following problem occurred on line N ...:" is followed by the message: join them.
        joined: list[Problem] = []
        for p in found:
            if joined and joined[-1].message.endswith(":") and p.line is None:
                last = joined.pop()
                joined.append(Problem(file, last.line, f"{p.message}", "error"))
            else:
                joined.append(p)
        return [p for p in joined if not p.message.startswith("The following problem occurred")]

    return _tool_problems([tool, "-v", version, "{}"], content, file, timeout, parse)


# ----------------------------------------------------------------------------------------- preseed


def validate_preseed(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
    """debconf-set-selections parses exactly what d-i's preseeding parses (``owner question type value``,
    ``\\`` continuations) and reports unknown types and malformed lines with their numbers."""
    tool = find_tool("debconf-set-selections")
    if tool is None:
        return _missing(file, "debconf-set-selections", "apt-get install debconf")

    def parse(output: str, rc: int) -> list[Problem]:
        return _lines_with_numbers(file, output, rc, "debconf-set-selections", ())

    return _tool_problems([tool, "--checkonly", "{}"], content, file, timeout, parse)


# ------------------------------------------------------------------------------------- cloud-init


def validate_cloud_config(
    content: str, file: str, options: Mapping[str, str], timeout: float
) -> list[Problem]:
    problems, located = check_user_data(content, file)
    if located is None:  # not YAML: cloud-init would say the same, less clearly
        return problems
    tool = find_tool("cloud-init")
    if tool is None:
        return problems + _missing(file, "cloud-init schema", "apt-get install cloud-init")

    def parse(output: str, rc: int) -> list[Problem]:
        return parse_schema_output(output, rc, file, located)

    return problems + _tool_problems([tool, "schema", "--config-file", "{}"], content, file, timeout, parse)


def validate_meta_data(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
    return check_meta_data(content, file)


# --------------------------------------------------------------------------------- autoyast, jumpstart


def validate_autoyast(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
    return check_autoyast(content, file)


def _jumpstart(which: str) -> Validator:
    def check(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
        return jumpstart.CHECKS[which](content, file)

    return check


def validate_shell(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
    """``sh -n``: the finish script must at least parse."""
    problems = [] if content.startswith("#!") else [Problem(file, 1, "a script must start with '#!'")]
    tool = find_tool("sh")
    if tool is None:
        return problems + _missing(file, "sh", "apt-get install dash")

    def parse(output: str, rc: int) -> list[Problem]:
        return _lines_with_numbers(file, output, rc, "sh -n", ()) if rc else []

    return problems + _tool_problems([tool, "-n", "{}"], content, file, timeout, parse)


# ----------------------------------------------------------------------------------- boot configs


def validate_boot(kind: str) -> Validator:
    def check(content: str, file: str, options: Mapping[str, str], timeout: float) -> list[Problem]:
        problems = BOOT_CHECKS[kind](content, file)
        if kind == "grub" and not problems:
            tool = find_tool("grub-script-check")
            if tool is not None:

                def parse(output: str, rc: int) -> list[Problem]:
                    return _lines_with_numbers(file, output, rc, "grub-script-check", ()) if rc else []

                problems += _tool_problems([tool, "{}"], content, file, timeout, parse)
        return problems

    return check


VALIDATORS: Mapping[str, Validator] = {
    "kickstart": validate_kickstart,
    "preseed": validate_preseed,
    "cloud-config": validate_cloud_config,
    "nocloud-meta-data": validate_meta_data,
    "autoyast": validate_autoyast,
    "jumpstart-rules": _jumpstart("rules"),
    "jumpstart-profile": _jumpstart("profile"),
    "jumpstart-sysidcfg": _jumpstart("sysidcfg"),
    "jumpstart-finish": validate_shell,
    **{k: validate_boot(k) for k in BOOT_KINDS},
}


def validate(
    kind: str,
    content: str,
    *,
    file: str | None = None,
    options: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Problem]:
    """Check ``content`` of an answer-file ``kind`` (``file`` picks one of a multi-file kind such as
    jumpstart's ``rules``), a boot config kind (``ipxe``, ``grub``, ``pxelinux``) or a validator key.
    An empty list means it passed.
    """
    if kind in KINDS:
        answer = KINDS[kind]
        if not answer.files:
            return []
        spec = answer.file(file) if file else answer.files[0]
        if spec is None:
            raise ValueError(f"kind {kind!r} has no file {file!r}; files: {', '.join(answer.file_names)}")
        key, name = spec.validator, spec.name
    elif kind in VALIDATORS:
        key, name = kind, file or kind
    else:
        raise ValueError(f"no validator for {kind!r}")
    return VALIDATORS[key](content, name, options or {}, timeout)


def tool_versions(timeout: float = 20.0) -> dict[str, str]:
    """The versions of the external validators found here (for ``netboot check`` and reports)."""
    versions: dict[str, str] = {}
    try:
        from importlib.metadata import version

        if find_tool("ksvalidator"):
            versions["ksvalidator"] = "pykickstart " + version("pykickstart")
    except Exception:  # pykickstart may live outside this interpreter
        versions["ksvalidator"] = "installed"
    cloud_init = find_tool("cloud-init")
    if cloud_init:
        try:
            out = subprocess.run([cloud_init, "--version"], capture_output=True, text=True, timeout=timeout)
            versions["cloud-init"] = (out.stdout or out.stderr).strip().rsplit(" ", 1)[-1]
        except (OSError, subprocess.TimeoutExpired):
            versions["cloud-init"] = "installed"
    dpkg = find_tool("dpkg-query")
    if find_tool("debconf-set-selections") and dpkg:
        try:
            out = subprocess.run(
                [dpkg, "-W", "-f=${Version}", "debconf"], capture_output=True, text=True, timeout=timeout
            )
            versions["debconf-set-selections"] = "debconf " + out.stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            versions["debconf-set-selections"] = "installed"
    return versions
