// gomemu's read access to the GC controller's unexported state, for the
// reference dumps of tests/data/generate.py. The generator overlays this file
// into package runtime (beside export_test.go) only while it runs the
// runtime's own tests; nothing here changes the runtime.

package runtime

// GomemuPacerState is the controller's state, keyed by the field names of
// tests/data/README.md (trace STATE). trigger and heap_goal are the two
// results of trigger().
func (c *GCController) GomemuPacerState() map[string]any {
	trigger, goal := c.trigger()
	return map[string]any{
		"heap_marked":            c.heapMarked,
		"heap_live":              c.heapLive.Load(),
		"heap_scan":              c.heapScan.Load(),
		"last_heap_scan":         c.lastHeapScan,
		"last_stack_scan":        c.lastStackScan.Load(),
		"max_stack_scan":         c.maxStackScan.Load(),
		"globals_scan":           c.globalsScan.Load(),
		"triggered":              c.triggered,
		"trigger":                trigger,
		"heap_goal":              goal,
		"gc_percent_heap_goal":   c.gcPercentHeapGoal.Load(),
		"memory_limit_heap_goal": c.memoryLimitHeapGoal(),
		"heap_minimum":           c.heapMinimum,
		"sweep_dist_min_trigger": c.sweepDistMinTrigger.Load(),
		"runway":                 c.runway.Load(),
		"cons_mark":              c.consMark,
		"last_cons_mark":         append([]float64(nil), c.lastConsMark[:]...), // a copy, not a view
		"heap_scan_work":         c.heapScanWork.Load(),
		"stack_scan_work":        c.stackScanWork.Load(),
		"globals_scan_work":      c.globalsScanWork.Load(),
		"assist_time":            c.assistTime.Load(),
		"assist_work_per_byte":   c.assistWorkPerByte.Load(),
		"assist_bytes_per_work":  c.assistBytesPerWork.Load(),
	}
}

// GomemuSweepMinHeapDistance is mgc.go's sweepMinHeapDistance, which
// export_test.go does not export.
const GomemuSweepMinHeapDistance = sweepMinHeapDistance
