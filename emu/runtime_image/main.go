// The program gomemu builds once to get the Go runtime's own machine code.
//
// Nothing here runs: gomemu loads the linked binary at its linked addresses
// and calls the runtime's functions directly. The functions below only make
// the linker keep every allocation entry point the compiler calls (newobject,
// makeslice, growslice, typedslicecopy, the map and string routines, ...),
// which it would otherwise drop as dead code.
package main

import (
	"os"
	"runtime"
)

type node struct {
	next *node
	val  int
}

type big struct {
	ptrs [20000]*node
}

var (
	sinkAny    any
	sinkNode   *node
	sinkBytes  []byte
	sinkPtrs   []*node
	sinkMap    map[int]*node
	sinkStrMap map[string]int
	sinkStr    string
	sinkBig    *big
	sinkFunc   func() int
	sinkProf   func([]runtime.MemProfileRecord, bool) (int, bool)
)

//go:noinline
func entryPoints(n int, s string) {
	sinkNode = &node{val: n}                      // newobject / mallocgcSmallScanNoHeaderSC*
	sinkBig = new(big)                            // newobject of a large type (GC mask on demand)
	sinkBytes = make([]byte, n)                   // makeslice
	sinkPtrs = make([]*node, n, n+1)              // makeslice with pointers
	sinkPtrs = append(sinkPtrs, sinkNode, nil)    // growslice
	dst := make([]*node, len(sinkPtrs))           // makeslicecopy when the compiler fuses it
	copy(dst, sinkPtrs)                           // typedslicecopy
	sinkPtrs = dst
	sinkBytes = append(sinkBytes, s...)           // growslice of bytes
	if sinkMap == nil {
		sinkMap = make(map[int]*node)             // makemap
	}
	sinkMap[n] = sinkNode                         // mapassign_fast64
	sinkNode = sinkMap[n+1]                       // mapaccess1_fast64
	delete(sinkMap, n)                            // mapdelete_fast64
	if sinkStrMap == nil {
		sinkStrMap = map[string]int{}
	}
	sinkStrMap[s] = n                             // mapassign_faststr
	sinkStr = s + sinkStr                         // concatstrings
	sinkStr = string(sinkBytes)                   // slicebytetostring
	sinkBytes = []byte(sinkStr)                   // stringtoslicebyte
	sinkAny = n                                   // convT64
	sinkAny = s                                   // convTstring
	sinkAny = *sinkNode                           // convT (typedmemmove)
	*sinkNode = node{}                            // a struct clear with pointers (wbZero)
	x := sinkNode
	sinkFunc = func() int { return x.val }        // a closure
	clear(sinkPtrs)                               // memclrHasPointers
	// Reading the memory profile keeps sampling on: without it the linker sets
	// runtime.disableMemoryProfiling and schedinit sets MemProfileRate = 0.
	sinkProf = runtime.MemProfile
}

func main() {
	if len(os.Args) > 99 {
		entryPoints(len(os.Args), os.Args[0])
	}
}
