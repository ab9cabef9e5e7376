#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The gdb helpers (contrib/gdb/qcow2elf.py) on hostile dumps: a dump from
# a bug report is untrusted input to them as to qcow2elf.  Each dump is a
# real one edited here (sizes, counts and names no qcow2elf writes); each
# command must end within 10 s and 300 MB of peak RSS, with a clear error
# that names the structure, never a Python traceback.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io gdb python3 /usr/bin/time

SCRIPT=$TOP/contrib/gdb/qcow2elf.py
cd "$T_TMP" || finish

# The generator: hostile.py IN.elf CASE OUT.elf.
cat >hostile.py <<'PY'
import struct, sys

src, case, dst = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
shoff, = struct.unpack_from("<Q", b, 40)
shnum, shstrndx = struct.unpack_from("<HH", b, 60)
F = "<IIQQQQIIQQ"


def sh(i):
    return list(struct.unpack_from(F, b, shoff + 64 * i))


def put_sh(i, h):
    struct.pack_into(F, b, shoff + 64 * i, *h)


def name(i):
    s = sh(shstrndx)
    at = s[4] + sh(i)[0]
    return bytes(b[at:b.index(b"\0", at)]).decode()


def find(n):
    return next(i for i in range(shnum) if name(i) == n)


def append(data):
    """DATA at the end of the file (8-aligned); its file offset."""
    b.extend(b"\0" * (-len(b) % 8))
    at = len(b)
    b.extend(data)
    return at


def set_section(n, data, addr=None):
    i = find(n)
    h = sh(i)
    if h[1] == 8:                   # NOBITS: now bytes in the file
        h[1] = 1
    h[4], h[5] = append(data), len(data)
    if addr is not None:
        h[3] = addr
    put_sh(i, h)


def section_bytes(n):
    h = sh(find(n))
    return bytearray(b[h[4]:h[4] + h[5]])


