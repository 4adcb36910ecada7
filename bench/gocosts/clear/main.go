// Command clear times clearing 4 KiB chunks (memclrNoHeapPointers, via the range-clear idiom)
// cycling through a 128 MiB buffer against a 256 KiB one: emu/clock.py CLEAR_COLD_NS_PER_BYTE.
//
//	cd bench/gocosts && go run ./clear
package main

import (
	"fmt"
	"time"
)

//go:noinline
func clr(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

// nsPerClear clears buf 4 KiB at a time, passes times over, and returns the ns per clear.
func nsPerClear(buf []byte, passes int) float64 {
	t := time.Now()
	n := 0
	for k := 0; k < passes; k++ {
		for i := 0; i+4096 <= len(buf); i += 4096 {
			clr(buf[i : i+4096])
			n++
		}
	}
	return float64(time.Since(t).Nanoseconds()) / float64(n)
}

func main() {
	buf := make([]byte, 128<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	for rep := 0; rep < 3; rep++ {
		fmt.Printf("%.1f ns per 4 KiB clear (cold 128 MiB ring)\n", nsPerClear(buf, 4))
	}
	fmt.Printf("%.1f ns per 4 KiB clear (warm 256 KiB)\n", nsPerClear(buf[:256<<10], 2000))
}
