"""The two page-allocator implementations, as a pytest parameter: PyPageAlloc (the reference
model) and CPageAlloc (the running implementation, the C core; skipped, with the reason, where
it could not be built, and test_cpagealloc.py fails then if a compiler is on PATH)."""

import pytest

from runtime_model.cpagealloc import core_unavailable
from runtime_model.pagealloc import CPageAlloc, PyPageAlloc

C_CORE = pytest.mark.skipif(core_unavailable() is not None, reason=f"no C core: {core_unavailable()}")
IMPLS = [pytest.param(PyPageAlloc, id="py"), pytest.param(CPageAlloc, id="c", marks=C_CORE)]
