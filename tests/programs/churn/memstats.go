package main

import (
	"runtime"
	"runtime/metrics"
)

// Every /memory/classes/ metric, and the goal and live heap the memory limit's goal reads.
var samples = []metrics.Sample{
	{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}, {Name: "/gc/cycles/total:gc-cycles"},
	{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/released:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"}, {Name: "/memory/classes/metadata/mcache/free:bytes"},
	{Name: "/memory/classes/metadata/mcache/inuse:bytes"}, {Name: "/memory/classes/metadata/mspan/free:bytes"},
	{Name: "/memory/classes/metadata/mspan/inuse:bytes"}, {Name: "/memory/classes/metadata/other:bytes"},
	{Name: "/memory/classes/os-stacks:bytes"}, {Name: "/memory/classes/other:bytes"},
	{Name: "/memory/classes/profiling/buckets:bytes"}, {Name: "/memory/classes/total:bytes"},
}

// dumpMemStats prints one line to stderr, `memstats AT ALLOCATED name=value ...`: what
// runtime.ReadMemStats and the metrics above say at this point. The builtin print keeps
// the program's imports (and so its startup heap and profiling state) as they are
// without -memstats, but for runtime/metrics. tests/data/churn/generate.py keeps the lines.
func dumpMemStats(at string, allocated int) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	metrics.Read(samples)
	print("memstats ", at, " ", allocated, " Sys=", ms.Sys, " HeapAlloc=", ms.HeapAlloc, " HeapSys=", ms.HeapSys,
		" HeapIdle=", ms.HeapIdle, " HeapInuse=", ms.HeapInuse, " HeapReleased=", ms.HeapReleased,
		" StackInuse=", ms.StackInuse, " StackSys=", ms.StackSys, " MSpanInuse=", ms.MSpanInuse,
		" MSpanSys=", ms.MSpanSys, " MCacheInuse=", ms.MCacheInuse, " MCacheSys=", ms.MCacheSys,
		" BuckHashSys=", ms.BuckHashSys, " GCSys=", ms.GCSys, " OtherSys=", ms.OtherSys,
		" NextGC=", ms.NextGC, " NumGC=", ms.NumGC)
	for _, s := range samples {
		print(" ", s.Name, "=", s.Value.Uint64())
	}
	print("\n")
}
