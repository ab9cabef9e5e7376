#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `dump`: what users do with the ELF file, checked with the real binutils,
# gdb, eu-elflint and llvm-dwarfdump against the bytes of the image.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/corpus.sh"
. "$TOP/tests/lib/patch.sh"
need qemu-img qemu-io jq readelf objdump objcopy gdb eu-elflint llvm-dwarfdump od

cd "$T_TMP" || finish

be() {	# be FILE OFFSET BYTES: the big-endian integer there, in decimal
	local v=0 b
	for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do v=$((v * 256 + b)); done
	echo "$v"
}

# evict FILE: its pages out of the page cache (written back first), so
# that SEEK_DATA tells fallocated extents as holes, as FIEMAP does.
evict() {
	sync "$1" 2>/dev/null || sync
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$1"
}

# Sections of a dump: "name addr size type" per line, from readelf.
sections() {
	readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] \(\.qcow2\.[^ ]*\) *\([A-Z]*\) *\([0-9a-f]*\) [0-9a-f]* \([0-9a-f]*\) .*/\1 \2 \3 \4/p' |
		while read -r n t a s; do echo "$n $((16#$a)) $((16#$s)) $t"; done
}

# The image of the issue: snapshots, bitmaps, compressed, zero clusters.
qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 0x11 0 128k' -c 'write -z 1M 64k' -c 'write -c 2M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c "first snap" img.qcow2
qemu-io -c 'write -P 0x22 4M 64k' img.qcow2 >/dev/null
qemu-img snapshot -c second img.qcow2
qemu-img bitmap --add img.qcow2 b0
qemu-io -c 'write -P 0x33 8M 64k' img.qcow2 >/dev/null
qemu-img bitmap --add img.qcow2 b1
qemu-img snapshot -c third img.qcow2	# shares the active L2 table
cp img.qcow2 img.orig

assert_status "dump exits 0" 0 "$Q2E" dump img.qcow2 -o img.elf
assert_eq "dump prints nothing" "" "$(cat "$T_TMP/.out" "$T_TMP/.err")"
assert_status "the image is not written" 0 cmp img.qcow2 img.orig

# readelf and objdump list every region, without a warning.
readelf -SW img.elf >readelf.out 2>readelf.err
assert_eq "readelf -SW: no warning" "" "$(cat readelf.err)"
objdump -h img.elf >objdump.out 2>objdump.err
assert_eq "objdump -h: no warning" "" "$(cat objdump.err)"
sections img.elf >secs
l1_off=$(be img.qcow2 40 8) l1_size=$(be img.qcow2 36 4)
rt_off=$(be img.qcow2 48 8) rt_clusters=$(be img.qcow2 56 4)
sn_off=$(be img.qcow2 64 8) cs=$((1 << $(be img.qcow2 20 4)))
assert_eq "header section at 0, header_length long" ".qcow2.header 0 $(be img.qcow2 100 4) PROGBITS" "$(grep '^.qcow2.header ' secs)"
assert_eq "L1 section at l1_table_offset" ".qcow2.l1 $l1_off $((l1_size * 8)) PROGBITS" "$(grep '^.qcow2.l1 ' secs)"
assert_eq "refcount table section" ".qcow2.refcount-table $rt_off $((rt_clusters * cs)) PROGBITS" "$(grep '^.qcow2.refcount-table ' secs)"
assert_match "snapshot table section at snapshots_offset" "^.qcow2.snapshot-table $sn_off " "$(cat secs)"
for i in $(seq 0 $((l1_size - 1))); do
	l2=$(( $(be img.qcow2 $((l1_off + 8 * i)) 8) & 0x00fffffffffffe00 ))
	[ "$l2" = 0 ] && continue
	assert_eq "L2 table $i has its section" ".qcow2.l2.$i $l2 $cs PROGBITS" "$(grep "^.qcow2.l2.$i " secs)"
	assert_match "objdump -h lists .qcow2.l2.$i" "\.qcow2\.l2\.$i +0*$(printf %x $cs) +0*$(printf %x "$l2")" "$(cat objdump.out)"
done
rb0=$(( $(be img.qcow2 "$rt_off" 8) & ~511 ))
assert_eq "refcount block 0 has its section" ".qcow2.refcount-block.0 $rb0 $cs PROGBITS" "$(grep '^.qcow2.refcount-block.0 ' secs)"
for n in 0 1; do
	assert_match "snapshot $n's L1 has its section" "^\.qcow2\.snapshot\.$n\.l1 " "$(cat secs)"
	assert_match "bitmap $n's table has its section" "^\.qcow2\.bitmap\.$n\.table " "$(cat secs)"
