#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Builds hostile QCOW2 inputs from an image qemu-img made, for t_hostile.

    hostile.py shared-snapshot-l1 IMAGE [SNAPSHOTS]
    hostile.py shared-snapshot-l2 IMAGE [SNAPSHOTS]
    hostile.py share-snapshot-l1 IMAGE [SNAPSHOT]
    hostile.py many-snapshots FILE [SNAPSHOTS]
    hostile.py many-bitmaps IMAGE [BITMAPS]
    hostile.py bitmaps-one-table IMAGE [BITMAPS]
    hostile.py phantom-snapshots IMAGE [SNAPSHOTS]
    hostile.py sparse-snapshot-l1s IMAGE [SNAPSHOTS]
    hostile.py copied-snapshots IMAGE [SNAPSHOTS]
    hostile.py shared-l2 IMAGE
    hostile.py leaky-sparse IMAGE [BYTE]
    hostile.py far-l1 IMAGE
    hostile.py one-l2 IMAGE
    hostile.py l2-windows IMAGE [STEP]
    hostile.py zero-l2 IMAGE [CHANGED]
    hostile.py hole-l2 IMAGE
    hostile.py distant-data IMAGE [ENTRIES]
    hostile.py distant-overflow IMAGE [ENTRIES]
    hostile.py silent-l2 IMAGE [ENTRIES]
    hostile.py silent-cluster0 IMAGE [ENTRIES]
    hostile.py compressed-l2 IMAGE [ENTRIES]
    hostile.py alternating-l2 IMAGE [ENTRIES]
    hostile.py lone-data-l2 IMAGE [ENTRIES]
    hostile.py zero-subclusters IMAGE [ENTRIES]
    hostile.py counted-cluster0 IMAGE [ENTRIES]
    hostile.py far-refcount IMAGE [CLUSTERS]
    hostile.py far-bitmap IMAGE [ENTRIES]
    hostile.py ones-bitmap IMAGE [ENTRY]
    hostile.py one-run-l1 IMAGE [ID]
    hostile.py crossed-l2 IMAGE [MODULUS]
    hostile.py overlapping-snapshot-l1s IMAGE [SHIFT]
    hostile.py overlapping-sparse-l1s IMAGE [SNAPSHOTS]
    hostile.py overlapping-one-l2 IMAGE [SNAPSHOTS]

IMAGE must be a fresh qemu-img image with 64 KiB clusters whose active L1
has 8,192 entries (a 4 TiB virtual size).  It gains SNAPSHOTS (4,096)
snapshot table entries that all share one L1 table whose every entry
points past the end of the file: a file of about 1.1 MB that names
33 million L2 tables.

