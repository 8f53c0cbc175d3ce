"""Issue 20 through the API and the UI: a system's one-line fields (host name, profile, labels) refuse
control characters with a 400 naming the field, never a 500 and never a stored row; variables are data
for answer files and may hold multi-line text."""

from __future__ import annotations

import pytest

from netboot.mac import MacAddress
from netboot.runtime import Runtime

from .conftest import ApiClient, WebClient

MAC = "52:54:00:12:34:56"
CONTROLS = {"lf": "\n", "cr": "\r", "esc": "\x1b", "nul": "\x00", "nel": "\x85"}


def _body(**fields: object) -> dict[str, object]:
    return {"mac": MAC, "profile": "debian12-preseed", **fields}


#: (field as the error names it, body with "{c}" where the character goes)
SYSTEM_FIELDS = [
    ("hostname", {"hostname": "web1{c}.lab"}),  # with re.match, "web1\n" passed as a label
    ("hostname", {"hostname": "web{c}1"}),
    ("profile", {"profile": "debian12-preseed{c}"}),
    ("labels", {"labels": {"rack": "r1{c}chain http://evil/x"}}),
    ("labels", {"labels": {"rack{c}": "r1"}}),
]


def _with(template: dict[str, object], char: str) -> dict[str, object]:
    def fill(value: object) -> object:
        if isinstance(value, str):
            return value.replace("{c}", char)
        if isinstance(value, dict):
            return {fill(k): fill(v) for k, v in value.items()}
        return value

    return {k: fill(v) for k, v in template.items()}


@pytest.mark.parametrize(
    ("field", "template"), SYSTEM_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(SYSTEM_FIELDS)]
)
@pytest.mark.parametrize("control", sorted(CONTROLS))
def test_register_refuses_control_characters_with_a_400_naming_the_field(
    admin_api: ApiClient, runtime: Runtime, field: str, template: dict[str, object], control: str
) -> None:
    resp = admin_api.post("/api/v1/systems", json=_body(**_with(template, CONTROLS[control])))
    assert resp.status_code == 400, resp.json
    error = resp.json["error"]
    assert error["field"] == field or error["field"].startswith(f"{field}."), error
    assert error["message"].isprintable(), error  # the character is shown escaped
    assert runtime.store.systems.list() == []


@pytest.mark.parametrize(
    ("field", "template"), SYSTEM_FIELDS, ids=[f"{f}-{i}" for i, (f, _) in enumerate(SYSTEM_FIELDS)]
)
def test_an_edit_refuses_them_too_and_changes_nothing(
    admin_api: ApiClient, runtime: Runtime, field: str, template: dict[str, object]
) -> None:
    assert (
        admin_api.post("/api/v1/systems", json=_body(hostname="web1", labels={"rack": "r1"})).status_code
        == 201
    )
    resp = admin_api.patch(f"/api/v1/systems/{MAC}", json=_with(template, "\n"))
    assert resp.status_code == 400 and resp.json["error"]["field"].split(".")[0] == field, resp.json
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None and (system.hostname, system.profile, dict(system.labels)) == (
        "web1",
        "debian12-preseed",
        {"rack": "r1"},
    )


def test_a_label_value_refusal_names_the_character(admin_api: ApiClient) -> None:
    resp = admin_api.post("/api/v1/systems", json=_body(labels={"rack": "r1\nchain http://evil/x"}))
    assert resp.status_code == 400
    assert resp.json["error"] == {
        "message": "label 'rack' must not contain control characters (newline, tab, ...): '\\n' at "
        "character 3",
        "field": "labels",
    }, resp.json


def test_variables_may_hold_multi_line_text(admin_api: ApiClient, runtime: Runtime) -> None:
    # the exemption: data for answer-file templates (a %post script, an SSH key list); the boot scripts
    # print only kernel_args and domain, filtered where the kernel line is built
    script = "echo one\necho two\n"
    resp = admin_api.post("/api/v1/systems", json=_body(vars={"post": script}))
    assert resp.status_code == 201, resp.json
    system = runtime.store.systems.get(MacAddress.parse(MAC))
    assert system is not None and system.variables["post"] == script


@pytest.mark.parametrize("hostname", ["web1\n.lab", "web\x1b1", "web1\x00"])
def test_the_form_refuses_a_host_name_with_a_control_character(
    admin: WebClient, runtime: Runtime, hostname: str
) -> None:
    admin.get("/ui/systems/new")
    resp = admin.post(
        "/ui/systems/new",
        {"mac": MAC, "profile": "debian12-preseed", "hostname": hostname, "ip": "", "vars": ""},
    )
    assert resp.status_code == 400
    assert "is not a valid host name" in resp.get_data(as_text=True)
    assert runtime.store.systems.list() == []
