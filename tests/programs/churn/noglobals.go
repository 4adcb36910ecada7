//go:build !globals

package main

func touchGlobals() {}
