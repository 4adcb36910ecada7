// Package recursion: compiled recursive functions whose stacks grow, for tests that run
// them with `gomemu call` from a fresh 2 KiB goroutine stack and compare with the real
// go1.27.3 binary (results, and the number of runtime.copystack calls under callgrind).
//
// The frame sizes pick the three prologues the compiler emits (cmd/internal/obj/x86
// obj6.go stacksplit): a small frame compares SP with g.stackguard0 directly; a frame
// above StackSmall (128 B) compares SP-framesize; a frame above StackBig (4 KiB) also
// checks that SP-framesize does not wrap.
package recursion

// Small: a 16-byte frame (the return address and the saved frame pointer).
func Small(n int) int {
	if n == 0 {
		return 0
	}
	return Small(n-1) + 1
}

// KiB: a frame of about 1 KiB; a pointer to a local is passed down and read back.
func KiB(n int) int {
	var buf [120]int
	buf[0] = n
	return kib(n, &buf[0]) + buf[0] - n
}

func kib(n int, up *int) int {
	var buf [120]int
	buf[n%120] = *up
	if n == 0 {
		return buf[0]
	}
	return kib(n-1, &buf[n%120]) + *up
}

// Eight: a frame of about 8 KiB, with a pointer to the caller's local.
func Eight(n int) int {
	var x = n
	return eight(n, &x)
}

func eight(n int, p *int) int {
	var buf [1000]int
	buf[n%1000] = *p + 1
	if n == 0 {
		return buf[0]
	}
	return eight(n-1, &buf[n%1000]) + *p
}

// Hundred: a frame of about 100 KiB.
func Hundred(n int) int {
	var buf [12800]int
	buf[12799] = n
	if n == 0 {
		return 1
	}
	return Hundred(n-1) + buf[12799]
}

// Mutual: two functions calling each other, each passing a pointer to its own local.
func Mutual(n int) int {
	x := 1
	return even(n, &x)
}

func even(n int, p *int) int {
	var pad [20]int
	pad[n%20] = *p
	if n == 0 {
		return *p
	}
	return odd(n-1, &pad[n%20]) + *p
}

func odd(n int, p *int) int {
	var pad [30]int
	pad[n%30] = *p * 2
	if n == 0 {
		return *p
	}
	return even(n-1, &pad[n%30]) + 1
}

// Chain: a linked list whose nodes live in the frames of the recursion; the innermost
// call walks it back to the first (every next pointer points into the stack).
type node struct {
	next *node
	val  int
	pad  [6]int
}

func Chain(n int) int {
	return chain(n, nil)
}

func chain(n int, prev *node) int {
	nd := node{next: prev, val: n}
	if n == 0 {
		s := 0
		for p := &nd; p != nil; p = p.next {
			s += p.val
		}
		return s
	}
	return chain(n-1, &nd)
}

// Zero returns at once: the baseline of the real harness's own stack growths.
func Zero(n int) int {
	return 0
}
