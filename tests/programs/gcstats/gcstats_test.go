package gcstats

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// TestCycles prints the goal metrics after each of $CYCLES GC cycles with $LIVE blocks live:
// "cycle <n> goal <bytes> live <bytes> stack <bytes> globals <bytes>".
func TestCycles(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LIVE"))
	cycles, _ := strconv.Atoi(os.Getenv("CYCLES"))
	Live(n)
	for i := 0; i < cycles; i++ {
		goal, live, stack, globals := Cycles(1)
		fmt.Printf("cycle %d goal %d live %d stack %d globals %d\n", Metric(4), goal, live, stack, globals)
	}
}

// TestFreeOSMemory frees a live heap of $LIVE blocks and calls debug.FreeOSMemory
// (run with GODEBUG=scavtrace=1 for the scavenger's lines).
func TestFreeOSMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LIVE"))
	Live(n)
	Churn(4 * n)
	Drop(0)
	FreeOSMemory()
	fmt.Printf("released %d idle %d\n", MemStat(4), MemStat(2))
}

// TestSettings prints the GC percent and memory limit the runtime read from GOGC and
// GOMEMLIMIT: "gogc <n> memlimit <bytes>".
func TestSettings(t *testing.T) {
	p := SetGCPercent(100)
	fmt.Printf("gogc %d memlimit %d\n", p, SetMemoryLimit(-1))
}

// TestScavTrace builds a live heap of $LIVE blocks, drops it and lets GC cycles run (run
// with GODEBUG=scavtrace=1), then frees the OS memory: the scavenger's lines, plain and forced.
func TestScavTrace(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LIVE"))
	Live(n)
	Churn(2 * n)
	Drop(0)
	Churn(2 * n)
	FreeOSMemory()
}
