// Package stores: functions with pointer stores of every shape the compiler gives a write
// barrier (and two it does not), for a test that runs each with `gomemu barrier` and checks
// what p.wbBuf holds against what the go1.27.3 compiler and runtime record (see
// tests/test_programs.py for the derivation of each).
package stores

import "unsafe"

type T struct {
	p *T
	q *int
	x int
}

type Big struct {
	a, b, c, d *int
	e, f, g, h int
}

var G T

func Global(p *int) { G.q = p }
func StoreString(dst *string, s string) { *dst = s }
func StoreIface(dst *any, v any) { *dst = v }
func StoreSlice(dst *[]*int, s []*int) { *dst = s }
func AppendNonFull(s []*int, p *int) []*int { return append(s[:1], p) }
func AppendFull(s []*int, p *int) []*int { return append(s, p) }
func Copy(dst, src []*int) int { return copy(dst, src) }
func Copy64(dst, src *Big) { *dst = *src }
func Unsafe(dst *unsafe.Pointer, p unsafe.Pointer) { *dst = p }
func Closure(p *int) func() int { return func() int { return *p } }
func MapValue(m map[int]*int, p *int) { m[1] = p }
func Scalar(t *T, n int) { t.x = n }
func NilStore(t *T) { t.p = nil }
func Five(t *T, a, b, c, d, e *T) { t.p = a; a.p = b; b.p = c; c.p = d; d.p = e }
func Swap(a, b *T) { a.p, b.p = b.p, a.p }
func Clear(t *Big) { *t = Big{} }
func Partial(t *T, p *T) { *t = T{p: p} }
func Chan(c chan *int, p *int) { c <- p }
func TwoLevel(t *T, p *int) { t.p.q = p }
