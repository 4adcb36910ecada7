"""Machine-readable output: every `--json` document is one JSON object that names
its schema, so a consumer can tell what it reads and which version of it.

    {"schema": "gomemu.report/v1", "gomemu": "0.1.0", "go": "go1.27.3", ...}

docs/json.md describes each schema. A change that removes or renames a field
bumps the version of that schema; adding a field does not.
"""

import json

from emu.version import GO_VERSION, GOMEMU_VERSION


def document(kind, version=1, **fields):
    """The header every --json document starts with, then the command's own fields."""
    return {"schema": f"gomemu.{kind}/v{version}", "gomemu": GOMEMU_VERSION, "go": GO_VERSION, **fields}


def dumps(doc):
    """Deterministic text: key order as built, no NaN (it is not JSON)."""
    return json.dumps(doc, allow_nan=False)
