// Package allocbench: benchmarks of the allocation shapes ordinary Go code has, for a test
// that runs them with `gomemu bench` and with the real `go test -bench -benchmem`.
package allocbench

import "testing"

var (
	sinkInt   *int
	sinkSmall *[6]int
	sinkScan  *scan
	sinkBytes []byte
	sinkTree  *tree
	sinkInts  []int
	sinkPtrs  []*int
	sinkList  *list
)

type scan struct {
	a, b *int
	n    [4]int
}

type tree struct {
	left, right *tree
}

type list struct {
	next *list
	val  int
}

func BenchmarkTiny(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sinkInt = new(int)
	}
}

func BenchmarkSmall(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkSmall = new([6]int)
	}
}

func BenchmarkScan(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkScan = &scan{a: sinkInt}
	}
}

func Benchmark8KiB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkBytes = make([]byte, 8<<10)
	}
}

func Benchmark1MiB(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkBytes = make([]byte, 1<<20)
	}
}

func build(depth int) *tree {
	if depth == 0 {
		return &tree{}
	}
	return &tree{build(depth - 1), build(depth - 1)}
}

func BenchmarkBinaryTree(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sinkTree = build(6)
	}
}

func BenchmarkAppendInts(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var s []int
		for j := 0; j < 100; j++ {
			s = append(s, j)
		}
		sinkInts = s
	}
}

func BenchmarkAppendPointers(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var s []*int
		for j := 0; j < 100; j++ {
			s = append(s, sinkInt)
		}
		sinkPtrs = s
	}
}

func BenchmarkLinkedList(b *testing.B) {
	for i := 0; i < b.N; i++ {
		var l *list
		for j := 0; j < 50; j++ {
			l = &list{next: l, val: j}
		}
		sinkList = l
	}
}
