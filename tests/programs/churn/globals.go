//go:build globals

package main

// 8 MiB of pointer-typed globals: the collector scans them every cycle (globalsScan).
var glb [1 << 20]*byte

func touchGlobals() { glb[0] = &live[0][0] }
