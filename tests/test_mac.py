"""netboot.mac: every spelling of one MAC is one value; anything else is refused with InvalidMac."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netboot.mac import InvalidMac, MacAddress

CANONICAL = MacAddress("525400abcdef")


@pytest.mark.parametrize(
    "text",
    [
        "52:54:00:ab:cd:ef",  # colon (what netboot prints)
        "52:54:00:AB:CD:EF",  # upper case
        "52:54:00:Ab:cD:eF",  # mixed case
        "52-54-00-ab-cd-ef",  # dash (Windows)
        "52-54-00-AB-CD-EF",
        "5254.00ab.cdef",  # dot (Cisco)
        "5254.00AB.CDEF",
        "525400abcdef",  # bare
        "525400ABCDEF",
        "01-52-54-00-ab-cd-ef",  # pxelinux.cfg/ file name (ARP type 1 prefix)
        "01-52-54-00-AB-CD-EF",
        "  52:54:00:ab:cd:ef\n",  # pasted with whitespace
    ],
)
def test_spellings_parse_to_one_value(text: str) -> None:
    mac = MacAddress.parse(text)
    assert mac == CANONICAL
    assert hash(mac) == hash(CANONICAL)
    assert mac.hex == "525400abcdef"


@pytest.mark.parametrize(
    ("text", "hexdigits"),
    [
        ("52:54:0:ab:cd:ef", "525400abcdef"),  # one-digit group (as some tools print it)
        ("0:1:2:3:4:5", "000102030405"),
        ("a-b-c-d-e-f", "0a0b0c0d0e0f"),
        ("0:0:0:0:0:0", "000000000000"),
    ],
)
def test_one_digit_groups_are_zero_padded(text: str, hexdigits: str) -> None:
    assert MacAddress.parse(text).hex == hexdigits


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "52:54:00:ab:cd",  # 5 groups
        "52:54:00:ab:cd:ef:01",  # 7 groups (EUI-64 / client id with type byte)
        "01:52:54:00:ab:cd:ef",  # pxelinux prefix with colons is not the pxelinux spelling
        "02-52-54-00-ab-cd-ef",  # only ARP type 01 is a pxelinux prefix
        "52:54:00:ab:cd:eg",  # not hex
        "525400abcde",  # 11 digits
        "525400abcdef0",  # 13 digits
        "01525400abcdef",  # bare with a type byte
        "525:400:ab:cd:ef:01",  # 3-digit group
        "52:54:00:ab:cd:",  # trailing separator
        ":52:54:00:ab:cd:ef",
        "5254.00ab.cde",  # dot groups must be 4 digits
        "52540.0abc.def",
        "0x525400abcdef",
        "52 54 00 ab cd ef",
        "52::54:00:ab:cd",
        "not a mac",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(InvalidMac, match="not a MAC address"):
        MacAddress.parse(text)


def test_invalid_mac_is_a_value_error() -> None:
    """Config and CLI code catch ValueError; InvalidMac must be one."""
    with pytest.raises(ValueError):
        MacAddress.parse("zz")


def test_error_names_the_text_and_an_example() -> None:
    with pytest.raises(InvalidMac) as info:
        MacAddress.parse("52:54:00:zz:cd:ef")
    assert "'52:54:00:zz:cd:ef'" in str(info.value)
    assert "52:54:00:12:34:56" in str(info.value)


@pytest.mark.parametrize("hexdigits", ["525400ABCDEF", "52:54:00:ab:cd:ef", "525400abcde", ""])
def test_constructor_takes_only_canonical_hex(hexdigits: str) -> None:
    with pytest.raises(InvalidMac):
        MacAddress(hexdigits)


def test_renderings() -> None:
    assert CANONICAL.colon == "52:54:00:ab:cd:ef"
    assert str(CANONICAL) == "52:54:00:ab:cd:ef"
    assert CANONICAL.pxelinux == "01-52-54-00-ab-cd-ef"
    assert CANONICAL.packed == bytes.fromhex("525400abcdef")


def test_bytes() -> None:
    assert MacAddress.from_bytes(bytes.fromhex("525400abcdef")) == CANONICAL
    for bad in (b"", bytes(5), bytes(7), bytes(16)):
        with pytest.raises(InvalidMac, match="6 bytes"):
            MacAddress.from_bytes(bad)


def test_ordering_and_sets() -> None:
    low, high = MacAddress.parse("00:00:00:00:00:01"), MacAddress.parse("ff:ff:ff:ff:ff:fe")
    assert low < CANONICAL < high
    assert {MacAddress.parse("52-54-00-AB-CD-EF"), CANONICAL, MacAddress.parse("5254.00ab.cdef")} == {
        CANONICAL
    }


def test_frozen() -> None:
    with pytest.raises(AttributeError):
        CANONICAL.hex = "000000000000"  # type: ignore[misc]


@given(st.binary(min_size=6, max_size=6), st.booleans())
def test_every_rendering_parses_back(raw: bytes, upper: bool) -> None:
    mac = MacAddress.from_bytes(raw)
    spellings = [
        mac.colon,
        mac.pxelinux,
        mac.hex,
        mac.colon.replace(":", "-"),
        f"{mac.hex[0:4]}.{mac.hex[4:8]}.{mac.hex[8:12]}",
    ]
    for text in spellings:
        assert MacAddress.parse(text.upper() if upper else text) == mac
    assert MacAddress.from_bytes(mac.packed) == mac


@given(st.text(max_size=30))
def test_parse_raises_only_invalid_mac(text: str) -> None:
    try:
        mac = MacAddress.parse(text)
    except InvalidMac:
        return
    assert len(mac.packed) == 6
