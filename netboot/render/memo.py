"""The last render per machine and file, reused while everything it was made from is unchanged.

A render is a pure function of what it is given: the loaded profile set, the profile and group, the system
as stored, the server facts, the decision and how the machine leaves for its disk, plus one fact of the
disk, whether the profile's kernel and initrds are in its data directory (the URLs point here or at the
mirror). Templates see only that (no clock, no randomness: :mod:`netboot.render.environment`). So a machine
asking again for the same file (iPXE retrying, an installer fetching its answer file twice, cloud-init's
several fetches) is answered with the bytes already made, once every input is found the same: the profile
and group the same objects, everything else equal. A reloaded profile set has a memo of its own (the old
one goes with the old set), an edited system, another ``Host`` or a kernel put in place is a miss and a
fresh render.

Bounded at :data:`MEMO_SIZE` entries, the least recently used forgotten first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")

#: (machine, file) renders remembered at once; each is a few KiB of text
MEMO_SIZE = 2048


class RenderMemo:
    """``get_or_render(key, same, equal, render)``: ``render()``'s result, or the last one under ``key``
    when its ``same`` inputs are the same objects and its ``equal`` inputs are equal."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, tuple[tuple[object, ...], tuple[object, ...], object]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        #: answers given from the memo and renders made, for tests and benchmarks
        self.hits = 0
        self.misses = 0

    def get_or_render(
        self, key: Hashable, same: tuple[object, ...], equal: tuple[object, ...], render: Callable[[], T]
    ) -> T:
        with self._lock:
            entry = self._entries.get(key)
            if (
                entry is not None
                and len(entry[0]) == len(same)
                and all(a is b for a, b in zip(entry[0], same, strict=True))
                and entry[1] == equal
            ):
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[2]  # type: ignore[return-value]
        result = render()  # outside the lock: renders of different machines run side by side
        with self._lock:
            self.misses += 1
            self._entries[key] = (same, equal, result)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return result
