"""The one conversion of arbitrary values into plain JSON-able data.

Variables, labels and event details come from YAML, forms, the API and code; before they are stored as JSON
or handed to a template they become dict, list, str, int, float, bool and None only (other scalars as str).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def plain(value: Any) -> Any:
    """A deep copy made of dict, list, str, int, float, bool and None only (other scalars become str)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