done

# objcopy gives the image's bytes for every section; a NOBITS one (no
# bytes to give) stands for zeros in the image.
args=() k=0
while read -r n a s t; do
	[ "$t" = NOBITS ] || args+=(--dump-section "$n=sec.$k")
	k=$((k + 1))
done <secs
objcopy "${args[@]}" img.elf tmp.elf
k=0 bad=
while read -r n a s t; do
	[ "$t" = NOBITS ] && head -c "$s" /dev/zero >"sec.$k"
	cmp -s "sec.$k" <(dd if=img.qcow2 bs=1 skip="$a" count="$s" 2>/dev/null) || bad="$bad $n"
	k=$((k + 1))
done <secs
assert_eq "objcopy --dump-section gives the image's bytes for all $k sections" "" "$bad"

# gdb_each FILE CMD...: runs each gdb command on FILE and sets g[i] to what
# command i printed ("$N = " taken off), "" if it printed nothing: each
# output follows a marker, so that a command that fails (its error goes to
# gdb.err) leaves its own g[i] empty and the others where they belong.
gdb_each() {
	local file=$1 i=0 cur= line
	local -a ex=()
	shift
	g=()
	for c in "$@"; do
		ex+=(-ex "echo @@$i\\n" -ex "$c")
		g[i]=
		i=$((i + 1))
	done
	gdb -nx -batch -iex 'set auto-load python-scripts off' "${ex[@]}" \
		"$file" >gdb.out 2>gdb.err
	while IFS= read -r line; do
		if [[ $line =~ ^@@([0-9]+)$ ]]; then
			cur=${BASH_REMATCH[1]}
		elif [ -n "$cur" ]; then
			[[ $line =~ ^\$[0-9]+\ =\ (.*)$ ]] && line=${BASH_REMATCH[1]}
			g[cur]+=$line
		fi
	done <gdb.out
}

# gdb prints structures by name, with the image's values.
gdb_each img.elf 'p qcow2_header.size' 'p qcow2_header.l1_table_offset' \
	'p/x l1_table[0]' 'p refcount_block_0[2]' 'p snapshot_0' \
	'p bitmap_1' "info symbol $l1_off" 'p l2_table_0[0].standard.host_offset' \
	'p l2_table_0[32].standard.compressed' 'p l2_table_0[16].standard.zero' \
	'p snapshot_2_l2_table_0[0].raw == l2_table_0[0].raw'
assert_eq "gdb: no warning" "" "$(grep -v '^$' gdb.err)"
vsize=$(qemu-img info --output=json img.qcow2 | jq '."virtual-size"')
assert_eq "gdb: p qcow2_header.size is the virtual size" "$vsize" "${g[0]}"
assert_eq "gdb: p qcow2_header.l1_table_offset" "$l1_off" "${g[1]}"
l1e=$(be img.qcow2 "$l1_off" 8)
assert_match "gdb: p/x l1_table[0] shows the raw entry and its L2 offset" "raw = $(printf 0x%x "$l1e"), bits = \{copied = $(printf 0x%x $(((l1e >> 63) & 1))), reserved_high = 0x0, l2_offset = $(printf 0x%x $((l1e & 0xffffffffffffff))), reserved = 0x0\}" "${g[2]}"
assert_eq "gdb: p refcount_block_0[2] is the stored refcount" "$(be img.qcow2 $((rb0 + 4)) 2)" "${g[3]}"
assert_match "gdb: p snapshot_0 has the id and name" 'id_str = "1", name = "first snap"' "${g[4]}"
assert_match "gdb: p snapshot_0 has the disk size" "disk_size = $vsize" "${g[4]}"
assert_match "gdb: p bitmap_1 has its name and granularity" 'granularity_bits = 16.*name = "b1"' "${g[5]}"
assert_eq "gdb: info symbol names the L1 table" "l1_table in section .qcow2.l1" "${g[6]}"
data0=$(qemu-img map --output=json img.qcow2 | jq 'map(select(.start == 0))[0].offset')
assert_eq "gdb: L2 entry 0's host offset is where qemu-img map puts guest 0" "$data0" "${g[7]}"
assert_eq "gdb: L2 entry 32 is compressed" "1" "${g[8]}"
assert_eq "gdb: L2 entry 16 reads as zeros" "1" "${g[9]}"
assert_eq "gdb: the snapshot's L2 symbol reads the shared table" "1" "${g[10]}"

