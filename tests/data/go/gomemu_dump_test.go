// gomemu's reference-data dumper. tests/data/generate.py overlays this file
// into the runtime's external tests and calls these hooks from patched copies
// of mgcpacer_test.go, mpagealloc_test.go and mgcscavenge_test.go. Every
// sub-test that passes leaves one raw record in $GOMEMU_DUMP_DIR; the
// generator turns the records into the files under tests/data/.

package runtime_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	. "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// jf is a float64 written so that it reads back as a float: the shortest
// digits that round-trip, always with a '.' or an exponent.
type jf float64

func (f jf) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, fmt.Errorf("gomemu dump: non-finite float %v", v)
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return []byte(s), nil
}

// floats replaces every float64 in a tree of maps and slices by a jf.
func floats(v any) any {
	switch x := v.(type) {
	case float64:
		return jf(x)
	case []float64:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = jf(f)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = floats(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = floats(e)
		}
		return out
	}
	return v
}

// gomemuRecord is one sub-test's record; it is written only if the sub-test passes.
type gomemuRecord struct {
	mu   sync.Mutex
	data map[string]any
}

func gomemuBegin(t *testing.T) *gomemuRecord {
	dir := os.Getenv("GOMEMU_DUMP_DIR")
	if dir == "" {
		t.Fatal("gomemu dump: GOMEMU_DUMP_DIR is not set")
	}
	test, sub, _ := strings.Cut(t.Name(), "/")
	r := &gomemuRecord{data: map[string]any{"test": test, "case": sub}}
	t.Cleanup(func() {
		if t.Failed() || t.Skipped() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		b, err := json.Marshal(floats(r.data))
		if err != nil {
			t.Errorf("gomemu dump: %v", err)
			return
		}
		name := strings.NewReplacer("/", "_div", "*", "_x").Replace(test + "__" + sub)
		if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
			t.Errorf("gomemu dump: %v", err)
		}
	})
	return r
}

func (r *gomemuRecord) set(key string, v any) {
	r.mu.Lock()
	r.data[key] = v
	r.mu.Unlock()
}

func (r *gomemuRecord) add(key string, v any) {
	r.mu.Lock()
	old, _ := r.data[key].([]any)
	r.data[key] = append(old, v)
	r.mu.Unlock()
}

// ---- TestGcPacer --------------------------------------------------------

type gomemuPacer struct {
	*gomemuRecord
	c   *GCController
	cur map[string]any // the trace entry of the running cycle
}

func gomemuPacerBegin(t *testing.T, e *gcExecTest, c *GCController, initialHeapBytes int64) *gomemuPacer {
	g := &gomemuPacer{gomemuRecord: gomemuBegin(t), c: c}
	g.set("scenario", map[string]any{
		"name":               e.name,
		"gc_percent":         e.gcPercent,
		"memory_limit":       e.memoryLimit,
		"globals_bytes":      e.globalsBytes,
		"n_cores":            e.nCores,
		"initial_heap_bytes": initialHeapBytes,
		"length":             e.length,
	})
	g.set("constants", map[string]any{
		"GCBackgroundUtilization":            GCBackgroundUtilization,
		"GCGoalUtilization":                  GCGoalUtilization,
		"DefaultHeapMinimum":                 DefaultHeapMinimum,
		"MemoryLimitHeapGoalHeadroomPercent": MemoryLimitHeapGoalHeadroomPercent,
		"MemoryLimitMinHeapGoalHeadroom":     MemoryLimitMinHeapGoalHeadroom,
		"SweepMinHeapDistance":               GomemuSweepMinHeapDistance,
		"GoVersion":                          Version(),
		"GOARCH":                             GOARCH,
	})
	return g
}

// startCycle runs right after c.StartCycle: the cycle e.next() returned, and the state.
func (g *gomemuPacer) startCycle(cy gcCycle) {
	g.add("cycles", map[string]any{
		"alloc_rate":     cy.allocRate,
		"scan_rate":      cy.scanRate,
		"growth_rate":    cy.growthRate,
		"scannable_frac": cy.scannableFrac,
		"stack_bytes":    cy.stackBytes,
	})
	g.cur = map[string]any{"after_start_cycle": g.c.GomemuPacerState(), "steps": []any{}}
}

