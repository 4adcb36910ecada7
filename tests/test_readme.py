"""The README's Python tour runs as written."""

import contextlib
import io
import re

from tests.conftest import ROOT


def test_the_python_tour_runs():
    text = (ROOT / "README.md").read_text()
    code = re.search(r"From Python:\n\n```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue()
    assert "runtime.mallocgc+0x0" in printed and "'Mallocs': " in printed
