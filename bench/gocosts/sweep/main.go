// Command sweep times runtime.GC with 1,000 and 9,000 spans of 4 KiB garbage left to sweep
// (the caller sweeps them all at GOMAXPROCS=1): runtime_model/mgc.py SWEEP_NS_PER_SPAN.
//
//	cd bench/gocosts && GOMAXPROCS=1 go run ./sweep
package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"time"
)

var sink []byte
var live [][]byte

// runtime.GC's time with K spans of 4 KiB garbage (2 objects per 8 KiB span) left to sweep:
// runtime.GC marks, then the calling goroutine sweeps every span before returning.
func gcTime(k int) float64 {
	var ts []float64
	for rep := 0; rep < 15; rep++ {
		for i := 0; i < 2*k; i++ {
			sink = make([]byte, 4096)
		}
		sink = nil
		t := time.Now()
		runtime.GC()
		ts = append(ts, float64(time.Since(t).Nanoseconds()))
	}
	sort.Float64s(ts)
	return ts[len(ts)/2]
}

func main() {
	debug.SetGCPercent(-1)
	live = make([][]byte, 128)
	for i := range live {
		live[i] = make([]byte, 64<<10)
	}
	runtime.GC()
	a, b := 1000, 9000
	ta, tb := gcTime(a), gcTime(b)
	fmt.Printf("runtime.GC: %d spans %.0f ns, %d spans %.0f ns: %.0f ns per 8 KiB span of garbage\n", a, ta, b, tb, (tb-ta)/float64(b-a))
}
