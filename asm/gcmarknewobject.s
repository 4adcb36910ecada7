// runtime/mgcmark.go: gcmarknewobject(span, obj), allocate black: mallocgc
// calls it while the GC marks (writeBarrier.enabled), so the new object is
// marked (and, with inline mark bits, scanned) and its span's page marked,
// and its size counts towards p.gcw.bytesMarked.
//
// Handwritten: a twin of go1.27.3's compiled gcmarknewobject, instruction by
// instruction where it does the work (`go tool objdump -s runtime.gcmarknewobject`
// on the runtime image); the default Machine() runs that compiled code.
// Left out: its two throws (useCheckmark, gcphase == _GCmarktermination; the
// world is running, and mark termination never allocates) and its three
// panicBounds, which no span in the heap can reach (objIndex/8 < 63 in a span
// with inline mark bits, arena indexes < 1<<arenaL2Bits). So it is a leaf
// without a frame, where Go's has one for those calls: 53 instructions for an
// object in a span with inline mark bits, where the compiled code runs 91
// (frame, NOPs, nil checks, those tests).
//
// ABIInternal: AX = span, BX = obj. Clobbers CX, DX, SI, DI.
TEXT runtime·gcmarknewobject(SB), NOSPLIT|NOFRAME, $0-16
	// objIndex := span.objIndex(obj) = uint64(obj-span.base()) * span.divMul >> 32,
	// kept as the 64-bit product in CX
	MOVQ	mspan_elemsize(AX), DX
	MOVQ	mspan_startAddr(AX), SI
	SUBQ	SI, BX
	MOVL	mspan_divMul(AX), CX
	// gcUsesSpanInlineMarkBits(span.elemsize): 16 <= elemsize <= minSizeForMallocHeader,
	// as one unsigned compare
	ADDQ	$-16, DX
	IMULQ	BX, CX
	CMPQ	DX, $(const_minSizeForMallocHeader-16)
	JHI	gcmarkbits
	// markBitsForIndex: bytep = &spanInlineMarkBitsFromBase(span.base()).marks[objIndex/8],
	// the inline mark bits at the end of the span's first page
	MOVQ	CX, DX
	SHRQ	$35, DX
	LEAQ	(const_pageSize-spanInlineMarkBits__size)(SI), BX
	LEAQ	spanInlineMarkBits_marks(BX)(DX*1), DX
	JMP	mask
gcmarkbits:
	// markBitsForIndex: bytep = span.gcmarkBits.bytep(objIndex/8)
	MOVQ	mspan_gcmarkBits(AX), BX
	MOVQ	CX, SI
	SHRQ	$35, SI
	LEAQ	(BX)(SI*1), DX
mask:
	// mask = uint8(1) << (objIndex % 8); SI keeps the product for the scanned bit
	MOVQ	CX, BX
	SHRQ	$32, BX
	ANDL	$7, BX
	MOVQ	CX, SI
	MOVQ	BX, CX
	MOVL	$1, DI
	SHLL	CX, DI
	// setMarked: atomic.Or8(bytep, mask)
	LOCK; ORB	DI, (DX)
	// if gcUsesSpanInlineMarkBits(span.elemsize) (reloaded, as Go does after the atomic)
	MOVQ	mspan_elemsize(AX), DX
	ADDQ	$-16, DX
	CMPQ	DX, $(const_minSizeForMallocHeader-16)
	JHI	page
	// span.scannedBitsForIndex(objIndex).setMarked(): the new object needs no scan
	SHRQ	$35, SI
	MOVQ	mspan_startAddr(AX), DX
	ADDQ	$(const_pageSize-spanInlineMarkBits__size+spanInlineMarkBits_scans), DX
	ADDQ	SI, DX
	LOCK; ORB	DI, (DX)
page:
	// arena, pageIdx, pageMask := pageIndexOf(span.base()):
	// arena = mheap_.arenas[0][arenaIndex(base)] (arenaL1Bits is 0 on amd64)
	MOVQ	mspan_startAddr(AX), CX
	MOVQ	runtime·mheap_+mheap_arenas(SB), DX
	MOVQ	$-const_arenaBaseOffset, BX
	ADDQ	CX, BX
	SHRQ	$const_logHeapArenaBytes, BX
	MOVQ	(DX)(BX*8), DX
	// pageIdx = ((base / pageSize) / 8) % len(arena.pageInUse)
	MOVQ	CX, BX
	SHRQ	$(const_pageShift+3), BX
	ANDL	$(const_pagesPerArena/8-1), BX
	MOVBLZX	heapArena_pageMarks(DX)(BX*1), SI
	// pageMask = byte(1 << ((base / pageSize) % 8))
	SHRQ	$const_pageShift, CX
	ANDL	$7, CX
	MOVL	$1, DI
	SHLL	CX, DI
	LEAQ	heapArena_pageMarks(DX)(BX*1), DX
	// if arena.pageMarks[pageIdx]&pageMask == 0 { atomic.Or8(&arena.pageMarks[pageIdx], pageMask) }
	TESTB	DI, SI
	JNE	marked
	LOCK; ORB	DI, (DX)
marked:
	// gcw := &getg().m.p.ptr().gcw; gcw.bytesMarked += uint64(span.elemsize)
	MOVQ	g_m(R14), CX
	MOVQ	m_p(CX), CX
	MOVQ	(p_gcw+gcWork_bytesMarked)(CX), DX
	ADDQ	mspan_elemsize(AX), DX
	MOVQ	DX, (p_gcw+gcWork_bytesMarked)(CX)
	RET
