"""The cycle model: the executed instruction stream scheduled on one µarch.

Input is what ran (a Stream from emu/timing/recorder.py: the blocks in the
order they executed and every data access), so branches, loops and memory
are the real ones; blocks are decoded once (capstone, emu/timing/decode.py)
and cached by (address, size).

Each instruction goes, in program order, through:
  front end  up to `dispatch_width` slots a cycle (`decode_width` for a block not
             yet in the op cache, which keeps every block decoded once); a taken branch ends the cycle's group; a
             mispredicted branch stops dispatch until it resolves plus the
             penalty; the ROB and the store buffer bound what is in flight;
  renamer    zero idioms and (where the µarch has it) register moves take no
             pipe; a macro-fused CMP/TEST+Jcc is one slot and one pipe op;
  schedule   each part (load, operation, store address, store data) issues at
             the first cycle its sources are ready on a free pipe of its form;
  memory     a load's latency is that of the cache level holding its line
             (LRU caches and DTLBs fed by the recorded addresses), or store
             forwarding from an older store to the same bytes still in the
             store buffer; two loads of a line being filled share the fill;
  retire     in order, `retire_width` a cycle; stores commit after retiring,
             one a cycle, an RFO miss delaying the commit.
Branch direction comes from a gshare table (a per-branch counter where gshare
has not seen the history yet), returns from a return stack,
indirect targets from the last target seen. All state is plain integers:
the same stream on the same µarch gives the same cycles, always.

Simplifications (also in docs/timing.md): one pass in program order rather
than a cycle-by-cycle simulation (an instruction never waits for a younger
one's pipe), one scheduler bound at most (uarch.scheduler), no i-cache or ITLB, no prefetchers,
memory renaming by a simple rule, no partial-flag merges, the predictor is not the CPU's.
"""

from dataclasses import dataclass, field

from emu.timing import decode as D
from emu.timing.cache import Hierarchy

_FENCES = {"lfence", "mfence", "rdtsc"}       # rdtsc: RDTSCP waits like LFENCE (RDTSC too, in the model)
FENCE, UNMODELLED, HAS_LOAD = 1, 2, 4
_STACK_POPS = {"ret", "pop", "leave"}   # implicit stack loads: not renamed in the model (see zen4.py)         # flags of a static instruction
RING = 1 << 13             # pipe reservations are kept for this many cycles
RMASK = RING - 1


@dataclass
class Timing:
    """What one run of the model counted."""
    uarch: str
    cycles: int = 0
    instructions: int = 0
    uops: int = 0
    loads: int = 0             # read records
    stores: int = 0            # write records
    l1d_misses: int = 0
    l2_misses: int = 0
    l3_misses: int = 0
    dtlb_misses: int = 0
    stlb_misses: int = 0
    forwarded: int = 0         # loads served by store-to-load forwarding
    forward_failed: int = 0
    renamed: int = 0           # of the forwarded: served by memory renaming (the store's data register)
    branches: int = 0
    taken: int = 0             # correctly predicted taken branches
    mispredicts: int = 0
    fused: int = 0             # macro-fused pairs
    unmodelled: dict = field(default_factory=dict)   # form "other": mnemonic -> count
    mispredicted: dict = field(default_factory=dict)  # branch address -> mispredictions
    timeline: list = None      # TimelineEntry per instruction when asked for

    def as_dict(self):
        d = {k: v for k, v in self.__dict__.items() if k != "timeline"}
        d["how"] = "modelled"
        return d


@dataclass(frozen=True)
class TimelineEntry:
    index: int
    address: int
    text: str
    dispatched: int
    issued: int
    completed: int
    retired: int