# Shared tables: one section, a symbol per owner.
assert_eq "a table shared with a snapshot has one section" "" "$(grep '^.qcow2.snapshot.2.l2.0 ' secs)"
assert_match "a snapshot's own L2 table has its section" "^\.qcow2\.snapshot\.0\.l2\.0 " "$(cat secs)"
syms=$(readelf -sW img.elf)
assert_match "l2_table_0 is a symbol" "OBJECT +GLOBAL +DEFAULT +[0-9]+ l2_table_0$" "$syms"
assert_match "snapshot_2_l2_table_0 is a symbol" " snapshot_2_l2_table_0$" "$syms"
assert_eq "both symbols are at the same address" "1" "$(readelf -sW img.elf | awk '$8 == "l2_table_0" || $8 == "snapshot_2_l2_table_0" {print $2}' | sort -u | wc -l)"

# Checkers.
assert_status "eu-elflint --gnu-ld --strict reports no error" 0 eu-elflint --gnu-ld --strict img.elf
assert_match "llvm-dwarfdump --verify reports no error" "No errors" "$(llvm-dwarfdump --verify img.elf 2>&1)"
assert_match "readelf -n shows the image facts" "qcow2elf:file-size=$(stat -c %s img.qcow2)" "$(readelf -nW img.elf)"

# Deterministic.
"$Q2E" dump img.qcow2 -o again.elf
assert_status "the same image dumped twice is byte-identical" 0 cmp img.elf again.elf

# --no-data: the same sections, without their bytes.
"$Q2E" dump --no-data img.qcow2 -o nodata.elf
sections nodata.elf >nsecs
assert_eq "--no-data keeps every section name, address and size" "$(cut -d' ' -f1-3 secs)" "$(cut -d' ' -f1-3 nsecs)"
assert_eq "--no-data sections are NOBITS" "NOBITS" "$(cut -d' ' -f4 nsecs | sort -u)"
assert_status "--no-data dump passes eu-elflint" 0 eu-elflint --gnu-ld --strict nodata.elf
assert_status "info refuses a --no-data dump" 1 "$Q2E" info nodata.elf
assert_match "and says why" "no-data" "$(cat "$T_TMP/.err")"

# The output is complete or absent.
echo precious >keep.elf
printf 'not an image' >bad.img
assert_status "dump of a bad input fails" 1 "$Q2E" dump bad.img -o keep.elf
assert_eq "and leaves the existing output as it was" "precious" "$(cat keep.elf)"
assert_status "dump into a missing directory fails" 1 "$Q2E" dump img.qcow2 -o nodir/x.elf
assert_eq "and says so" "qcow2elf: 'nodir/x.elf': cannot create it: its directory does not exist" \
	"$(cat "$T_TMP/.err")"
assert_eq "no temporary file is left behind" "" "$(ls | grep '\.tmp')"
assert_status "dump without -o is a usage error" 1 "$Q2E" dump img.qcow2
# The input is never written: not even when -o names it.
cp img.qcow2 self.qcow2
ln -s self.qcow2 self-link.qcow2
assert_status "dump onto its own input is refused" 1 "$Q2E" dump self.qcow2 -o ./self.qcow2
assert_match "naming the file" "'./self.qcow2' is the input file" "$(cat "$T_TMP/.err")"
assert_status "dump onto a link to its input is refused" 1 "$Q2E" dump self.qcow2 -o self-link.qcow2
assert_status "the input is untouched" 0 cmp img.qcow2 self.qcow2

# A region that runs past the end of the file: the bytes that exist.
rt_end=$((rt_off + rt_clusters * cs))
head -c $((rt_off + 4096)) img.qcow2 >cut.qcow2
"$Q2E" dump cut.qcow2 -o cut.elf 2>cut.err
assert_eq "dump of a truncated image succeeds" 0 $?
assert_match "and warns naming the structure and offset" "refcount_table at $(printf 0x%x "$rt_off").*past the end of the file" "$(cat cut.err)"
assert_eq "its section holds the bytes that exist" ".qcow2.refcount-table $rt_off 4096 PROGBITS" "$(sections cut.elf | grep '^.qcow2.refcount-table ')"

# Every command reads the dump like the image.
for cmd in info map; do
	"$Q2E" $cmd --output=json img.qcow2 | jq -S 'if type == "object" then del(.filename, .source, ."image-filename") else . end' >a.json
	"$Q2E" $cmd --output=json img.elf | jq -S 'if type == "object" then del(.filename, .source, ."image-filename") else . end' >b.json
	assert_same_file "$cmd says the same of the dump as of the image" a.json b.json
done
assert_eq "info of the dump names the image it came from" '"img.qcow2"' "$("$Q2E" info --output=json img.elf | jq '."image-filename"')"

