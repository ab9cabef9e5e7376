#!/usr/bin/env python3
"""Builds small QCOW2 images whose check repeats lines, for t_check.

    echo_cases.py CASE OUT

check keeps the lines of a walk of a table that repeat an earlier walk's
as one record (src/check/report.c); each CASE once made check's lines
differ from qemu-img's, found by review:

  copied-merge   table A named by L1 entries 0 and 2, table B by 1, both
                 mapping one COPIED data cluster of refcount 3: the COPIED
                 check prints A's line, B's, A's again; B's line joined
                 A's record and was written again with it.
  snap-group     three snapshots share one L1 table of 64 entries naming
                 one table of 100 entries past the end of the file and 400
                 mapping one cluster, 1-bit refcounts: the overflow lines
                 of the group's walks go to each snapshot of it.
  snap-partial   snapshots A and B share an L1 table naming table T, C has
                 its own naming T too; T maps one cluster past the end of
                 the file and one cluster X, which overflows at B's walk
                 (a line written from A's walk for the group) and at C's.

The builder lays out: cluster 0 the header, 1 the refcount table, 2 its
block, 3 on the L1 table, then the tables and data, refcounts as QEMU
would set them.
"""
import struct
import sys

class Img:
    def __init__(s, cb=12, rorder=4, l1n=4, ext=False, vsize=None):
        s.cb, s.cs, s.rorder, s.ext = cb, 1 << cb, rorder, ext
        s.esize = 16 if ext else 8
        s.l2n = s.cs // s.esize
        s.l1n = l1n
        s.l1 = [0] * l1n
        s.clusters = {}          # cluster index -> bytes
        s.l1_clusters = max(1, (l1n * 8 + s.cs - 1) // s.cs)
        s.next = 3 + s.l1_clusters
        s.vsize = vsize or l1n * s.l2n * s.cs
        s.rc_override = {}
        s.snaps = []
        s.extra_refs = []
        s.l2 = {}
    def alloc(s, n=1):
        k = s.next; s.next += n; return k
    def new_l2(s):
        k = s.alloc(); s.l2[k] = [0] * s.l2n if not s.ext else [(0, 0)] * s.l2n; return k
    def data(s, fill=b'\x11'):
        k = s.alloc(); s.clusters[k] = fill * s.cs; return k
    def off(s, k): return k << s.cb
    def refs(s):
        rc = {0: 1, 1: 1, 2: 1}
        for i in range(s.l1_clusters): rc[3 + i] = 1
        def add(k, n=1): rc[k] = rc.get(k, 0) + n
        l1s = [s.l1] + [sn['l1'] for sn in s.snaps]
        for sn in s.snaps:
            for i in range(max(1, (len(sn['l1']) * 8 + s.cs - 1) // s.cs)):
                add((sn['l1_off'] >> s.cb) + i)
        for l1 in l1s:
            for e in l1:
                o = e & 0x00fffffffffffe00
                if not o: continue
                add(o >> s.cb)
                if o >> s.cb in s.l2 and o % s.cs == 0:
                    for ent in s.l2[o >> s.cb]:
                        raw = ent[0] if s.ext else ent
                        if raw & (1 << 62): continue
                        d = raw & 0x00fffffffffffe00
                        if d and d % s.cs == 0: add(d >> s.cb)
        return rc
    def write(s, path, snap_table_k=None):
        rc = s.refs()
        for k, v in s.rc_override.items(): rc[k] = v
        snapoff = 0
        if s.snaps:
            snapoff_k = s.alloc(); snapoff = s.off(snapoff_k)
            rc[snapoff_k] = rc.get(snapoff_k, 0) + (1 if snapoff_k not in s.rc_override else 0)
        nclusters = s.next
        bits = 1 << s.rorder
        incompat = (1 << 4) if s.ext else 0
        h = struct.pack('>IIQIIQIIQQIIQQQQII', 0x514649fb, 3, 0, 0, s.cb, s.vsize, 0, s.l1n,
                        s.off(3), s.off(1), 1, len(s.snaps), snapoff, incompat, 0, 0, s.rorder, 112)
        h += b'\0' * 8  # compression type etc
        buf = bytearray(nclusters * s.cs)
        buf[0:len(h)] = h
        buf[s.cs:s.cs + 8] = struct.pack('>Q', s.off(2))
        # refblock
        rb = 0
        for k, v in rc.items():
            if k >= s.cs * 8 // bits: continue
            rb |= (v & ((1 << bits) - 1)) << (k * bits) if bits >= 8 else 0
        blk = bytearray(s.cs)
        for k, v in rc.items():
            if bits >= 8:
                nb = bits // 8
                if k * nb + nb <= s.cs:
                    blk[k * nb:k * nb + nb] = (v & ((1 << bits) - 1)).to_bytes(nb, 'big')
            else:
                per = 8 // bits
                byte, sh = k // per, (k % per) * bits
                if byte < s.cs:
                    blk[byte] |= (v & ((1 << bits) - 1)) << sh
        buf[2 * s.cs:3 * s.cs] = blk
        l1b = b''.join(struct.pack('>Q', e) for e in s.l1)
        buf[3 * s.cs:3 * s.cs + len(l1b)] = l1b
        for k, ents in s.l2.items():
            if s.ext:
                b = b''.join(struct.pack('>QQ', *e) for e in ents)
            else:
                b = b''.join(struct.pack('>Q', e) for e in ents)
            buf[s.off(k):s.off(k) + s.cs] = b
        for k, b in s.clusters.items():
            if k not in s.l2: buf[s.off(k):s.off(k) + len(b)] = b
        if s.snaps:
            t = b''
            for i, sn in enumerate(s.snaps):
                idb = sn.get('id', str(i + 1)).encode(); nm = sn.get('name', 's%d' % i).encode()
                e = struct.pack('>QIHHIIQII', sn['l1_off'], len(sn['l1']), len(idb), len(nm), 0, 0, 0, 0, 16)
                e += struct.pack('>QQ', s.vsize, 0)[:16]
                e += idb + nm
                e += b'\0' * ((8 - len(e) % 8) % 8)
                t += e
            buf[snapoff:snapoff + len(t)] = t
            for sn in s.snaps:
                if sn.get('own_l1'):
                    l1b = b''.join(struct.pack('>Q', e) for e in sn['l1'])
                    o = sn['l1_off']; buf[o:o + len(l1b)] = l1b
        with open(path, 'wb') as f: f.write(buf)


def copied_merge(out):
    im = Img(cb=12, rorder=4, l1n=4)
    a, b = im.new_l2(), im.new_l2()
    x = im.data()
    copied = 1 << 63
    im.l2[a][0] = copied | im.off(x)
    im.l2[b][0] = copied | im.off(x)
    im.l1[0] = im.off(a)
    im.l1[1] = copied | im.off(b)
    im.l1[2] = im.off(a)
    im.write(out)


def snap_group(out):
    im = Img(cb=12, rorder=0, l1n=4)
    t, x = im.new_l2(), im.data()
    for j in range(100):
        im.l2[t][j] = (1 << 40) + j * im.cs
    for j in range(400):
        im.l2[t][100 + j] = im.off(x)
    s = im.alloc((64 * 8 + im.cs - 1) // im.cs)
    for n in range(3):
        im.snaps.append({"l1_off": im.off(s), "l1": [im.off(t)] * 64,
                         "own_l1": True, "name": "snap%d" % n})
    im.write(out)


def snap_partial(out):
    im = Img(cb=12, rorder=0, l1n=4)
    t, x = im.new_l2(), im.data()
    im.l2[t][0] = 1 << 40
    im.l2[t][1] = im.off(x)
    s1, s2 = im.alloc(), im.alloc()
    for name, s in (("A", s1), ("B", s1), ("C", s2)):
        im.snaps.append({"l1_off": im.off(s), "l1": [im.off(t)],
                         "own_l1": True, "name": name})
    im.write(out)


CASES = {"copied-merge": copied_merge, "snap-group": snap_group,
         "snap-partial": snap_partial}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in CASES:
        sys.exit(__doc__)
    CASES[sys.argv[1]](sys.argv[2])
