"""Checks of the arguments of public entries, with one shape of BadInput message.

Every check runs before the entry changes anything, so a refused call leaves the
machine as it was.
"""

import operator

from emu.errors import BadInput

U64_MAX = (1 << 64) - 1
GO_INT_MAX = (1 << 63) - 1       # Go's int on linux/amd64


def integer(name, value, lo=0, hi=U64_MAX):
    """value as an int, if it is an integer (numpy's too; a bool is not) in lo..hi;
    else BadInput naming `name`."""
    if type(value) is not int:
        if isinstance(value, bool) or not hasattr(type(value), "__index__"):
            raise BadInput(f"{name} must be an integer, not {value!r}")
        value = operator.index(value)
    if not lo <= value <= hi:
        raise BadInput(f"{name} = {value} is outside {lo}..{hi}")
    return value


def flag(name, value):
    """value, if it is True or False."""
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be True or False, not {value!r}")
    return value


def data(name, value):
    """value, if it is bytes-like."""
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise BadInput(f"{name} must be bytes, not {type(value).__name__}")
    return value