# One corpus image: its dump is valid ELF and reads back like the image.
# One case: a failed step fails it, and it is not also counted as passed.
dump_case() {
	local name=$1 kind=$2 f
	f=corpus/$name
	if [ "$kind" = plain ]; then
		# A dump records the file's data extents as they are on disk
		# (fallocated ones as holes), not as the page cache shows
		# them to SEEK_DATA: its map is qemu-img's of the image with
		# its pages evicted.  (qcow2elf map reads ahead, which can
		# bring those pages back before it asks.)
		evict "$f"
		(cd corpus && qemu-img map --output=json "$name") >a.map 2>&1
	fi
	"$Q2E" dump "$f" -o "$f.elf" 2>/dev/null || { fail "$name: dump exits 0"; return 1; }
	eu-elflint --gnu-ld --strict "$f.elf" >/dev/null 2>&1 || fail "$name: eu-elflint" "$(eu-elflint --gnu-ld --strict "$f.elf" 2>&1 | head -3)"
	llvm-dwarfdump --verify "$f.elf" 2>&1 | grep -q "No errors" || fail "$name: llvm-dwarfdump --verify"
	[ -z "$(readelf -SW "$f.elf" 2>&1 >/dev/null)" ] || fail "$name: readelf warns"
	"$Q2E" info --output=json "$f" | jq -S 'del(.filename, .source, ."image-filename")' >a.json
	"$Q2E" info --output=json "$f.elf" | jq -S 'del(.filename, .source, ."image-filename")' >b.json
	cmp -s a.json b.json || fail "$name: info of the dump differs" "$(diff a.json b.json | head -5)"
	if [ "$kind" = plain ]; then
		(cd corpus && "$Q2E" map --output=json "$name.elf") >b.map 2>&1
		cmp -s a.map b.map || fail "$name: map of the dump differs" "$(diff a.map b.map | head -4)"
		# The human form names the files the data is in: the image's
		# (the dump holds none, and names the image as dump was given
		# it), its backing and data files.
		# The image at rest, as the dump records it (see above).
		(cd corpus && "$Q2E" dump "$name" -o "$name.here.elf") 2>/dev/null
		evict "$f"
		(cd corpus && "$Q2E" map "$name") >a.hmap 2>&1
		(cd corpus && "$Q2E" map "$name.here.elf") >b.hmap 2>&1
		cmp -s a.hmap b.hmap || fail "$name: human map of the dump differs" "$(diff a.hmap b.hmap | head -4)"
	fi
	if [ "$kind" = plain ]; then
		(cd corpus && "$Q2E" check --output=json "$name" 2>/dev/null) | jq -S 'del(.filename)' >a.chk
		ra=${PIPESTATUS[0]}
		(cd corpus && "$Q2E" check --output=json "$name.elf" 2>/dev/null) | jq -S 'del(.filename)' >b.chk
		rb=${PIPESTATUS[0]}
		[ "$ra" = "$rb" ] && cmp -s a.chk b.chk ||
			fail "$name: check of the dump differs" "exit $ra vs $rb" "$(diff a.chk b.chk | head -4)"
	fi
	pass "$name: dump valid and reads back like the image"
}

# Out of memory while dumping (libdwarf once called abort(), exit 134; it
# now describes only the types, which take little, and the variables are
# written by src/emit/dwarf_vars.c): a dump of ~17,000 sections under
# address-space limits from too little to enough.  Each run either
# succeeds or exits 1 with a message and leaves no output behind; some
# limit fails and some succeeds, so the range covers the dump's own
# allocations, not only the start of the process.
low_memory_case() {
	local v rc failed=0 succeeded=0

	python3 -c "
import sys
with open(sys.argv[1], 'wb') as f:
    f.truncate(512 << 20)
    for o in range(0, 512 << 20, 32768):
        f.seek(o); f.write(b'x')
" many.raw
	qemu-img convert -f raw -O qcow2 -o cluster_size=512 many.raw many.qcow2
	rm -f many.raw
	for v in $(seq 4000 250 12000); do
		rm -rf lowmem && mkdir lowmem
		( ulimit -v "$v"; "$Q2E" dump many.qcow2 -o lowmem/out.elf ) \
			2>lowmem.err
		rc=$?
		if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
			fail "dump at ulimit -v $v exits 0 or 1" "exit $rc" "$(head -3 lowmem.err)"
			return
		fi
		if [ "$rc" -eq 1 ]; then
			grep -q 'qcow2elf: .*' lowmem.err ||
				{ fail "dump at ulimit -v $v says why it failed" "$(cat lowmem.err)"; return; }
			[ -z "$(ls lowmem)" ] ||
				{ fail "dump at ulimit -v $v leaves no output" "$(ls lowmem)"; return; }
			failed=1
		else
			succeeded=1
		fi
	done
	[ "$failed" = 1 ] && [ "$succeeded" = 1 ] ||
		fail "the limits from 4 to 12 MB make dump fail and succeed" \
			"failed=$failed succeeded=$succeeded"
	rm -f many.qcow2
}
t_case "out of memory while writing a dump: exit 1, a message, no output" low_memory_case

