"""Reading an input file gomemu was given (a Go source, a workload, a replay vector, a
pacer scenario): bounded, so /dev/zero is refused rather than read until memory runs out,
and UTF-8 checked, with BadInput naming the file, what it was read as and why not."""

from emu.errors import BadInput

MAX_TEXT_BYTES = 16 << 20       # the largest input file read (Go's largest test vector is 17 KB)


def read_text(path, what, limit=MAX_TEXT_BYTES):
    """The text of the UTF-8 file at `path`, read as `what` ("the Go source")."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise BadInput(f"{path}: cannot read {what}: {e.strerror or e}") from None
    if len(data) > limit:
        raise BadInput(f"{path}: {what} is larger than {limit} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        col = e.start - data.rfind(b"\n", 0, e.start)
        raise BadInput(f"{path}:{line}:{col}: {what} is not UTF-8 (byte {data[e.start]:#04x})") from None
