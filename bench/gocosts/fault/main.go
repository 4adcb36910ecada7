// Command fault times clearing 4 KiB chunks of memory that madvise(MADV_DONTNEED) has just
// released (each clear first-touches its page: a page fault, the kernel zeroing a fresh
// page) against the same clears of resident memory, in a buffer of the heap's size under a
// small memory limit (docs/real_runtime_costs.md, "Page faults"). It also times the madvise
// calls, 64 KiB at a time as the scavenger releases (mgcscavenge.py SCAVENGE_NS_PER_PHYS_PAGE).
//
//	cd bench/gocosts && go run ./fault
package main

import (
	"fmt"
	"syscall"
	"time"
)

//go:noinline
func clr(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

const size = 16 << 20

func clearAll(buf []byte) float64 {
	t := time.Now()
	for i := 0; i+4096 <= len(buf); i += 4096 {
		clr(buf[i : i+4096])
	}
	return float64(time.Since(t).Nanoseconds()) / float64(len(buf)/4096)
}

func release(buf []byte) float64 {
	t := time.Now()
	for i := 0; i < len(buf); i += 64 << 10 {
		if err := syscall.Madvise(buf[i:i+64<<10], syscall.MADV_DONTNEED); err != nil {
			panic(err)
		}
	}
	return float64(time.Since(t).Nanoseconds()) / float64(len(buf)/4096)
}

func main() {
	buf, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		panic(err)
	}
	// no transparent huge pages: the heap's scavenged memory is in 4 KiB pages
	if err := syscall.Madvise(buf, 14 /* MADV_NOHUGEPAGE */); err != nil {
		panic(err)
	}
	clearAll(buf)
	for rep := 0; rep < 5; rep++ {
		resident := clearAll(buf)
		madv := release(buf)
		faulting := clearAll(buf)
		fmt.Printf("resident %.0f ns, released %.0f ns a 4 KiB clear; madvise %.0f ns a page\n", resident, faulting, madv)
	}
}