func (g *gomemuPacer) work(nextHeapMarked, globals, stacks, heap int64) {
	g.cur["next_heap_marked"] = nextHeapMarked
	g.cur["globals_scan_work_total"] = globals
	g.cur["stack_scan_work_total"] = stacks
	g.cur["heap_scan_work_total"] = heap
}

// step runs after each c.Revise of the inner loop.
func (g *gomemuPacer) step(assistRatio, utilization float64, scanned, allocated, globals, stacks, heap int64,
	elapsed time.Duration, actualAllocated int64) {
	g.cur["steps"] = append(g.cur["steps"].([]any), []any{assistRatio, utilization, scanned, allocated,
		globals, stacks, heap, int64(elapsed), actualAllocated, g.c.AssistWorkPerByte()})
}

// result runs right after the cycle's result was appended, before EndCycle.
func (g *gomemuPacer) result(r gcCycleResult, gcDuration, assistTime, black int64, bytesMarked uint64) {
	g.add("results", map[string]any{
		"cycle":          r.cycle,
		"heap_live":      r.heapLive,
		"heap_scannable": r.heapScannable,
		"heap_trigger":   r.heapTrigger,
		"heap_peak":      r.heapPeak,
		"heap_goal":      r.heapGoal,
		"gc_utilization": r.gcUtilization,
	})
	g.cur["cycle"] = r.cycle
	g.cur["gc_duration"] = gcDuration
	g.cur["assist_time"] = assistTime
	g.cur["bytes_allocated_black"] = black
	g.cur["end_cycle_bytes_marked"] = bytesMarked
	g.cur["before_end_cycle"] = g.c.GomemuPacerState()
}

func (g *gomemuPacer) endCycle() {
	g.cur["after_end_cycle"] = g.c.GomemuPacerState()
	g.add("trace", g.cur)
}

// ---- page allocator tests -----------------------------------------------

var gomemuAllocs sync.Map // *PageAlloc under test -> *gomemuRecord

const gomemuChunkBytes = PallocChunkPages * PageSize

func gomemuPageConstants() map[string]any {
	return map[string]any{
		"PallocChunkPages": PallocChunkPages,
		"PageSize":         PageSize,
		"PallocChunkBytes": gomemuChunkBytes,
		"PhysPageSize":     PhysPageSize,
		"PhysHugePageSize": PhysHugePageSize,
		"PallocSumBytes":   PallocSumBytes,
		"PageAlloc64Bit":   PageAlloc64Bit,
		"BaseChunkIdx":     BaseChunkIdx,
		"BaseChunkAddr":    PageBase(BaseChunkIdx, 0),
		"GoVersion":        Version(),
		"GOARCH":           GOARCH,
		"GOOS":             GOOS,
	}
}

