"""`gomemu pagealloc replay FILE...`: replay Go's page-allocator reference vectors."""

import json

from emu.cli import inputs
from emu.textfile import read_text
from emu.cli.jsonout import document, dumps
from emu.errors import BadInput, InvariantError
from runtime_model.pagealloc import compare, replay

# Mismatches shown on a FAIL line; the rest are counted.
_SHOWN = 3


def _load(path):
    text = read_text(path, "the pagealloc vector")
    try:
        vector = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"{path}: invalid JSON: {e}") from e
    except RecursionError:          # json's decoder recurses once per nested [ or {
        raise BadInput(f"{path}: invalid JSON: nested too deeply") from None
    if not isinstance(vector, dict):
        raise BadInput(f"{path}: not a pagealloc vector (top level is not an object)")
    return vector


def _run(path, vector):
    """(name, mismatches) of one vector; any error names the file."""
    try:
        mismatches = compare(vector, replay(vector))
    except (BadInput, InvariantError) as e:
        raise type(e)(f"{path}: {e}") from e
    return f"{vector['test']}/{vector.get('case', '?')}", mismatches


def _replay_handler(args):
    # Load and replay everything first so a bad file is reported before any results.
    vectors = [(path, _load(path)) for path in args.files]
    runs = [(path, vector, *_run(path, vector)) for path, vector in vectors]
    failed = sum(1 for *_, mismatches in runs if mismatches)
    if args.json:
        print(dumps(document(
            "pagealloc-replay",
            vectors=[{"file": str(path), "name": name, "test": vector["test"], "case": vector.get("case"),
                      "pass": not mismatches, "mismatches": mismatches}
                     for path, vector, name, mismatches in runs],
            passed=len(runs) - failed,
            failed=failed,
        )))
        return 1 if failed else 0
    for _path, _vector, name, mismatches in runs:
        if mismatches:
            more = len(mismatches) - _SHOWN
            shown = "; ".join(mismatches[:_SHOWN]) + (f"; (+{more} more)" if more > 0 else "")
            print(f"FAIL {name}: {shown}")
        else:
            print(f"PASS {name}")
    print(f"{len(runs) - failed} passed, {failed} failed, {len(runs)} vectors")
    return 1 if failed else 0


def register(subparsers):
    parser = subparsers.add_parser("pagealloc", help="Go page allocator model (mpagealloc.go)")
    sub = parser.add_subparsers(dest="pagealloc_command", metavar="SUBCOMMAND")
    sub.required = True
    rp = sub.add_parser(
        "replay",
        help="replay reference vectors (tests/data/pagealloc/*.json)",
        description="Replay page-allocator vectors dumped from Go's own tests (tests/data/README.md) through "
        "the model and compare every recorded value. The exit code is 1 when any vector differs.",
    )
    rp.add_argument("files", nargs="+", type=inputs.path, metavar="FILE", help="vector JSON file")
    rp.add_argument("--json", action="store_true",
                    help="one JSON document for all files (schema gomemu.pagealloc-replay/v1, docs/json.md)")
    rp.set_defaults(handler=_replay_handler)
