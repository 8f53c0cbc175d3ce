"""The one error type shared by netboot's wire codecs."""


class DecodeError(ValueError):
    """The bytes are not a well-formed message of the protocol being decoded."""