// gomemuDecl is a test table: chunk (absolute index) -> [[start, n], ...], nil for a nil map.
func gomemuDecl(m map[ChunkIdx][]BitRange) any {
	if m == nil {
		return nil
	}
	keys := make([]ChunkIdx, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := []any{}
	for _, k := range keys {
		ranges := []any{}
		for _, r := range m[k] {
			ranges = append(ranges, []any{r.I, r.N})
		}
		out = append(out, map[string]any{"chunk": k, "ranges": ranges})
	}
	return out
}

func gomemuWords(b *PallocBits) []any {
	out := make([]any, len(b))
	for i, w := range b {
		out[i] = w
	}
	return out
}

// gomemuState reads back every grown chunk's bitmaps (chunk -> 64-bit words) and inUse.
func gomemuState(p *PageAlloc) map[string]any {
	chunks, inUse := []any{}, []any{}
	for _, r := range p.InUse() {
		inUse = append(inUse, []any{r.Base(), r.Limit()})
		for a := r.Base(); a < r.Limit(); a += gomemuChunkBytes {
			ci := ChunkIdx((a - PageBase(0, 0)) / gomemuChunkBytes)
			d := p.PallocData(ci)
			chunks = append(chunks, map[string]any{"chunk": ci,
				"alloc": gomemuWords(d.PallocBits()), "scavenged": gomemuWords(d.Scavenged())})
		}
	}
	return map[string]any{"chunks": chunks, "in_use": inUse}
}

func gomemuRecordOf(p *PageAlloc) *gomemuRecord {
	r, _ := gomemuAllocs.Load(p)
	return r.(*gomemuRecord)
}

// gomemuNewPageAlloc stands in for the `b := NewPageAlloc(...)` of a test.
func gomemuNewPageAlloc(t *testing.T, chunks, scav map[ChunkIdx][]BitRange) *PageAlloc {
	p := NewPageAlloc(chunks, scav)
	r := gomemuBegin(t)
	r.set("constants", gomemuPageConstants())
	r.set("declared_initial_alloc", gomemuDecl(chunks))
	r.set("declared_initial_scav", gomemuDecl(scav))
	r.set("initial", gomemuState(p))
	r.set("ops", []any{})
	gomemuAllocs.Store(p, r)
	return p
}

// gomemuWant stands in for the `want := NewPageAlloc(...)` the test compares b with.
func gomemuWant(b *PageAlloc, chunks, scav map[ChunkIdx][]BitRange) *PageAlloc {
	w := NewPageAlloc(chunks, scav)
	r := gomemuRecordOf(b)
	r.set("declared_final_alloc", gomemuDecl(chunks))
	r.set("declared_final_scav", gomemuDecl(scav))
	r.set("want", gomemuState(w))
	return w
}

// gomemuFreePageAlloc stands in for `defer FreePageAlloc(b)`: it reads the final state first.
func gomemuFreePageAlloc(b *PageAlloc) {
	gomemuRecordOf(b).set("final", gomemuState(b))
	gomemuAllocs.Delete(b)
	FreePageAlloc(b)
}

func gomemuAlloc(b *PageAlloc, npages uintptr) (uintptr, uintptr) {
	a, s := b.Alloc(npages)
	gomemuRecordOf(b).add("ops", map[string]any{"op": "alloc", "npages": npages, "result": a, "scav_bytes": s})
	return a, s
}

func gomemuFree(b *PageAlloc, base, npages uintptr) {
	b.Free(base, npages)
	gomemuRecordOf(b).add("ops", map[string]any{"op": "free", "addr": base, "npages": npages})
}

func gomemuScavenge(b *PageAlloc, nbytes uintptr) uintptr {
	released := b.Scavenge(nbytes)
	gomemuRecordOf(b).add("ops", map[string]any{"op": "scavenge", "nbytes": nbytes, "released": released})
	return released
}

// gomemuFindScavengeCandidate stands in for b.FindScavengeCandidate in
// TestPallocDataFindScavengeCandidate, with the test case's table.
func gomemuFindScavengeCandidate(t *testing.T, alloc, scavenged []BitRange, want BitRange, b *PallocData,
	searchIdx uint, min, max uintptr) (uint, uint) {
	r := gomemuBegin(t)
	ranges := func(rs []BitRange) []any {
		out := []any{}
		for _, x := range rs {
			out = append(out, []any{x.I, x.N})
		}
		return out
	}
	r.set("constants", gomemuPageConstants())
	r.set("declared_alloc", ranges(alloc))
	r.set("declared_scavenged", ranges(scavenged))
	r.set("state", map[string]any{"alloc": gomemuWords(b.PallocBits()), "scavenged": gomemuWords(b.Scavenged())})
	start, size := b.FindScavengeCandidate(searchIdx, min, max)
	r.set("search_idx", searchIdx)
	r.set("min", min)
	r.set("max", max)
	r.set("got", []any{start, size})
	r.set("want", []any{want.I, want.N})
	return start, size
}
