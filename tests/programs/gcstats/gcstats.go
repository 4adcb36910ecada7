// Package gcstats drives the collector through Go's own API, for tests that compare
// gomemu with real runs: a live heap of 4 KiB blocks, garbage allocated against it,
// and runtime/metrics and runtime.ReadMemStats read back.
package gcstats

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const block = 4096

var (
	live [][]byte
	ptrs [][]*int
	sink []byte
	ms   runtime.MemStats
)

// The metrics of the goal identity, in this order.
var samples = []metrics.Sample{
	{Name: "/gc/heap/goal:bytes"},
	{Name: "/gc/heap/live:bytes"},
	{Name: "/gc/scan/stack:bytes"},
	{Name: "/gc/scan/globals:bytes"},
	{Name: "/gc/cycles/total:gc-cycles"},
}

// Live makes n blocks live, replacing the previous live set. Each block is written, so
// its page is resident (an untouched fresh page is not).
func Live(n int) int {
	live = make([][]byte, n)
	for i := range live {
		live[i] = make([]byte, block)
		live[i][0] = 1
	}
	return n
}

// LivePtrs adds n blocks of 512 pointers each (4 KiB the collector must scan) to the live heap.
func LivePtrs(n int) int {
	for i := 0; i < n; i++ {
		ptrs = append(ptrs, make([]*int, block/8))
	}
	return n
}

// Drop lets all but the first n live blocks die.
func Drop(n int) int {
	clear(live[n:])
	live = live[:n]
	return n
}

// Churn allocates n blocks of garbage; every 4th replaces a live block, as a churning
// heap keeps its size but not its objects.
func Churn(n int) int {
	for i := 0; i < n; i++ {
		sink = make([]byte, block)
		sink[0] = 1
		if i%4 == 0 && len(live) > 0 {
			live[i%len(live)] = sink
		}
	}
	return n
}

// Metric returns sample i after reading them all (runtime/metrics.Read).
func Metric(i int) uint64 {
	metrics.Read(samples)
	return samples[i].Value.Uint64()
}

// Cycles allocates garbage until n more GC cycles have ended, then returns the goal
// metrics of the cycle that ended last: goal, live, stack, globals.
func Cycles(n int) (uint64, uint64, uint64, uint64) {
	metrics.Read(samples)
	want := samples[4].Value.Uint64() + uint64(n)
	for samples[4].Value.Uint64() < want {
		Churn(16)
		metrics.Read(samples)
	}
	return samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64(), samples[3].Value.Uint64()
}

// MemStat returns field i of runtime.ReadMemStats: HeapAlloc, HeapSys, HeapIdle, HeapInuse,
// HeapReleased, NextGC, NumGC, Mallocs, Frees, StackInuse.
func MemStat(i int) uint64 {
	runtime.ReadMemStats(&ms)
	return [...]uint64{ms.HeapAlloc, ms.HeapSys, ms.HeapIdle, ms.HeapInuse, ms.HeapReleased, ms.NextGC,
		uint64(ms.NumGC), ms.Mallocs, ms.Frees, ms.StackInuse}[i]
}

// SetGCPercent is debug.SetGCPercent.
func SetGCPercent(p int) int { return debug.SetGCPercent(p) }

// SetMemoryLimit is debug.SetMemoryLimit.
func SetMemoryLimit(n int64) int64 { return debug.SetMemoryLimit(n) }

// FreeOSMemory is debug.FreeOSMemory.
func FreeOSMemory() int { debug.FreeOSMemory(); return 0 }

// GC is runtime.GC.
func GC() int { runtime.GC(); return 0 }
