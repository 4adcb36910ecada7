// Package sweepreuse allocates 2688-byte objects (make([]int, 300): three a one-page
// span) and drops each at once. After a heap-triggered GC the allocator reuses the
// full unswept spans in place (mcentral.cacheSpan sweeps them with preserve=true, so
// every free slot needs zeroing), which sets how many of the ops clear their object.
package sweepreuse

import "testing"

var sink []int

func BenchmarkMakeInts300(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink = make([]int, 300)
	}
}
