"""HeapMarker's alternative implementations mark alike: the vectorised shade and scan
(numpy, for batches) and their pure-Python twins for a few objects or values (_scan_few,
_shade_few); shade's two sorts of new objects (argsort, or packed keys for big batches:
KEY_SORT); a big scan batch's two readings of heap-bits objects' words (rows as wide as
its biggest object, or short objects' rows apart: SPLIT_ROWS). A seeded workload
(heap-bits objects, objects with malloc headers and large objects with pointers, pointer
stores while cycles mark) runs with each forced through the thresholds; every cycle must
mark the same objects (the heap and its metadata, mark and scanned bits included, byte
for byte at mark termination) with the same scan work, and the runs must end identical."""

import hashlib

import pytest

from emu import layout as L
from emu.mutator import WorkloadRun
from emu.workload import parse
from runtime_model import mgcmark
from runtime_model.mgc import Collector

# Only the live set's objects hold pointers (the pointer stores go into them): once of 512
# bytes (heap-bits rows of 64 words), once of 48 (short rows, beside garbage with longer ones)
WORKLOAD = """
name = "mark-paths"
gomaxprocs = 2
seed = 5
gogc = 20
total_allocated = "{total}"
[live]
bytes = "512KiB"
object_size = {live}
pointers = true
[[garbage]]
object_size = {{min = 8, max = 256, dist = "log"}}
weight = 1.0
[[garbage]]
object_size = {{min = 16, max = 2048, dist = "log"}}
pointers = true
pointer_writes = 1
weight = 1.0
[[garbage]]
object_size = 40000
pointers = true
weight = 0.05
"""


def heap_state(m):
    h = hashlib.sha256(m.mem.read(L.OFFHEAP.base, m.persistent_bytes()))
    for ai in m.runtime.mheap.heap_arenas:
        h.update(m.mem.read(L.HEAP_BASE + (ai - m.runtime.mheap.heap_arenas[0]) * L.HEAP_ARENA_BYTES,
                            L.HEAP_ARENA_BYTES))
    return h.hexdigest()


def run(monkeypatch, workload, few_scan, few_shade, key_sort, split_rows):
    """Per cycle at mark termination: (objects marked, scan work, heap state); and the
    run's cycle records."""
    monkeypatch.setattr(mgcmark, "FEW_SCAN", few_scan)
    monkeypatch.setattr(mgcmark, "FEW_SHADE", few_shade)
    monkeypatch.setattr(mgcmark, "KEY_SORT", key_sort)
    monkeypatch.setattr(mgcmark, "SPLIT_ROWS", split_rows)
    seen = []
    term = Collector.mark_termination

    def mark_termination(gc):
        seen.append((gc.marker.objects_marked, gc.marker.scan_work, heap_state(gc.m)))
        term(gc)

    monkeypatch.setattr(Collector, "mark_termination", mark_termination)
    r = WorkloadRun(parse(workload, "mark-paths.toml")).run()
    return seen, r.cycles


@pytest.fixture(scope="module", params=[(512, "12MiB"), (48, "6MiB")], ids=["live-512", "live-48"])
def workload(request):
    live, total = request.param
    return WORKLOAD.format(live=live, total=total)


@pytest.fixture(scope="module")
def numpy_only(workload):
    with pytest.MonkeyPatch.context() as mp:
        return run(mp, workload, 0, 0, 1 << 30, 1 << 30)


def test_the_workload_marks_through_several_cycles(numpy_only):
    per_cycle, _ = numpy_only
    assert len(per_cycle) >= 3
    assert all(objs > 0 and work > 0 for objs, work, _ in per_cycle)


@pytest.mark.parametrize("few_scan, few_shade, key_sort, split_rows", [
    (1 << 30, 1 << 30, 1 << 30, 1 << 30), (0, 0, 0, 0),
    (mgcmark.FEW_SCAN, mgcmark.FEW_SHADE, mgcmark.KEY_SORT, mgcmark.SPLIT_ROWS)],
    ids=["python-only", "key-sort-and-split-only", "default-thresholds"])
def test_each_path_marks_what_the_plain_numpy_paths_mark(monkeypatch, workload, numpy_only, few_scan, few_shade,
                                                         key_sort, split_rows):
    per_cycle, cycles = run(monkeypatch, workload, few_scan, few_shade, key_sort, split_rows)
    want_per_cycle, want_cycles = numpy_only
    assert [c[:2] for c in per_cycle] == [c[:2] for c in want_per_cycle]
    assert per_cycle == want_per_cycle
    assert cycles == want_cycles
