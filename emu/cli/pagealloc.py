"""`gomemu pagealloc replay FILE...`: replay Go's page-allocator reference vectors."""

import json

from emu.errors import BadInput
from runtime_model.pagealloc import compare, replay

# Mismatches shown on a FAIL line; the rest are counted.
_SHOWN = 3


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            vector = json.load(f)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror or e}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: invalid JSON: {e}") from e
    if not isinstance(vector, dict):
        raise BadInput(f"{path}: not a pagealloc vector (top level is not an object)")
    return vector


def _replay_handler(args):
    # Load everything first so a bad file is reported before any results.
    vectors = [(path, _load(path)) for path in args.files]
    failed = 0
    for path, vector in vectors:
        try:
            name = f"{vector.get('test', '?')}/{vector.get('case', '?')}"
            mismatches = compare(vector, replay(vector))
        except BadInput as e:
            raise BadInput(f"{path}: {e}") from e
        if mismatches:
            failed += 1
            more = len(mismatches) - _SHOWN
            shown = "; ".join(mismatches[:_SHOWN]) + (f"; (+{more} more)" if more > 0 else "")
            print(f"FAIL {name}: {shown}")
        else:
            print(f"PASS {name}")
    print(f"{len(vectors) - failed} passed, {failed} failed, {len(vectors)} vectors")
    return 1 if failed else 0


def register(subparsers):
    parser = subparsers.add_parser("pagealloc", help="Go page allocator model (mpagealloc.go)")
    sub = parser.add_subparsers(dest="pagealloc_command", metavar="SUBCOMMAND")
    sub.required = True
    rp = sub.add_parser("replay", help="replay reference vectors (shared/reference/pagealloc/*.json)")
    rp.add_argument("files", nargs="+", metavar="FILE", help="vector JSON file")
    rp.set_defaults(handler=_replay_handler)
