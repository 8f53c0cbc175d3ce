"""Sans-IO wire codecs: bytes in, frozen dataclasses out, and back. No sockets, no logging, no clock.

Every codec raises :class:`DecodeError` (and only that) for input it cannot make sense of, so a
transport can drop a bad datagram with one ``except DecodeError`` and keep serving.
"""

from netboot.protocol.errors import DecodeError

__all__ = ["DecodeError"]