class Model:
    """A core of one µarch, its caches and predictor; `run` schedules a stream on it.

    State (caches, predictor, what is still in flight) carries over between runs,
    as it does between two calls on a real core; `drain()` empties the pipeline
    (caches and predictor stay warm), `Model(...)` anew starts cold.
    read_code(address, size) -> bytes gives the code of a block.
    """

    def __init__(self, uarch, read_code):
        self.u = uarch
        self.read_code = read_code
        self._blocks = {}
        names = sorted({p for f in uarch.forms.values() for p in f.pipes}
                       | set(uarch.load_pipes) | set(uarch.sta_pipes) | set(uarch.std_pipes))
        self._pipe = {n: i for i, n in enumerate(names)}
        self._busy = [[-1] * RING for _ in names]
        self.mem = Hierarchy(uarch)
        self._rr = [0] * D.NSLOTS                 # cycle each register slot is ready
        self._rob = [0] * uarch.rob               # retire cycle of the instruction ROB places back
        self._ri = 0
        self._rs = [0] * uarch.scheduler          # issue cycle of the instruction that many back (0: unbounded)
        self._rsi = 0
        self._sbq = [0] * uarch.store_buffer      # commit cycle of the store that many stores back
        self._si = 0
        self._sb = {}                             # 8-byte chunk -> (address, size, data ready, commit)
        self._fills = {}                          # line -> cycle its fill completes
        self._cyc = 0                             # dispatch cycle and slots used in it
        self._slots = 0
        self._rcyc = 0                            # retire cycle and slots used in it
        self._rslots = 0
        self._last_commit = 0
        self._opcache = set()
        self._btb = set()
        self._pht = bytearray(1 << uarch.pht_bits)    # gshare: 0 unused, 1..4 a 2-bit counter (3, 4: taken)
        self._tags = bytearray(1 << uarch.pht_bits)   # which branch (address bits) owns each gshare entry
        self._bim = bytearray([1]) * (1 << uarch.pht_bits)   # per-branch 2-bit counters, weakly not taken
        self._ghist = 0
        self._ras = []
        self._itarget = {}
        self.retired = 0                          # last retire cycle so far
        self._max_done = 0                        # latest completion so far (for fences)
        self._xbar = 0                            # Intel: the last LFENCE's completion (younger ops execute after)
        self._abar = 0                            # fence_queue: allocation held until this cycle (a fence)
        self._acyc, self._aslots = -1, 0          # fence_queue: allocation cycle and slots of the queued ops

    # ---- static information, per block ----------------------------------------------------
    def _block(self, addr, size):
        key = (addr, size)
        b = self._blocks.get(key)
        if b is None:
            b = self._blocks[key] = self._resolve(D.decode_block(self.read_code(addr, size), addr))
        return b

    def _resolve(self, decoded):
        u, pipe = self.u, self._pipe
        out = []
        n = len(decoded)
        fuse_prev = False
        for k, d in enumerate(decoded):
            form = u.forms[d.key]
            pipes = tuple(pipe[p] for p in form.pipes)
            lat, occ, uops = form.lat, form.occ, form.uops
            fused = fuse_prev
            fuse_prev = False
            nxt = decoded[k + 1] if k + 1 < n else None
            if nxt is not None and nxt.branch == D.COND and self._fuses(d, nxt):
                fuse_prev = True                 # this op and the Jcc after it: one op on a branch pipe
                pipes = tuple(pipe[p] for p in u.forms["jcc"].pipes)
            special = d.special
            if special == D.MOVE and not (u.vec_move_elimination if d.key == "vmov" else u.move_elimination):
                special = 0
            if special == D.FOLD:
                # folded at rename: the result is ready with its source, like an eliminated move
                special = D.MOVE if abs(d.imm) < u.imm_fold and _flags_dead(decoded, k) and \
                    not _feeds_sink(decoded, k, u.fold_sinks) else 0
            shape = d.shape
            if shape == D.RMW:
                uops += u.rmw_extra_uops
            load_extra = (u.complex_addr_extra if d.mem_index else 0) + (u.vec_load_extra if d.vector_mem else 0)
            # CALL through memory: a store (the return address) and a load (the target) first
            call_load = d.key == "call_ind" and d.records > 1
            mem_pipes = tuple(pipe[p] for p in (u.sta_pipes if shape == D.STORE and not call_load
                                                else u.load_pipes))
            flags = (FENCE if d.key in _FENCES else 0) | (UNMODELLED if d.key == "other" else 0) | \
                (HAS_LOAD if shape in (D.LOAD, D.LOADOP, D.RMW) or call_load else 0)
            out.append((shape, d.addr_srcs, d.srcs, d.dsts, lat, pipes, occ, uops, d.records, d.branch,
                        special, fused, load_extra, d.address, d.length, d.key, mem_pipes, d, flags))
        return tuple(out)

    def _fuses(self, first, jcc):
        u = self.u
        m = first.mnemonic
        if m not in u.fuse_first or first.shape not in (D.ALU, D.LOADOP):
            return False
        if first.shape == D.LOADOP and (not u.fuse_with_memory or first.has_imm):
            return False
        allowed = u.fuse_jcc.get(m)
        return allowed is None or jcc.mnemonic in allowed

    # ---- running ----------------------------------------------------------------------------
    def warm(self, address, size):
        """Bring [address, address+size) into every cache level and its pages into the TLBs,
        at no cost: for memory that code outside the stream touched (a Python slow path
        standing for Go code that would have left those lines cached)."""
        mem, shift = self.mem, self.mem.line_shift
        for line in range(address >> shift, ((address + size - 1) >> shift) + 1):
            for level in mem.levels:
                level.touch(line)
        for page in range(address >> 12, ((address + size - 1) >> 12) + 1):
            for t in mem.tlbs:
                t.touch(page)

    def drain(self):
        """Let everything in flight retire: the next run starts on an empty pipeline."""
        self._cyc = max(self._cyc, self.retired)
        self._slots = 0

    def run(self, stream, timeline=False):
        """Schedule `stream`; returns a Timing whose cycles are those from the previous
        run's last retirement (or cycle 0) to this run's last retirement."""
        u = self.u
        t = Timing(u.name)
        tl = [] if timeline else None
        start = self.retired
        mem = self.mem
        miss0 = list(mem.misses)
        tlb0 = list(mem.tlb_misses)
        rr, busy, rob, sbq, sb, fills = self._rr, self._busy, self._rob, self._sbq, self._sb, self._fills
        opcache, btb, pht, ras, itarget = self._opcache, self._btb, self._pht, self._ras, self._itarget
        bim, tags = self._bim, self._tags
        width, dwidth, rwidth = u.dispatch_width, u.decode_width, u.retire_width
        nrob, nsb = len(rob), len(sbq)
        rs, rsi, nrs = self._rs, self._rsi, len(self._rs)
        l1lat = mem.latency[0]
        lat_of = mem.latency
        line_shift = mem.line_shift
        stlf, stlf_fail = u.stlf_latency, u.stlf_fail_penalty
        sta_lat = u.store_address_latency
        penalty, btb_pen, bubble = u.mispredict_penalty, u.btb_miss_penalty, u.taken_bubble
        std_pipes = tuple(self._pipe[p] for p in u.std_pipes)
        sta_pipes = tuple(self._pipe[p] for p in u.sta_pipes)
        pht_mask = len(pht) - 1
        hist_mask = (1 << u.ghist_bits) - 1
        ras_max = u.ras
        line_level, tlb = mem.line_level, mem.tlb
        l1sets, l1n = mem.levels[0].sets, mem.levels[0].nsets
        last_line = last_page = -1        # the most recent line and page: already most recently used
        cyc, slots, rcyc, rslots = self._cyc, self._slots, self._rcyc, self._rslots
        ri, si, ghist, last_commit = self._ri, self._si, self._ghist, self._last_commit
        last_retire = self.retired
        max_done = self._max_done
        xbar = self._xbar
        fence_retire, fq = u.fence_until_retired, u.fence_queue
        abar, acyc, aslots = self._abar, self._acyc, self._aslots
        ninsn = nuops = nbr = nmis = nfused = nfwd = nfail = nld = nst = ntaken = nren = 0
        mren, rsizes = u.memory_renaming, u.renamed_sizes
        unmodelled = t.unmodelled
        mispredicted = t.mispredicted

        baddr, bsize, rstart = stream.block_addr, stream.block_size, stream.rec_start
        raddr, rmeta = stream.rec_addr, stream.rec_meta
        nblocks = len(baddr)
        b = 0
        prev_done = 0
        while b < nblocks:
            insns = self._block(baddr[b], bsize[b])
            rp = rstart[b]
            rend = rstart[b + 1]
            nxt_block = baddr[b + 1] if b + 1 < nblocks else None
            last = len(insns) - 1
            key = (baddr[b], bsize[b])
            if key in opcache:               # decoded before: the op cache delivers it
                w = width
            else:
                w = dwidth
                opcache.add(key)
            for k, ins in enumerate(insns):
                (shape, asrcs, srcs, dsts, lat, pipes, occ, uops, nrec, br, special, fused, load_extra,
                 pc, length, key, mem_pipes, dec, flags) = ins
                ninsn += 1
                if fused:
                    nfused += 1
                    done = prev_done
                    d = cyc
                    issued = done
                else:
                    # ---- front end
                    if slots + uops > w:
                        cyc += 1
                        slots = 0
                    old = rob[ri]
                    if old > cyc:
                        cyc, slots = old, 0
                    if nrs:                      # a scheduler entry: freed when that many back has issued
                        old = rs[rsi]
                        if old > cyc:
                            cyc, slots = old, 0
                    fence_wait = 0
                    if flags & FENCE:            # waits for every older instruction to complete
                        f = max_done if key != "mfence" or max_done > last_commit else last_commit
                        if fence_retire:         # AMD: dispatch serializing
                            if last_retire > f:
                                f = last_retire
                            if fq:
                                if f > abar:
                                    abar = f
                            elif f > cyc:
                                cyc, slots = f, 0
                        else:                    # Intel: it executes then, younger ones are dispatched meanwhile
                            fence_wait = f
                    if nrec and shape != D.LOAD:
                        old = sbq[si]
                        if old > cyc:
                            cyc, slots = old, 0
                    d = cyc
                    slots += uops
                    nuops += uops
                    if fq and (d < abar or d <= acyc):
                        # fetched while a fence holds allocation: queued, then allocated `width` a cycle
                        if acyc < abar:
                            acyc, aslots = abar, 0
                        if aslots + uops > width:
                            acyc += 1
                            aslots = 0
                        aslots += uops
                        d = acyc
                    ready = d + 1
                    if xbar > ready:             # Intel: nothing younger than an LFENCE executes before it completes
                        ready = xbar
                    if fence_wait > ready:
                        ready = fence_wait
                    if flags & UNMODELLED:
                        unmodelled[dec.mnemonic] = unmodelled.get(dec.mnemonic, 0) + 1

                    # ---- records of this instruction
                    store_recs = None
                    ld_done = 0
                    if nrec:
                        if nrec < 0:             # REP string: this block's rest and its repeats
                            while b + 1 < nblocks and baddr[b + 1] == pc and bsize[b + 1] == length:
                                b += 1
                            nxt_block = baddr[b + 1] if b + 1 < nblocks else None
                            rend = rstart[b + 1]
                            nrec = rend - rp
                        recs = range(rp, rp + nrec)
                        rp += nrec
                    else:
                        recs = ()
                    if flags & HAS_LOAD:
                        ta = ready
                        for s in asrcs:
                            if rr[s] > ta:
                                ta = rr[s]
                        # the load pipe
                        tp = ta
                        while True:
                            for p in mem_pipes:
                                row = busy[p]
                                if row[tp & RMASK] != tp:
                                    row[tp & RMASK] = tp
                                    break
                            else:
                                tp += 1
                                continue
                            break
                        ld_done = tp + l1lat + load_extra
                        for r in recs:
                            meta = rmeta[r]
                            a = raddr[r]
                            if meta & 1:
                                if store_recs is None:
                                    store_recs = []
                                store_recs.append(r)
                                continue
                            nld += 1
                            size = meta >> 1
                            e = sb.get(a >> 3)
                            if e is not None and e[3] > tp and a < e[0] + e[1] and e[0] < a + size:
                                if e[0] <= a and a + size <= e[0] + e[1]:
                                    nfwd += 1
                                    if mren and e[0] == a and e[1] == size and size in rsizes and \
                                            not dec.mem_index and dec.mnemonic not in _STACK_POPS:
                                        nren += 1        # the load takes the store's data register at rename
                                        x = e[2] if e[2] > ready else ready
                                    else:
                                        x = (e[2] if e[2] > tp else tp) + stlf
                                else:
                                    nfail += 1
                                    x = e[3] + l1lat + stlf_fail
                            else:
                                line = a >> line_shift
                                st = l1sets.get(line % l1n)
                                if st is not None and line in st:
                                    lvl = 0
                                    if line != last_line:
                                        del st[line]
                                        st[line] = None
                                else:
                                    lvl = line_level(line)
                                last_line = line
                                page = a >> 12
                                if page == last_page:
                                    x = tp + lat_of[lvl] + load_extra
                                else:
                                    x = tp + lat_of[lvl] + load_extra + tlb(page)
                                    last_page = page
                                if lvl:
                                    fills[line] = x
                                else:
                                    f = fills.get(line)
                                    if f is not None and f > x:
                                        x = f
                                eline = (a + size - 1) >> line_shift
                                if eline != line:
                                    lvl = line_level(eline)
                                    y = tp + lat_of[lvl] + load_extra
                                    if y > x:
                                        x = y
                            if x > ld_done:
                                ld_done = x
                        issued = tp
                    elif nrec:
                        store_recs = recs

                    # ---- the operation
                    if shape == D.LOAD:
                        done = ld_done
                        if br == D.RET and pipes:      # its branch µop checks the loaded target
                            done = _take(busy, pipes, ld_done, 1) + lat
                        if key == "rep_str":
                            done = ld_done + u.rep_startup + _bytes(rmeta, recs) // u.rep_bytes_per_cycle
                    elif shape == D.ELIM or special == D.ZERO_IDIOM:
                        done = d
                        issued = d
                    elif special == D.MOVE:
                        done = d
                        for s in srcs:
                            if rr[s] > done:
                                done = rr[s]
                        issued = done
                    else:
                        t0 = ld_done if ld_done > ready else ready
                        for s in srcs:
                            if rr[s] > t0:
                                t0 = rr[s]
                        if shape == D.STORE:
                            # store address on its pipe, data on a store-data pipe
                            ta = ready
                            for s in asrcs:
                                if rr[s] > ta:
                                    ta = rr[s]
                            if flags & HAS_LOAD:       # CALL m64: the return address follows its branch µop,
                                # which waits for the target's load (HOST, docs/timing.md "The harness")
                                t0 = _take(busy, pipes, t0, 1) + lat
                                issued = _take(busy, sta_pipes, ta, 1)
                            else:
                                issued = _take(busy, mem_pipes, ta, 1)
                                if pipes and key in ("call", "call_ind"):
                                    _take(busy, pipes, ready, 1)
                            data_ready = _take(busy, std_pipes, t0, 1) if std_pipes else t0
                            if key == "rep_str":
                                data_ready += u.rep_startup + _bytes(rmeta, recs) // u.rep_bytes_per_cycle
                            done = issued + sta_lat if issued + sta_lat > data_ready + 1 else data_ready + 1
                        else:
                            if not pipes:
                                issued = t0
                            elif occ == 1:
                                issued = t0
                                while True:
                                    for p in pipes:
                                        row = busy[p]
                                        if row[issued & RMASK] != issued:
                                            row[issued & RMASK] = issued
                                            break
                                    else:
                                        issued += 1
                                        continue
                                    break
                            else:
                                issued = _take(busy, pipes, t0, occ)
                            done = issued + lat
                            data_ready = done
                            if shape == D.RMW:
                                _take(busy, sta_pipes, ready, 1)
                                done += 1
                                if key == "rep_str":
                                    done += u.rep_startup + _bytes(rmeta, recs) // u.rep_bytes_per_cycle
                                    data_ready = done
                    for s in dsts:
                        rr[s] = done
                prev_done = done
                if done > max_done:
                    max_done = done
                if flags & FENCE and not fused:
                    if fence_retire:             # and younger ones are dispatched after it
                        if fq:
                            abar = done if done > abar else abar
                        else:
                            cyc, slots = (done, 0) if done > cyc else (cyc, slots)
                    else:
                        xbar = done

                # ---- branches
                if br:
                    nbr += 1
                    fall = pc + length
                    target = nxt_block if k == last else fall
                    mis = False
                    if target is not None:
                        taken = target != fall
                        if br == D.COND:
                            # gshare where it has seen this history, else the per-branch counter
                            # (a tagged entry: another branch's entry at the same index is not used)
                            i = (pc ^ (ghist << 2)) & pht_mask
                            j = pc & pht_mask
                            tg = (pc >> 3) & 0xFF
                            c, cb = pht[i], bim[j]
                            if c and tags[i] != tg:
                                c = 0
                            mis = ((c >= 3) if c else (cb >= 2)) != taken
                            tags[i] = tg
                            if taken:
                                pht[i] = c + 1 if c and c < 4 else (c or 3)
                                bim[j] = cb + 1 if cb < 3 else 3
                            else:
                                pht[i] = c - 1 if c > 1 else (c or 2)
                                bim[j] = cb - 1 if cb else 0
                            ghist = ((ghist << 1) | taken) & hist_mask
                        elif br == D.RET:
                            if ras:
                                mis = ras.pop() != target
                        elif br == D.JUMP_IND or br == D.CALL_IND:
                            mis = itarget.get(pc) != target
                            itarget[pc] = target
                        if br == D.CALL or br == D.CALL_IND:
                            ras.append(fall)
                            if len(ras) > ras_max:
                                del ras[0]
                        if mis:
                            nmis += 1
                            mispredicted[pc] = mispredicted.get(pc, 0) + 1
                            if done + penalty > cyc:
                                cyc = done + penalty
                            slots = 0
                        elif taken:
                            if pc not in btb and br != D.RET:
                                btb.add(pc)
                                if d + btb_pen > cyc:
                                    cyc = d + btb_pen
                            slots = 99           # a taken branch ends the dispatch group
                            if bubble:
                                if d + 1 + bubble > cyc:
                                    cyc = d + bubble
                            ntaken += 1

                # ---- retire, store commit
                if not fused:
                    r = done if done > last_retire else last_retire
                    if r > rcyc:
                        rcyc, rslots = r, 0
                    if rslots + uops > rwidth:
                        rcyc += 1
                        rslots = 0
                    rslots += uops
                    last_retire = rcyc
                    if flags & FENCE and fence_retire:
                        if fq:                           # dispatch-serialising: younger ones wait for its retirement
                            abar = rcyc if rcyc > abar else abar
                        elif rcyc > cyc:
                            cyc, slots = rcyc, 0
                    rob[ri] = rcyc
                    ri = ri + 1 if ri + 1 < nrob else 0
                    if nrs:
                        rs[rsi] = issued
                        rsi = rsi + 1 if rsi + 1 < nrs else 0
                    if store_recs is not None:
                        commit = rcyc + 1
                        if commit <= last_commit:
                            commit = last_commit + 1
                        for r in store_recs:
                            meta = rmeta[r]
                            if not meta & 1:
                                continue
                            nst += 1
                            a = raddr[r]
                            line = a >> line_shift
                            if line == last_line:
                                lvl = 0
                            else:
                                lvl = line_level(line)
                                last_line = line
                            page = a >> 12
                            if page != last_page:
                                tlb(page)
                                last_page = page
                            if lvl:
                                x = issued + lat_of[lvl]
                                if x > commit:
                                    commit = x       # the RFO must complete before the write
                            entry = (a, meta >> 1, data_ready, commit)
                            for c in range(a >> 3, ((a + (meta >> 1) - 1) >> 3) + 1):
                                sb[c] = entry
                        last_commit = commit
                        sbq[si] = commit
                        si = si + 1 if si + 1 < nsb else 0
                if tl is not None:
                    tl.append(TimelineEntry(ninsn - 1, pc, dec.text, d, issued, done, last_retire))
            b += 1
            if len(sb) > 4096:
                _purge(sb, cyc, 3)
            if len(fills) > 4096:
                _purge_fills(fills, cyc)

        self._cyc, self._slots, self._rcyc, self._rslots = cyc, slots, rcyc, rslots
        self._ri, self._si, self._ghist, self._last_commit = ri, si, ghist, last_commit
        self._rsi = rsi
        self.retired = last_retire
        self._max_done = max_done
        self._xbar = xbar
        self._abar, self._acyc, self._aslots = abar, acyc, aslots
        t.cycles = last_retire - start
        t.instructions, t.uops, t.branches, t.mispredicts, t.fused = ninsn, nuops, nbr, nmis, nfused
        t.taken = ntaken
        t.forwarded, t.forward_failed, t.loads, t.stores = nfwd, nfail, nld, nst
        t.renamed = nren
        miss = [a - b for a, b in zip(mem.misses, miss0)] + [0, 0, 0]
        t.l1d_misses, t.l2_misses, t.l3_misses = miss[0], miss[1], miss[2]
        tm = [a - b for a, b in zip(mem.tlb_misses, tlb0)] + [0, 0]
        t.dtlb_misses, t.stlb_misses = tm[0], tm[1]
        t.timeline = tl
        return t