many-snapshots writes FILE anew: a 72-byte version 2 header and nothing
else, whose snapshot table of SNAPSHOTS (65,536, QEMU's limit) entries
lies past the end of the file.  They read as zeros, as in QEMU: every
snapshot has the same empty ID and name.

many-bitmaps: IMAGE must be a fresh qemu-img image of 1 MiB with 64 KiB
clusters and one bitmap.  Its bitmap directory becomes BITMAPS (65,535,
QEMU's limit) entries all named "b", sharing one all-zeros table: a
2.5 MB file.

phantom-snapshots: IMAGE must be a qemu-img image with a snapshot or more,
its snapshot table last in the file (as qemu-img leaves it).  Its header
comes to claim SNAPSHOTS (65,536) snapshots and the file ends with the
table: the entries after the real ones lie past the end of the file, and
read as zeros (in version 3, each an incomplete entry for qemu-img check).

sparse-snapshot-l1s: IMAGE must be a fresh qemu-img image with 64 KiB
clusters.  It gains SNAPSHOTS (256) snapshots, each with its own L1 table:
all at one offset, of QEMU's largest size (32 MiB, 4 Mi entries) less one
entry per snapshot, so that no two are the same table.  The tables lie in
a hole of the file but for their last 4 KiB, whose entries all point to
one L2 table in the hole; the snapshot table follows, at 300 MB: a sparse
file of under 300 KB on disk whose L1 tables claim 8 GiB.

copied-snapshots: IMAGE must be a qemu-img image with 64 KiB clusters and
one snapshot.  It gets SNAPSHOTS (500) snapshots in all, each with its own
copy of the first one's L1 table, as `qemu-img snapshot -c` would make
them (in far less time): a new snapshot table at the end of the file.  The
refcounts are left as they were: `qemu-img check -r all` sets them.

shared-l2: IMAGE must be a fresh qemu-img image with 64 KiB clusters.
Every entry of its active L1 table comes to name the L1 table's own
cluster as an L2 table, whose entries (the L1's) then all map that cluster
as data: with 2,048 entries (1 TiB), each of 2,048 walks of the one table
finds 2,048 references to one cluster, and qemu-img check reports 4
million refcount overflows from a 256 KB file.

leaky-sparse: IMAGE must be a fresh qemu-img image with 4 KiB clusters and
1-bit refcounts.  Every entry of its refcount table (512) comes to name its
one refcount block, whose bytes become BYTE (85: refcounts 1, 0, 1, 0...,
as here; 255: all 1), and the file
grows (a hole) to the 64 GiB those entries cover: qemu-img check reports 8
million leaked clusters, one line each, from a file of 16 KB on disk.

far-l1: entry i of IMAGE's active L1 table comes to name an L2 table at
(i + 1) << 39, past the end of the file (it reads as zeros).  one-l2:
every entry of IMAGE's active L1 table comes to name the table entry 0
names.  A diff of the two (fresh images of 512-byte clusters and 131,072
L1 entries, the second with a cluster written) compares 131,072 pairs of
tables, whose offsets differ only in their high bits.

l2-windows: entry i of IMAGE's active L1 table comes to name an L2 table
at (i + 1) * STEP (512): with 2 MiB clusters, tables that overlap one
another and the L1 table, each entry of which they read as a data cluster
that is not aligned, inside metadata or past the end of the file.  With 16,384
entries (8 PiB) check kept a finding for each wrong entry of each table
(24 GB).

zero-l2: every entry of IMAGE's active L1 table (any cluster size) comes
to name one L2 table of zeros, the cluster after the next one past the
end of the file, which grows to hold it; CHANGED (0) of the table's
entries, from entry 5 on, map the cluster past it.  With 2 MiB clusters
and 65,536 L1 entries, check, map and diff walked or compared the 2 MiB
table once for each entry.

hole-l2: entry i of IMAGE's active L1 table (any cluster size) comes to
name its own L2 table in a hole that the file, made sparse, ends with:
with 2 MiB clusters and 65,536 entries, 128 GiB of zeros in a file of
6.6 MB on disk.

distant-data: IMAGE must be a fresh qemu-img image with 64 KiB clusters.
It gains an L2 table at its end whose 8,192 entries map distinct clusters
past the end of the file (from 1 TiB on), and the first ENTRIES (2,048)
entries of its active L1 table come to name it: qemu-img check walks the
table for each, printing 8,192 lines each time, then 8,192 more for each
in its check of the COPIED flags: 33 million lines from a 320 KB file.
distant-overflow: the same, but every other entry maps the active L1
table's cluster, whose 16-bit refcount overflows in the 17th walk: each
walk's lines from then on differ from the first's.

silent-l2: IMAGE must be a fresh qemu-img image.  The first ENTRIES
(65,536) entries of its active L1 name one L2 table at the end of the
file whose entries are all 0x1 (zero, no offset): qemu-img walks it once
for each and prints nothing.
silent-cluster0: IMAGE must be a fresh qemu-img image with 2 MiB
clusters.  The first ENTRIES (16,384) entries of its active L1 have flags
but no offset: qemu-img reads the file's first cluster as their L2 table,
and that cluster is, past the header's 64 KiB, entries of 0x1.
ones-bitmap: IMAGE must be a qemu-img image with 64 KiB clusters and one
bitmap.  Entry ENTRY (0) of its bitmap table becomes 0x1, "all ones",
which QEMU reads but never writes.
one-run-l1: IMAGE must be a qemu-img image with 64 KiB clusters whose
first 64 KiB of guest data were written.  Its active L1 comes to name
nothing, and it gains one snapshot, of ID ID (1) and name "s" and the
ID, whose own L1 table names that L2 table in each of its entries: one
run of as many owners as the active L1 has entries.
"""
import struct
import sys

CLUSTER = 65536
BITMAPS_EXT = 0x23852875


def end_cluster(f):
    """The first 64 KiB cluster at or after the end of F."""
    f.seek(0, 2)
    return (f.tell() + CLUSTER - 1) // CLUSTER * CLUSTER


def snapshot_entry(n, l1_off, l1_size, rest=struct.pack(">IIQII", 0, 0, 0, 0,
                                                      16),
                   extra=struct.pack(">QQ", 0, 1 << 20)):
    """Snapshot table entry N: ID n + 1, name sN; REST: the fixed part's
    last 24 bytes, from date_sec to extra_data_size."""
    sid = str(n + 1).encode()
    name = b"s%d" % n
    entry = struct.pack(">QIHH", l1_off, l1_size, len(sid), len(name))
    entry += rest + extra + sid + name
    return entry + b"\0" * (-len(entry) % 8)


def write_snapshot_table(f, table, off, count):
    f.seek(off)
    f.write(table + b"\0" * (-len(table) % CLUSTER))
    f.seek(60)
    f.write(struct.pack(">IQ", count, off))


def shared_snapshot_l1(path, count, in_file=False):
    """COUNT snapshots sharing one L1 table whose every entry names an L2
    table past the end of the file, or (IN_FILE) one L2 table of zeros
    inside it."""
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(104))
        end = end_cluster(f)
        l1_size = struct.unpack_from(">I", hdr, 36)[0]
        l1_off = end
        l1_end = (l1_off + l1_size * 8 + CLUSTER - 1) // CLUSTER * CLUSTER
        if in_file:
            l1 = struct.pack(">Q", l1_end) * l1_size
            f.seek(l1_end)
            f.write(b"\0" * CLUSTER)
            l1_end += CLUSTER
        else:
            # Every entry: an L2 table far past the end of the file.
            l1 = b"".join(struct.pack(">Q", (1 << 40) + i * CLUSTER)
                          for i in range(l1_size))
        f.seek(l1_off)
        f.write(l1)
        table = bytearray()
        for n in range(count):
            sid = str(n + 1).encode()
            name = b"s%d" % n
            entry = struct.pack(">QIHHIIQII", l1_off, l1_size, len(sid),
                                len(name), 0, 0, 0, 0, 16)
            entry += struct.pack(">QQ", 0, 4 << 40) + sid + name
            entry += b"\0" * (-len(entry) % 8)
            table += entry
        f.seek(l1_end)
        f.write(table)
        struct.pack_into(">IQ", hdr, 60, count, l1_end)
        f.seek(0)
        f.write(hdr)


def share_snapshot_l1(path, n):
    """Snapshot N's entry takes snapshot N - 1's L1 table (offset and
    size), as no QEMU would write it."""
    with open(path, "r+b") as f:
        count, pos = struct.unpack_from(">IQ", f.read(104), 60)
        entries = []
        for _ in range(count):
            f.seek(pos)
            e = f.read(40)
            l1, size, idl, nml = struct.unpack_from(">QIHH", e)
            entries.append((pos, l1, size))
            pos += 40 + struct.unpack_from(">I", e, 36)[0] + idl + nml
            pos += -pos % 8
        f.seek(entries[n][0])
        f.write(struct.pack(">QI", entries[n - 1][1], entries[n - 1][2]))


def many_snapshots(path, count):
    hdr = struct.pack(">IIQIIQIIQQIIQ", 0x514649FB, 2, 0, 0, 16, 0, 0, 0,
                      0, 0, 0, count, CLUSTER)
    with open(path, "wb") as f:
        f.write(hdr)


def bitmaps_ext(hdr, path):
    """The offset of the bitmaps extension in header cluster HDR."""
    pos = struct.unpack_from(">I", hdr, 100)[0]     # header_length
    while True:
        magic, length = struct.unpack_from(">II", hdr, pos)
        if magic == BITMAPS_EXT:
            return pos
        if magic == 0:
            sys.exit("%s has no bitmaps extension" % path)
        pos += 8 + (length + 7) // 8 * 8


def write_directory(f, hdr, pos, directory, count, dir_off):
    """The bitmap DIRECTORY of COUNT entries written at DIR_OFF, and the
    bitmaps extension at POS of header cluster HDR made to name it."""
    f.seek(dir_off)
    f.write(directory + b"\0" * (-len(directory) % CLUSTER))
    struct.pack_into(">IIQQ", hdr, pos + 8, count, 0, len(directory),
                     dir_off)
    f.seek(0)
    f.write(hdr[:pos + 32])


def many_bitmaps(path, count):
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(CLUSTER))
        pos = bitmaps_ext(hdr, path)
        table_off = end_cluster(f)
        f.seek(table_off)
        f.write(b"\0" * CLUSTER)
        # offset, 1 entry, no flags, type 1, granularity 2^16, name "b"
        entry = struct.pack(">QIIBBHI", table_off, 1, 0, 1, 16, 1, 0) + b"b"
        entry += b"\0" * (-len(entry) % 8)
        write_directory(f, hdr, pos, entry * count, count,
                        table_off + CLUSTER)


def bitmaps_one_table(path, count, entries=1024):
    """IMAGE: a fresh qemu-img image of 64 KiB clusters with one bitmap.
    Its directory becomes COUNT bitmaps (distinct names) sharing one
    table of ENTRIES entries, each naming the one data cluster after the
    table."""
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(CLUSTER))
        pos = bitmaps_ext(hdr, path)
        size = struct.unpack_from(">Q", hdr, 24)[0]
        table_off = end_cluster(f)
        tsize = (entries * 8 + CLUSTER - 1) // CLUSTER * CLUSTER
        data_off = table_off + tsize
        f.seek(table_off)
        f.write(struct.pack(">Q", data_off) * entries
                + b"\0" * (tsize - entries * 8))
        f.write(b"\xff" * CLUSTER)
        # the granularity that gives the table ENTRIES entries
        gb = 9
        while (size + (CLUSTER * 8 << gb) - 1) // (CLUSTER * 8 << gb) > entries:
            gb += 1
        directory = b""
        for i in range(count):
            name = b"b%d" % i
            e = struct.pack(">QIIBBHI", table_off, entries, 0, 1, gb,
                            len(name), 0) + name
            directory += e + b"\0" * (-len(e) % 8)
        write_directory(f, hdr, pos, directory, count, data_off + CLUSTER)


def phantom_snapshots(path, count):
    with open(path, "r+b") as f:
        hdr = f.read(72)
        nb, off = struct.unpack_from(">IQ", hdr, 60)
        pos = off
        for _ in range(nb):
            f.seek(pos)
            fixed = f.read(40)
            id_len, name_len = struct.unpack_from(">HH", fixed, 12)
            extra = struct.unpack_from(">I", fixed, 36)[0]
            pos += (40 + extra + id_len + name_len + 7) // 8 * 8
        f.seek(60)
        f.write(struct.pack(">I", count))
        f.truncate(pos)


def sparse_snapshot_l1s(path, count):
    l1_size = (32 << 20) // 8
    l1_off = 1 << 20
    l2_off = 200 << 20
    snap_off = 300 << 20
    with open(path, "r+b") as f:
        f.seek(l1_off + l1_size * 8 - 4096)
        f.write(struct.pack(">Q", 1 << 63 | l2_off) * 512)
        table = b"".join(snapshot_entry(n, l1_off, l1_size - n)
                         for n in range(count))
        write_snapshot_table(f, table, snap_off, count)


def copied_snapshots(path, count):
    with open(path, "r+b") as f:
        hdr = f.read(72)
        off = struct.unpack_from(">Q", hdr, 64)[0]
        f.seek(off)
        fixed = f.read(40)
        l1_off, l1_size = struct.unpack_from(">QI", fixed)
        extra_len = struct.unpack_from(">I", fixed, 36)[0]
        extra = f.read(extra_len)
        f.seek(l1_off)
        l1 = f.read(l1_size * 8)
        l1 += b"\0" * (-len(l1) % CLUSTER)
        pos = end_cluster(f)
        table = bytearray()
        for n in range(count):
            if n:
                f.seek(pos)
                f.write(l1)
                l1_off, pos = pos, pos + len(l1)
            table += snapshot_entry(n, l1_off, l1_size, fixed[16:], extra)
        write_snapshot_table(f, table, pos, count)


def shared_l2(path, _count):
    with open(path, "r+b") as f:
        hdr = f.read(104)
        l1_size, l1_off = struct.unpack_from(">IQ", hdr, 36)
        f.seek(l1_off)
        f.write(struct.pack(">Q", 1 << 63 | l1_off) * l1_size)


def leaky_sparse(path, byte):
    with open(path, "r+b") as f:
        hdr = f.read(104)
        cbits = struct.unpack_from(">I", hdr, 20)[0]
        rt_off, rt_clusters = struct.unpack_from(">QI", hdr, 48)
        order = struct.unpack_from(">I", hdr, 96)[0]
        f.seek(rt_off)
        block = struct.unpack(">Q", f.read(8))[0]
        entries = (rt_clusters << cbits) // 8
        f.seek(rt_off)
        f.write(struct.pack(">Q", block) * entries)
        f.seek(block)
        f.write(bytes([byte]) * (1 << cbits))
        f.truncate(entries * ((8 << cbits) >> order) << cbits)


def active_l1(f):
    hdr = f.read(104)
    return struct.unpack_from(">IQ", hdr, 36)


def far_l1(path, _count):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        f.seek(l1_off)
        f.write(b"".join(struct.pack(">Q", (i + 1) << 39)
                         for i in range(l1_size)))


def l2_windows(path, step):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        f.seek(l1_off)
        f.write(b"".join(struct.pack(">Q", (i + 1) * step)
                         for i in range(l1_size)))


def one_l2(path, _count):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        f.seek(l1_off)
        first = f.read(8)
        f.seek(l1_off)
        f.write(first * l1_size)


def past_end(f):
    """The cluster size, and the cluster after the next one past the end."""
    f.seek(20)
    cluster = 1 << struct.unpack(">I", f.read(4))[0]
    f.seek(0, 2)
    return cluster, ((f.tell() + cluster - 1) // cluster + 1) * cluster


def zero_l2(path, changed):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        cluster, l2 = past_end(f)
        f.truncate(l2 + cluster)
        f.seek(l2 + 5 * 8)
        f.write(struct.pack(">Q", 1 << 63 | (l2 + cluster)) * changed)
        f.seek(l1_off)
        f.write(struct.pack(">Q", l2) * l1_size)


def hole_l2(path, _count):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        cluster, first = past_end(f)
        f.truncate(first + l1_size * cluster)
        f.seek(l1_off)
        f.write(b"".join(struct.pack(">Q", first + i * cluster)
                         for i in range(l1_size)))


def distant_data(path, count, overflow=False):
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        l2 = end_cluster(f)
        f.seek(l2)
        f.write(b"".join(struct.pack(">Q", 1 << 63 | (
            l1_off if overflow and i % 2 else (1 << 40) + i * CLUSTER))
                         for i in range(CLUSTER // 8)))
        f.seek(l1_off)
        f.write(struct.pack(">Q", 1 << 63 | l2) * min(count, l1_size))


def shared_table(path, count, entry):
    """IMAGE: a fresh qemu-img image.  The first COUNT entries of its
    active L1 table (all of them for 0) name one L2 table at the end of
    the file, every entry of which is ENTRY (bytes)."""
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        f.seek(20)
        cluster = 1 << struct.unpack(">I", f.read(4))[0]
        f.seek(0, 2)
        l2 = (f.tell() + cluster - 1) // cluster * cluster
        f.seek(l2)
        f.write(entry * (cluster // len(entry)))
        f.seek(l1_off)
        f.write(struct.pack(">Q", l2) * min(count or l1_size, l1_size))


def silent_l2(path, count):
    """IMAGE: a fresh qemu-img image.  The first COUNT entries of its
    active L1 table name one L2 table at the end of the file whose entries
    are all 0x1 (zero, no offset), which qemu-img check walks once for each
    and prints nothing for (a hunt for per-entry work)."""
    shared_table(path, count, struct.pack(">Q", 1))


def silent_cluster0(path, count):
    """IMAGE: a fresh qemu-img image with 2 MiB clusters.  The first COUNT
    entries of its active L1 have flags but no offset, so that qemu-img
    reads the file's first cluster as their L2 table; past the header's
    64 KiB, that cluster is entries of 0x1 (zero, no offset), which it
    walks in silence (a hunt for per-entry work)."""
    with open(path, "r+b") as f:
        l1_size, l1_off = active_l1(f)
        f.seek(20)
        cluster = 1 << struct.unpack(">I", f.read(4))[0]
        f.seek(CLUSTER)
        f.write(struct.pack(">Q", 1) * ((cluster - CLUSTER) // 8))
        f.seek(l1_off)
        f.write(struct.pack(">Q", 1 << 63) * min(count, l1_size))



def alternating_l2(path, count):
    """IMAGE: a fresh qemu-img image.  The first COUNT entries of its
    active L1 table name one L2 table at the end of the file whose entries
    map a data cluster and read as zeros in turn, which diff walks entry
    by entry against an image of another cluster size."""
    shared_table(path, count, struct.pack(">QQ", 1 << 63 | 1 << 22, 1))


def lone_data_l2(path, count):
    """IMAGE: a fresh qemu-img image.  The first COUNT entries of its
    active L1 table name one L2 table at the end of the file whose first
    entry maps a data cluster and whose others are unallocated: against
    an image of small clusters and a small virtual size, diff's walk meets
    a window of the small image's L1 entry (32 KiB) at each of its steps
    only where the table's entry changes."""
    with open(path, "r+b") as f:
        f.seek(20)
        cluster = 1 << struct.unpack(">I", f.read(4))[0]
    shared_table(path, count, struct.pack(">Q", 1 << 63 | 1 << 23)
                 + bytes(cluster - 8))


def compressed_l2(path, count):
    """IMAGE: a fresh qemu-img image with 2 MiB clusters.  COUNT active L1
    entries name one L2 table whose entries are all compressed (512 bytes
    at 2 MiB): qemu-img map asks for each cluster (a hunt for per-entry
    work)."""
    shared_table(path, count, struct.pack(">Q", 1 << 62 | 0x200000))


def zero_subclusters(path, count):
    """IMAGE: a fresh qemu-img image with extended L2 entries.  COUNT
    active L1 entries (0: all) name one L2 table whose entries give every
    subcluster the zero flag, with no offset (a hunt for per-entry
    work)."""
    shared_table(path, count, struct.pack(">QQ", 0, 0xffffffff << 32))


def counted_cluster0(path, count):
    """As silent-cluster0, but three of cluster 0's entries, among the
    0x1 ones, name clusters 1 to 3 of the file, so that each walk adds to
    their counts until they overflow (a hunt for per-entry work), and
    100,000 after them are 0x8000000000000001 or 0x8000000000000000 (zero
    or unallocated, with COPIED: silent too)."""
    silent_cluster0(path, count)
    with open(path, "r+b") as f:
        f.seek(20)
        cluster = 1 << struct.unpack(">I", f.read(4))[0]
        f.seek(CLUSTER + 800)
        f.write(struct.pack(">3Q", *(cluster * i for i in (1, 2, 3))))
        f.write(struct.pack(">2Q", 1 << 63 | 1, 1 << 63) * 50000)

def far_refcount(path, clusters):
    with open(path, "r+b") as f:
        hdr = f.read(104)
        rt_off = struct.unpack_from(">Q", hdr, 48)[0]
        f.seek(rt_off)
        block = f.read(8)
        end = end_cluster(f)
        f.seek(end)
        f.write(block + b"".join(struct.pack(">Q", (i + 1) << 40)
                                 for i in range(1, clusters * CLUSTER // 8)))
        f.seek(48)
        f.write(struct.pack(">QI", end, clusters))


def far_bitmap(path, entries):
    with open(path, "r+b") as f:
        hdr = f.read(CLUSTER)
        pos = bitmaps_ext(hdr, path)
        dir_off = struct.unpack_from(">Q", hdr, pos + 24)[0]
        end = end_cluster(f)
        f.seek(end)
        f.write(b"".join(struct.pack(">Q", (1 << 40) + i * CLUSTER)
                         for i in range(entries)))
        f.seek(dir_off)
        f.write(struct.pack(">QI", end, entries))


def ones_bitmap(path, entry):
    with open(path, "r+b") as f:
        hdr = f.read(CLUSTER)
        pos = bitmaps_ext(hdr, path)
        dir_off = struct.unpack_from(">Q", hdr, pos + 24)[0]
        f.seek(dir_off)
        table = struct.unpack(">Q", f.read(8))[0]
        f.seek(table + 8 * entry)
        f.write(struct.pack(">Q", 1))


def one_run_l1(path, sid):
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(104))
        l1_size, l1_off = struct.unpack_from(">IQ", hdr, 36)
        f.seek(l1_off)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00
        f.seek(l1_off)
        f.write(bytes(8))
        end = end_cluster(f)
        f.seek(end)
        f.write(struct.pack(">Q", l2) * l1_size)
        table = (end + 8 * l1_size + CLUSTER - 1) // CLUSTER * CLUSTER
        ident, name = str(sid).encode(), b"s%d" % sid
        entry = struct.pack(">QIHHIIQII", end, l1_size, len(ident),
                            len(name), 0, 0, 0, 0, 16)
        entry += struct.pack(">QQ", 0, struct.unpack_from(">Q", hdr, 24)[0])
        entry += ident + name
        entry += bytes(-len(entry) % 8)
        f.seek(table)
        f.write(entry + bytes(-len(entry) % CLUSTER))
        struct.pack_into(">IQ", hdr, 60, 1, table)
        f.seek(0)
        f.write(hdr)


CROSSED_TABLES = 500


def crossed_l2(path, modulus):
    """IMAGE: a fresh qemu-img image of 32 GiB with 512-byte clusters, whose
    active L1 has 1 Mi entries.  500 L2 tables follow the end of the file,
    each naming a data cluster of its own; L1 entry i names table i %
    MODULUS, for the first 500 x 499 entries.  Two such images, of moduli
    500 and 499, pair each table of one with each of the other: 249,001
    pairs of tables that differ (the first 499 entries name the same
    table in both), in two 8.5 MB files."""
    with open(path, "r+b") as f:
        hdr = f.read(104)
        l1_off = struct.unpack_from(">Q", hdr, 40)[0]
        f.seek(0, 2)
        end = (f.tell() + 511) // 512 * 512
        for t in range(CROSSED_TABLES):
            f.seek(end + t * 512)
            f.write(struct.pack(">Q", 1 << 63 | (1 << 30) + t * 512))
            f.write(b"\0" * 504)
        n = CROSSED_TABLES * (CROSSED_TABLES - 1)
        f.seek(l1_off)
        f.write(b"".join(struct.pack(">Q", 1 << 63 | end + i % modulus * 512)
                         for i in range(n)))


def overlapping_snapshot_l1s(path, shift, count=1024):
    """IMAGE: a fresh qemu-img image of 64 MiB with 512-byte clusters.
    1,024 L2 tables follow the end of the file (their entries 0 and 1 in
    turn, starting with entry SHIFT % 2), then one run of L1 entries naming
    them in turn, then the snapshot table: 1,024 snapshots whose L1 tables
    of 1,024 entries start SHIFT entries apart, each overlapping the next.
    Two such images, of shifts 1 and 2, pair a million L2 tables that
    differ, in two files of 630 KB (from a review)."""
    cs = 512
    with open(path, "r+b") as f:
        f.seek(0, 2)
        l2base = (f.tell() + cs - 1) // cs * cs
        f.seek(l2base)
        for t in range(count):
            f.write(struct.pack(">64Q", *((j + t + shift) % 2
                                          for j in range(64))))
        l1base = l2base + count * cs
        f.write(b"".join(struct.pack(">Q", l2base + e % count * cs)
                         for e in range(count + shift * count)))
        table = b"".join(snapshot_entry(n, l1base + 8 * shift * n, count)
                         for n in range(count))
        st = (f.tell() + cs - 1) // cs * cs
        f.seek(st)
        f.write(table + b"\0" * (-len(table) % cs))
        f.seek(60)
        f.write(struct.pack(">IQ", count, st))



def overlapping_one_l2(path, count, entries=16384):
    """IMAGE: a fresh qemu-img image with 2 MiB clusters.  COUNT snapshots
    whose L1 tables of ENTRIES entries start one entry apart, each entry
    naming one L2 table (of 0x1 entries) at the end of the file (a hunt
    for per-entry memory)."""
    with open(path, "r+b") as f:
        f.seek(20)
        cs = 1 << struct.unpack(">I", f.read(4))[0]
        f.seek(0, 2)
        l2 = (f.tell() + cs - 1) // cs * cs
        f.seek(l2)
        f.write(struct.pack(">Q", 1) * (cs // 8))
        f.write(struct.pack(">Q", l2) * (entries + count))
        table = b"".join(snapshot_entry(n, l2 + cs + 8 * n, entries)
                         for n in range(count))
        write_snapshot_table(f, table, (f.tell() + cs - 1) // cs * cs,
                             count)

def overlapping_sparse_l1s(path, count):
    """IMAGE: a fresh qemu-img image with 64 KiB clusters.  COUNT snapshots
    whose L1 tables of QEMU's largest size (4 Mi entries) start 4 KiB
    apart, at 1 MiB, in a hole of the file but for the snapshot table,
    which lies inside all of them: a sparse file of 300 KB on disk whose
    tables' entries there name garbage L2 tables (from a review)."""
    l1_size = (32 << 20) // 8
    base = 1 << 20
    snap_off = base + (32 << 20) - CLUSTER
    with open(path, "r+b") as f:
        table = b"".join(snapshot_entry(n, base + n * 4096, l1_size)
                         for n in range(count))
        write_snapshot_table(f, table, snap_off, count)


GENERATORS = {
    "shared-snapshot-l1": (shared_snapshot_l1, 4096),
    "share-snapshot-l1": (share_snapshot_l1, 2),
    "shared-snapshot-l2": (lambda path, count:
                           shared_snapshot_l1(path, count, True), 4096),
    "many-snapshots": (many_snapshots, 65536),
    "many-bitmaps": (many_bitmaps, 65535),
    "bitmaps-one-table": (bitmaps_one_table, 16384),
    "phantom-snapshots": (phantom_snapshots, 65536),
    "sparse-snapshot-l1s": (sparse_snapshot_l1s, 256),
    "copied-snapshots": (copied_snapshots, 500),
    "shared-l2": (shared_l2, 0),
    "leaky-sparse": (leaky_sparse, 0x55),
    "far-l1": (far_l1, 0),
    "one-l2": (one_l2, 0),
    "l2-windows": (l2_windows, 512),
    "zero-l2": (zero_l2, 0),
    "hole-l2": (hole_l2, 0),
    "distant-data": (distant_data, 2048),
    "distant-overflow": (lambda path, count: distant_data(path, count, True),
                         2048),
    "silent-l2": (silent_l2, 65536),
    "silent-cluster0": (silent_cluster0, 16384),
    "compressed-l2": (compressed_l2, 4096),
    "alternating-l2": (alternating_l2, 4096),
    "lone-data-l2": (lone_data_l2, 0),
    "zero-subclusters": (zero_subclusters, 0),
    "counted-cluster0": (counted_cluster0, 65536),
    "far-refcount": (far_refcount, 128),
    "far-bitmap": (far_bitmap, 1 << 20),
    "ones-bitmap": (ones_bitmap, 0),
    "one-run-l1": (one_run_l1, 1),
    "crossed-l2": (crossed_l2, CROSSED_TABLES),
    "overlapping-snapshot-l1s": (overlapping_snapshot_l1s, 1),
    "overlapping-sparse-l1s": (overlapping_sparse_l1s, 4096),
    "overlapping-one-l2": (overlapping_one_l2, 128),
}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in GENERATORS:
        sys.exit(__doc__)
    make, count = GENERATORS[sys.argv[1]]
    make(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else count)


if __name__ == "__main__":
    main()