# The same image gives the same dump whatever the page cache holds: an
# image with fallocated (unwritten) clusters is dumped, read whole (which
# puts those clusters in the page cache, where SEEK_DATA then calls them
# data on ext4 and xfs), and dumped again.
page_cache_case() {
	qemu-img create -q -f qcow2 -o preallocation=falloc falloc.qcow2 64M
	qemu-io -c 'write -P 0x44 1M 64k' falloc.qcow2 >/dev/null
	sync
	"$Q2E" dump falloc.qcow2 -o falloc1.elf || return 1
	cat falloc.qcow2 >/dev/null
	"$Q2E" dump falloc.qcow2 -o falloc2.elf || return 1
	assert_status "dumps before and after the image is read are the same" 0 \
		cmp falloc1.elf falloc2.elf
	evict falloc.qcow2
	qemu-img map --output=json falloc.qcow2 >falloc.map
	"$Q2E" map --output=json falloc2.elf >falloc2.map
	assert_same_file "and its map is qemu-img's of the image at rest" \
		falloc.map falloc2.map
	rm -f falloc.qcow2
}
t_case "a dump does not depend on the page cache" page_cache_case

# holds_image_bytes DUMP IMAGE: every region section of DUMP has IMAGE's
# bytes at its address (a NOBITS one, zeros); prints the sections that
# do not.
holds_image_bytes() {
	local n a s t k=0 bad=
	local -a args=()
	sections "$1" >hib.secs
	while read -r n a s t; do
		[ "$t" = NOBITS ] || args+=(--dump-section "$n=hib.$k")
		k=$((k + 1))
	done <hib.secs
	# (objcopy warns of sections that overlap in addresses: not ours)
	objcopy "${args[@]}" "$1" hib.tmp.elf 2>/dev/null
	k=0
	while read -r n a s t; do
		[ "$t" = NOBITS ] && head -c "$s" /dev/zero >"hib.$k"
		cmp -s "hib.$k" <(dd if="$2" bs=1 skip="$a" count="$s" 2>/dev/null) || bad="$bad $n"
		rm -f "hib.$k"
		k=$((k + 1))
	done <hib.secs
	echo "$bad"
}

# A region of zeros found after others were written: the layout changes
# (its section is NOBITS) and the dump is made again, the same every time
# and whatever the file written over held.
zero_region_case() {
	local l1 l2
	qemu-img create -q -f qcow2 -o cluster_size=4k zr.qcow2 64M
	qemu-io -c 'write -P 0x11 0 4k' -c 'write -P 0x22 32M 4k' \
		-c 'write -P 0x33 48M 4k' zr.qcow2 >/dev/null
	# The L2 table of 32M (index 16: 4k clusters map 2M a table) zeroed.
	l1=$(be zr.qcow2 40 8)
	l2=$(( $(be zr.qcow2 $((l1 + 8 * 16)) 8) & 0x00fffffffffffe00 ))
	dd if=/dev/zero of=zr.qcow2 bs=4096 seek=$((l2 / 4096)) count=1 \
		conv=notrunc 2>/dev/null
	"$Q2E" dump zr.qcow2 -o zr.elf || { fail "dump of an image with an L2 table of zeros exits 0"; return; }
	assert_eq "that L2 table is a NOBITS section" ".qcow2.l2.16 $l2 4096 NOBITS" \
		"$(sections zr.elf | grep '^.qcow2.l2.16 ')"
	assert_eq "the L2 table after it holds its bytes" "PROGBITS" \
		"$(sections zr.elf | grep '^.qcow2.l2.24 ' | cut -d' ' -f4)"
	assert_eq "every section holds the image's bytes" "" "$(holds_image_bytes zr.elf zr.qcow2)"
	assert_match "eu-elflint accepts it" "No errors" "$(eu-elflint --gnu-ld --strict zr.elf 2>&1)"
	"$Q2E" dump zr.qcow2 -o zr2.elf
	assert_status "dumped again: the same bytes" 0 cmp zr.elf zr2.elf
	head -c $(( $(stat -c %s zr.elf) + 65536 )) /dev/urandom >zr3.elf
	"$Q2E" dump zr.qcow2 -o - 1<>zr3.elf
	assert_status "written over a longer file of other bytes: the same bytes" 0 cmp zr.elf zr3.elf
}
t_case "a region of zeros after others: NOBITS, and the dump is the same" zero_region_case