def symbols():
    h = sh(find(".symtab"))
    return h, [list(struct.unpack_from("<IBBHQQ", b, h[4] + 24 * k))
               for k in range(h[5] // 24)]


def set_symbols(syms, strtab=None):
    raw = b"".join(struct.pack("<IBBHQQ", *s) for s in syms)
    set_section(".symtab", raw)
    if strtab is not None:
        set_section(".strtab", strtab)


def sym_addr(n):
    h, syms = symbols()
    st = sh(find(".strtab"))
    for s in syms:
        at = st[4] + s[0]
        if bytes(b[at:b.index(b"\0", at)]) == n.encode():
            return s[4]
    raise KeyError(n)


def header_field(off, fmt, v):
    """A header field of the image, in the dump's .qcow2.header."""
    h = section_bytes(".qcow2.header")
    struct.pack_into(fmt, h, off, v)
    set_section(".qcow2.header", bytes(h))


def entry(n, off, fmt, v):
    """A field of the table entry symbol N (snapshot_0, bitmap_0), in the
    section that holds it."""
    a = sym_addr(n)
    for i in range(shnum):
        h = sh(i)
        if name(i).startswith(".qcow2.") and h[3] <= a < h[3] + h[5]:
            raw = bytearray(b[h[4]:h[4] + h[5]])
            struct.pack_into(fmt, raw, a - h[3] + off, v)
            set_section(name(i), bytes(raw))
            return
    raise KeyError(n)


if case == "name-no-nul":           # a string table with no final NUL
    st = section_bytes(".strtab")
    set_section(".strtab", bytes(st.rstrip(b"\0")) + b"x" * 64)
elif case == "cluster-bits":
    header_field(20, ">I", 0xFFFFFFFF)
elif case == "refcount-order":
    header_field(96, ">I", 40)
elif case == "ext-huge":            # the feature table claims 4 GiB
    h = section_bytes(".qcow2.ext.feature-table")
    struct.pack_into(">I", h, 4, 0xFFFFFFFF)
    set_section(".qcow2.ext.feature-table", bytes(h))
    header_field(72, ">Q", 0xFF)    # incompatible bits to name
elif case == "ext-many":            # 2 MiB clusters of 8-byte extensions
    header_field(20, ">I", 21)
    for off in (72, 80, 88):        # every feature bit set, to be named
        header_field(off, ">Q", (1 << 64) - 1)
    n = (2 << 20) - 0x70
    set_section(".qcow2.ext.feature-table", struct.pack(">II", 1, 0) *
                (n // 8), addr=0x70)
elif case == "snap-count":          # the header counts 2 snapshots
    header_field(60, ">I", 2)
elif case == "bitmap-count":        # the extension counts 3 bitmaps
    h = section_bytes(".qcow2.ext.bitmaps")
    struct.pack_into(">I", h, 8, 3)
    set_section(".qcow2.ext.bitmaps", bytes(h))
elif case == "snap-extra":          # extra_data_size 4 GiB
    entry("snapshot_0", 36, ">I", 0xFFFFFFFF)
elif case == "snap-names":          # 70,000 entries of 128 KiB of names
    h, syms = symbols()
    st = section_bytes(".strtab")
    extra = []
    for k in range(1, 70000):
        extra.append([len(st), 0x11, 0, 0xFFF1, 1 << 40, 40])
        st += b"snapshot_%d\0" % k
    set_symbols(syms + extra, bytes(st))
    set_section(".qcow2.snapshot-table", struct.pack(
        ">QIHHIIQII", 0, 0, 0xFFFF, 0xFFFF, 0, 0, 0, 0, 0), addr=1 << 40)
elif case == "sections-same":       # 30,000 sections and symbols at one place
    h0 = sh(find(".qcow2.l2.0"))
    strs = section_bytes(".shstrtab")
    new = []
    for k in range(30000):
        h = list(h0)
        h[0] = len(strs)
        strs += b".qcow2.l2.x%d\0" % k
        new.append(h)
    hs = [sh(i) for i in range(shnum)]
    hs[shstrndx][4:6] = [append(bytes(strs)), len(strs)]
    h, syms = symbols()
    st = section_bytes(".strtab")
    for k in range(30000):
        syms.append([len(st), 0x11, 0, 0xFFF1, h0[3], h0[5]])
        st += b"l2_alias_%d\0" % k
    hs[find(".symtab")][4:6] = [append(b"".join(
        struct.pack("<IBBHQQ", *s) for s in syms)), 24 * len(syms)]
    hs[find(".strtab")][4:6] = [append(bytes(st)), len(st)]
    allh = hs + new
    newoff = append(b"".join(struct.pack(F, *h) for h in allh))
    struct.pack_into("<Q", b, 40, newoff)   # e_shnum 0: the count in
    struct.pack_into("<H", b, 60, 0)        # section 0's sh_size
    struct.pack_into("<Q", b, newoff + 32, len(allh))
elif case == "type-name":           # a DWARF type no qcow2elf writes
    i = b.index(b"qcow2_refcount_block_4\0")
    b[i + 21] = 0x1b
else:
    sys.exit("no case " + case)
open(dst, "wb").write(b)
PY

qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 0x11 0 128k' img.qcow2 >/dev/null
qemu-img snapshot -c s1 img.qcow2
qemu-img bitmap --add img.qcow2 b0
"$Q2E" dump img.qcow2 -o base.elf
qemu-img create -q -f qcow2 -o refcount_bits=4 r4.qcow2 64M
"$Q2E" dump r4.qcow2 -o r4.elf

# run CASE COMMAND: COMMAND on CASE's dump (made from $BASE), the helpers
# sourced (as the README says to for dumps from elsewhere); its output in
# $out, and a failure unless it ended within 10 s and 300 MB with no
# traceback.
BASE=base.elf
run() {
	local rc rss
	[ -f "$1.elf" ] || python3 hostile.py "$BASE" "$1" "$1.elf" ||
		{ fail "$1: the generator"; return; }
	out=$(timeout 10 /usr/bin/time -o "$1.rss" -f %M gdb -nx -batch \
		-iex 'set auto-load python-scripts off' -ex "source $SCRIPT" \
		-ex "$2" "$1.elf" 2>&1)
	rc=$?
	rss=$(tail -1 "$1.rss" 2>/dev/null)
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		fail "$1: '$2' ends within 10 s"
	elif [ "${rss:-0}" -gt 307200 ]; then
		fail "$1: '$2' within 300 MB of peak RSS" "$rss KB"
	else
		case $out in
		*Traceback* | *"Python Exception"*)
			fail "$1: '$2' gives no Python traceback" "$(printf '%s' "$out" | grep -m3 'Python\|Error')" ;;
		*) pass "$1: '$2' within 10 s and 300 MB ($rss KB), no traceback" ;;
		esac
	fi
}

run name-no-nul 'qcow2 regions'
assert_match "a name with no NUL: the symbol and offset" "name-no-nul.elf': symbol [0-9]+: no name of at most 4096 bytes at offset 0x[0-9a-f]+ of its string table" "$out"
for cmd in 'qcow2 info' 'qcow2 translate 0' 'p l2_table_0[0]'; do
	run cluster-bits "$cmd"
done
assert_match "cluster_bits 2^32-1: the field and its offset" "cluster_bits \(offset 0x14\) is 4294967295, not QEMU's 9 to 21" "$(run cluster-bits 'qcow2 info'; echo "$out")"
run refcount-order 'qcow2 refcount 0'
assert_match "refcount_order 40: the field" "refcount_order \(offset 0x60\) is 40, past QEMU's 6" "$out"
run ext-huge 'qcow2 info'
assert_match "a 4 GiB header extension: where it is" "header extension 0x6803f857 at 0x70: its 4294967295 bytes run past the first cluster \(0x10000\)" "$out"
run ext-many 'qcow2 info'
assert_match "262,000 header extensions: every feature bit named" "^autoclear features +bitmaps, raw external data, unknown bit 2, " "$out"
assert_match "and the last extension listed" "^extension 0x00000001 at 0x1ffff8, 0 bytes: unknown$" "$out"
for cmd in 'qcow2 snapshots' 'qcow2 translate 0 1'; do
	run snap-extra "$cmd"
	assert_match "snapshot extra_data_size 4 GiB: '$cmd' names the entry" "snapshot_0 at 0x80000: extra_data_size 4294967295 is over QEMU's 1024" "$out"
done
# Fewer entries in the dump than the header counts (qcow2elf stopped at
# one it could not read): said, not a shorter list alone.
run snap-count 'qcow2 snapshots'
assert_eq "nb_snapshots 2, one entry in the dump: said" \
	"qcow2_header.nb_snapshots is 2, but the dump holds 1 (qcow2elf check on the image says why)" \
	"$(tail -1 <<<"$out")"
run bitmap-count 'qcow2 bitmaps'
assert_eq "nb_bitmaps 3, one entry in the dump: said" \
	"ext_bitmaps.nb_bitmaps is 3, but the dump holds 1 (qcow2elf check on the image says why)" \
	"$(tail -1 <<<"$out")"
run snap-names 'qcow2 snapshots'
assert_match "70,000 snapshots of 128 KiB names: stops at the dump's size" "snapshots 0 to [0-9]+ take [0-9]+ bytes, more than QEMU's limit \(67108864\) or the dump's size" "$out"
run sections-same 'qcow2 regions'
assert_eq "30,000 sections at one place: each listed, its owners once" 30000 "$(grep -c '^\.qcow2\.l2\.x' <<<"$out")"
BASE=r4.elf run type-name 'p refcount_block_0'
assert_match "a refcount block type of no known width: gdb's own view" '^\$1 = \{bytes = ' "$out"
finish