def _flags_dead(decoded, k):
    """Whether the flags instruction k writes are overwritten, unread, later in its block (a
    folding renamer folds an ADD only then: measured, golden_cove.py; LEA writes no flags)."""
    if decoded[k].mnemonic == "lea":
        return True
    for d in decoded[k + 1:]:
        if D.FLAGS in d.srcs:
            return False
        if D.FLAGS in d.dsts:
            return True
    return False


def _feeds_sink(decoded, k, sinks):
    """Whether the register instruction k writes is read, later in its block and directly or through
    register moves, by an instruction of a form in `sinks` (one that cannot take a folded value:
    the fold's ADD then executes; golden_cove.py)."""
    if not sinks:
        return False
    held = set(decoded[k].dsts) - {D.FLAGS}
    for d in decoded[k + 1:]:
        if not held:
            return False
        reads = held.intersection(d.srcs) or held.intersection(d.addr_srcs)
        if reads and d.key in sinks:
            return True
        if reads and d.special == D.MOVE:
            held |= set(d.dsts)
        else:
            held -= set(d.dsts)
    return False


def _take(busy, pipes, t, occ):
    """The first cycle >= t at which one of `pipes` is free; reserves it for occ cycles."""
    while True:
        for p in pipes:
            row = busy[p]
            if row[t & RMASK] != t:
                for c in range(t, t + occ):
                    row[c & RMASK] = c
                return t
        t += 1


def _bytes(rmeta, recs):
    """Bytes a REP string instruction wrote (or read, for a load-only one)."""
    w = sum(rmeta[r] >> 1 for r in recs if rmeta[r] & 1)
    return w or sum(rmeta[r] >> 1 for r in recs)


def _purge(sb, now, idx):
    for k in [k for k, e in sb.items() if e[idx] < now]:
        del sb[k]


def _purge_fills(fills, now):
    for k in [k for k, v in fills.items() if v < now]:
        del fills[k]
