// Package seed: the three benchmarks of gomemu's seed text, for `gomemu bench`:
//
//	gomemu bench examples/seed
//	gomemu bench examples/seed --real     # the same binary run natively beside
//
// A tiny allocation (new(int): the tiny allocator), a small one of 8 KiB
// (new([1024]int): a small size class with pointers-free span), and a large one
// (make([]byte, 1<<20): mallocgcLarge, a span of its own from the page heap).
package seed

import "testing"

var (
	sinkInt   *int
	sinkArray *[1024]int
	sinkBytes []byte
)

func BenchmarkNewInt(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkInt = new(int)
	}
}

func BenchmarkNewArray(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkArray = new([1024]int)
	}
}

func BenchmarkMakeMiB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkBytes = make([]byte, 1<<20)
	}
}