# has_hole FILE OFFSET LENGTH: whether FILE has a hole in that range.
has_hole() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
off, end = int(sys.argv[2]), int(sys.argv[2]) + int(sys.argv[3])
print("yes" if os.lseek(fd, off, os.SEEK_HOLE) < end else "no")' "$@"
}

# Tables mostly empty (one cluster written): their zeros at the end are
# not written, and read back as zeros.
zero_tail_case() {
	local off size
	qemu-img create -q -f qcow2 zt.qcow2 1G
	qemu-io -c 'write -P 0x44 0 64k' zt.qcow2 >/dev/null
	"$Q2E" dump zt.qcow2 -o zt.elf || { fail "dump of a mostly empty image exits 0"; return; }
	read -r off size < <(readelf -SW zt.elf | sed -n 's/.* \.qcow2\.l2\.0 *PROGBITS *[0-9a-f]* \([0-9a-f]*\) \([0-9a-f]*\) .*/\1 \2/p' |
		while read -r o s; do echo $((16#$o)) $((16#$s)); done)
	assert_eq "the L2 table is a 64 KiB section" 65536 "$size"
	assert_eq "its zeros are a hole in the dump" yes "$(has_hole zt.elf "$off" "$size")"
	assert_eq "every section holds the image's bytes" "" "$(holds_image_bytes zt.elf zt.qcow2)"
	"$Q2E" dump zt.qcow2 -o - | cat >zt2.elf
	assert_status "through a pipe (no holes there): the same bytes" 0 cmp zt.elf zt2.elf
	gdb_each zt.elf 'p l2_table_0[0].standard.host_offset != 0' 'p l2_table_0[8191].raw'
	assert_eq "gdb reads the table, its zeros too" "1 0" "${g[0]} ${g[1]}"
}
t_case "a table's zeros at its end are a hole in the dump" zero_tail_case

# file_offset DUMP SECTION: the section's sh_offset, in decimal.
file_offset() {
	readelf -SW "$1" | sed -n "s/^ *\[ *[0-9]*\] $2 *[A-Z]* *[0-9a-f]* \([0-9a-f]*\) .*/\1/p" |
		while read -r o; do echo $((16#$o)); done
}

# Metadata that overlaps, in an image qemu-img made: a snapshot's L1 table
# moved onto the refcount table, so that its L2 table is the refcount
# block.  Each structure keeps its section; the sections that cover the
# same bytes share one copy of them in the file.
overlap_case() {
	local rt st rb
	qemu-img create -q -f qcow2 ov.qcow2 64M
	qemu-io -c 'write -P 0x55 0 64k' ov.qcow2 >/dev/null
	qemu-img snapshot -c s ov.qcow2
	rt=$(be ov.qcow2 48 8)
	st=$(be ov.qcow2 64 8)
	put64 ov.qcow2 "$st" "$rt"
	"$Q2E" dump ov.qcow2 -o ov.elf || { fail "dump of overlapping metadata exits 0"; return; }
	assert_eq "the snapshot's L1 table and the refcount table share their bytes" \
		"$(file_offset ov.elf .qcow2.refcount-table)" \
		"$(file_offset ov.elf .qcow2.snapshot.0.l1)"
	assert_eq "so do its L2 table and the refcount block" \
		"$(file_offset ov.elf .qcow2.refcount-block.0)" \
		"$(file_offset ov.elf '.qcow2.snapshot.0.l2.0')"
	assert_match "eu-elflint accepts sections that share file bytes" "No errors" \
		"$(eu-elflint --gnu-ld --strict ov.elf 2>&1)"
	assert_eq "readelf says nothing of them" "" "$(readelf -SW ov.elf 2>&1 >/dev/null)"
	assert_eq "every section holds the image's bytes" "" "$(holds_image_bytes ov.elf ov.qcow2)"
	rb=$(printf 0x%x "$(be ov.qcow2 "$rt" 8)")
	gdb_each ov.elf 'p/x snapshot_0_l1_table[0].raw' 'p/x refcount_table[0]'
	assert_eq "gdb reads the shared bytes under both names" "$rb $rb" \
		"${g[0]} ${g[1]}"
	"$Q2E" check --output=json ov.qcow2 2>/dev/null | jq -S 'del(.filename)' >ov.a
	"$Q2E" check --output=json ov.elf 2>/dev/null | jq -S 'del(.filename)' >ov.b
	assert_same_file "check reads the dump like the image" ov.a ov.b
	"$Q2E" restore ov.elf -o ov.restored --force 2>/dev/null
	assert_eq "restore puts back every structure" "0" \
		"$("$Q2E" diff --output=json ov.qcow2 ov.restored | jq .differences)"
}
t_case "overlapping metadata: one copy of the bytes, a section each" overlap_case

# The whole corpus: every dump is valid and reads back like its image.
# QEMU's map looks at the file's holes when st_blocks says the image is
# preallocated; st_blocks settles only after writeback, so sync first and
# take the image's map right before its dump.
if corpus_build "$T_TMP/corpus" 2>corpus.err && sync; then
	while read -r name kind; do
		t_case "$name: dump" dump_case "$name" "$kind"
	done <corpus/corpus.list
	# The note keeps QEMU's guess about preallocated metadata, not the
	# file's st_blocks, which change as the file system settles.
	assert_match "the note says the preallocated image is one" \
		"qcow2elf:metadata-preallocation=1 " \
		"$(readelf -nW corpus/prealloc-metadata.qcow2.elf)"
	assert_match "and that a plain image is not" \
		"qcow2elf:metadata-preallocation=0 " "$(readelf -nW corpus/v3.qcow2.elf)"
	assert_eq "no st_blocks in the note" "" \
		"$(readelf -nW corpus/v3.qcow2.elf | grep allocated-size)"
else
	fail "corpus built" "$(cat corpus.err)"
fi

# A dump over an existing file replaces it by rename(): readers holding
# the old file keep it, other links to it keep it, the mode stays, no
# temporary name is left.
replace_case() {
	local ino
	qemu-img create -q -f qcow2 rp.qcow2 64M
	qemu-io -c 'write -P 0x11 0 64k' rp.qcow2 >/dev/null
	"$Q2E" dump rp.qcow2 -o rp.elf || { fail "first dump exits 0"; return; }
	chmod 0640 rp.elf
	cp rp.elf rp.first
	ln rp.elf rp.link
	ino=$(stat -c %i rp.elf)
	exec 3<rp.elf
	qemu-img snapshot -c s rp.qcow2
	"$Q2E" dump rp.qcow2 -o rp.elf
	assert_eq "a dump over an existing one exits 0" 0 $?
	assert_match "the file is the new dump" '\.qcow2\.snapshot-table' \
		"$(readelf -SW rp.elf)"
	assert_status "a reader that had it open still reads the old one" 0 \
		cmp rp.first - <&3
	exec 3<&-
	assert_status "another link to the old file still holds it" 0 \
		cmp rp.first rp.link
	assert_eq "and is its only name now: no temporary name holds it" \
		"$ino 1" "$(stat -c '%i %h' rp.link)"
	assert_eq "the replaced file's mode is kept" 640 "$(stat -c %a rp.elf)"
	assert_eq "no temporary file is left beside it" "" \
		"$(ls -a | grep '^rp\.elf\.')"
}
t_case "dump over an existing file replaces it atomically" replace_case

# Each symbol's DWARF type (symbols of one type share it: the dump keeps one
# symbol of each) is the size of its symbol, and each symbol is a variable
# at its address: snapshots and bitmaps of different sizes, and many L2
# tables and refcount blocks of one.
types_case() {
	local syms cmds out want
	qemu-img create -q -f qcow2 -o cluster_size=4k ty.qcow2 64M
	qemu-io -c 'write 0 64k' -c 'write 8M 4k' -c 'write 40M 4k' ty.qcow2 >/dev/null
	qemu-img snapshot -c a ty.qcow2
	qemu-io -c 'write 20M 4k' ty.qcow2 >/dev/null
	qemu-img snapshot -c a-much-longer-snapshot-name ty.qcow2
	qemu-img bitmap --add ty.qcow2 b
	qemu-img bitmap --add -g 65536 ty.qcow2 bitmap-with-a-longer-name
	"$Q2E" dump ty.qcow2 -o ty.elf || { fail "dump exits 0"; return; }
	syms=$(readelf -sW ty.elf | awk '$4 == "OBJECT" {print $8, $3, $2}')
	assert_match "symbols of both snapshots and both bitmaps" \
		'snapshot_1 .*bitmap_1 ' "$(tr '\n' ' ' <<<"$syms")"
	cmds=() want=
	while read -r name size addr; do
		cmds+=(-ex "p sizeof($name)" -ex "p/x &$name")
		want+="$size $((16#$addr))"$'\n'
	done <<<"$syms"
	out=$(gdb -nx -batch -iex 'set auto-load python-scripts off' "${cmds[@]}" ty.elf 2>&1 |
		sed 's/^\$[0-9]* = //' | paste -d' ' - - |
		while read -r size addr; do echo "$size $((addr))"; done)
	assert_eq "gdb: each of $(wc -l <<<"$syms") variables has its symbol's size and address" \
		"${want%$'\n'}" "$out"
}
t_case "each symbol's DWARF variable has its size and address" types_case
# evict_from FILE OFFSET: the pages of FILE from OFFSET on out of the
# page cache.
evict_from() {
	python3 -c 'import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, int(sys.argv[2]), 0, os.POSIX_FADV_DONTNEED)' "$@"
}

# Many tables (512 L2 tables of 4 KiB, 2 MiB apart) are copied by two
# threads, the second reading only what the page cache holds and the
# first reading the rest after its own half: the dump is the same with
# the image cached, not cached, or cached up to three quarters, and any
# L2 table of zeros (one in each half) is found by either thread.
two_threads_case() {
	local l1 l2 k size
	qemu-img create -q -f qcow2 -o cluster_size=4k,preallocation=metadata tt.qcow2 1G
	l1=$(be tt.qcow2 40 8)
	for k in 100 400; do
		l2=$(( $(be tt.qcow2 $((l1 + 8 * k)) 8) & 0x00fffffffffffe00 ))
		dd if=/dev/zero of=tt.qcow2 bs=4096 seek=$((l2 / 4096)) count=1 \
			conv=notrunc 2>/dev/null
	done
	sync tt.qcow2 2>/dev/null || sync
	"$Q2E" dump tt.qcow2 -o tt.elf || { fail "dump of 512 tables exits 0"; return; }
	"$Q2E" dump tt.qcow2 -o tt.warm.elf
	assert_status "dumped again from the page cache: the same bytes" 0 cmp tt.elf tt.warm.elf
	evict tt.qcow2
	"$Q2E" dump tt.qcow2 -o tt.cold.elf
	assert_status "dumped with the image out of the page cache: the same bytes" 0 \
		cmp tt.elf tt.cold.elf
	size=$(stat -c %s tt.qcow2)
	evict_from tt.qcow2 $((size / 4 * 3 / 4096 * 4096))
	"$Q2E" dump tt.qcow2 -o tt.part.elf
	assert_status "dumped with its last quarter out of the cache: the same bytes" 0 \
		cmp tt.elf tt.part.elf
	assert_eq "the L2 tables of zeros are NOBITS sections" \
		".qcow2.l2.100 NOBITS .qcow2.l2.400 NOBITS" \
		"$(sections tt.elf | awk '$1 == ".qcow2.l2.100" || $1 == ".qcow2.l2.400" { printf "%s%s %s", s, $1, $4; s = " " }')"
	assert_eq "512 L2 table sections" 512 "$(sections tt.elf | grep -c '^\.qcow2\.l2\.')"
	assert_eq "every section holds the image's bytes" "" "$(holds_image_bytes tt.elf tt.qcow2)"
	assert_match "eu-elflint accepts it" "No errors" "$(eu-elflint --gnu-ld --strict tt.elf 2>&1)"
	head -c $(( $(stat -c %s tt.elf) + 65536 )) /dev/urandom >tt.over.elf
	"$Q2E" dump tt.qcow2 -o - 1<>tt.over.elf
	assert_status "written over a longer file of other bytes: the same bytes" 0 \
		cmp tt.elf tt.over.elf
	rm -f tt.qcow2 tt.*.elf
}
t_case "many tables on two threads: the same dump, cached or not" two_threads_case

# A dump of more than a few MiB over an existing file: its first parts
# are handed to the kernel for writing while the rest is made; the file
# is still the dump, whole, as one written to a new name.
writeback_case() {
	qemu-img create -q -f qcow2 -o cluster_size=4k,preallocation=metadata wb.qcow2 6G
	"$Q2E" dump wb.qcow2 -o wb.elf || { fail "dump of 3,072 tables exits 0"; return; }
	head -c 1048576 /dev/urandom >wb.old
	"$Q2E" dump wb.qcow2 -o wb.old
	assert_eq "a dump over an existing file exits 0" 0 $?
	assert_status "the file is the whole dump, as one to a new name" 0 cmp wb.elf wb.old
	assert_eq "no temporary file is left beside it" "" "$(ls -a | grep '^wb\.old\.')"
	rm -f wb.qcow2 wb.elf wb.old
}
t_case "a large dump over an existing file is whole" writeback_case
finish
