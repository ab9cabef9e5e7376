#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `check` as qemu-img: images qemu-img and qemu-io make, then patched the
# way issue 13 and 14 found check disagreeing with qemu-img check or
# costing too much; every number is the one real qemu-img check gives on
# the same file, in the same run.
. "$(dirname "$0")/../lib/common.sh"
. "$TOP/tests/lib/patch.sh"
. "$TOP/tests/lib/hold.sh"
need qemu-img qemu-io jq python3 readelf timeout

T=$T_TMP
QEMU_KEYS='{"image-end-offset", "compressed-clusters", "total-clusters",
	    "corruptions", "check-errors", "leaks", "allocated-clusters",
	    "fragmented-clusters"} | with_entries(select(.value != null))'
mk() { qemu-img create -q -f qcow2 "$@"; }
field() { "$Q2E" info --output=json "$1" | jq -r "$2"; }

# as_qemu NAME IMAGE: exit status, counters, per-cluster lines (standard
# error) and human summary (standard output) are qemu-img check's.
as_qemu() {
	local name=$1 img=$2 qrc orc
	qemu-img check --output=json "$img" >"$T/q.json" 2>"$T/q.err"
	qrc=$?
	"$Q2E" check --output=json "$img" >"$T/o.json" 2>"$T/o.err"
	orc=$?
	echo "$qrc" >"$T/q.rc"
	assert_eq "$name: exit status as qemu-img's ($qrc)" "$qrc" "$orc"
	assert_eq "$name: counters as qemu-img's" \
		"$(jq -cS "$QEMU_KEYS" "$T/q.json")" \
		"$(jq -cS "$QEMU_KEYS" "$T/o.json" 2>&1)"
	assert_eq "$name: per-cluster lines as qemu-img's" \
		"$(grep -v '^qemu-img:' "$T/q.err")" \
		"$(grep -v '^qcow2elf:' "$T/o.err")"
	qemu-img check "$img" >"$T/q.txt" 2>/dev/null
	"$Q2E" check "$img" >"$T/o.txt" 2>/dev/null
	assert_eq "$name: standard output as qemu-img's, up to the findings" \
		"$(cat "$T/q.txt")" \
		"$(sed '/^[0-9]* findings* beyond qemu-img/,$d' "$T/o.txt")"
}
each_call_a_case as_qemu

# The generators of the patched images (no large file is committed).
cat >"$T/gen.py" <<'EOF'
import struct, sys

def snapshots(f, hdr, end, l1s, extra=16):
    """A snapshot table at END: one entry per (l1_offset, l1_size)."""
    table = bytearray()
    for n, (off, size) in enumerate(l1s):
        sid, name = str(n + 1).encode(), b"s%d" % n
        e = struct.pack(">QIHHIIQII", off, size, len(sid), len(name),
                        0, 0, 0, 0, extra)
        e += struct.pack(">QQ", 0, struct.unpack_from(">Q", hdr, 24)[0])[:extra]
        e += sid + name
        table += e + b"\0" * (-len(e) % 8)
    f.seek(end)
    f.write(table)
    struct.pack_into(">IQ", hdr, 60, len(l1s), end)

kind, path = sys.argv[1], sys.argv[2]
arg = int(sys.argv[3]) if len(sys.argv) > 3 else 0
with open(path, "r+b") as f:
    hdr = bytearray(f.read(112))
    cl = 1 << struct.unpack_from(">I", hdr, 20)[0]
    l1_size, l1_off = struct.unpack_from(">IQ", hdr, 36)
    f.seek(0, 2)
    end = (f.tell() + cl - 1) // cl * cl
    if kind == "share-active-l1":	# ARG snapshots sharing the active L1
        snapshots(f, hdr, end, [(l1_off, l1_size)] * arg)
    elif kind == "short-extra":		# one snapshot, 8 bytes of extra data
        snapshots(f, hdr, end, [(l1_off, l1_size)], extra=8)
    elif kind == "packed-l1":		# 4,096 L1 tables in one cluster
        f.seek(end)
        f.write(b"\0" * cl)
        snapshots(f, hdr, end + cl, [(end + 16 * i, 2) for i in range(4096)])
    elif kind == "empty-extensions":	# the header cluster full of them
        hl = struct.unpack_from(">I", hdr, 100)[0]
        f.seek(hl)
        f.write(struct.pack(">II", 0x51e7e7e7, 0) * ((cl - hl - 8) // 8))
    f.seek(0)
    f.write(hdr)
EOF
gen() { python3 "$T/gen.py" "$@"; }

# bounded NAME STATUS CMD...: CMD exits STATUS within 10 s and 300 MB of
# address space (no kill, no "out of memory"), printing under 50 MB.
bounded() {
	local name=$1 want=$2 rc
	shift 2
	( ulimit -v 300000; timeout 10 "$@" ) >"$T/b.out" 2>"$T/b.err"
	rc=$?
	assert_eq "$name: exit status $want within 10 s and 300 MB" \
		"$want" "$rc $(grep -c 'out of memory' "$T/b.err")"
	assert_eq "$name: prints under 50 MB" yes \
		"$([ $(($(stat -c %s "$T/b.out") + $(stat -c %s "$T/b.err"))) -lt 52428800 ] && echo yes)"
}
each_call_a_case bounded

# --- an L1 table at offset 0 (issue 13) -------------------------------
l1_at_zero() {
	mk "$T/l1zero.qcow2" 64M
	qemu-io -c 'write 0 64k' "$T/l1zero.qcow2" >/dev/null
	put64 "$T/l1zero.qcow2" 40 0
	as_qemu "active L1 at offset 0" "$T/l1zero.qcow2"
	assert_eq "active L1 at offset 0: qemu-img counts 3 corruptions" 3 \
		"$(jq .corruptions "$T/o.json")"
	"$Q2E" dump "$T/l1zero.qcow2" -o "$T/l1zero.elf" 2>/dev/null
	assert_match "active L1 at offset 0: the dump has its .qcow2.l1" \
		'\.qcow2\.l1 ' "$(readelf -SW "$T/l1zero.elf")"
}
t_case "L1 table at offset 0" l1_at_zero

snapshot_l1_at_zero() {
	mk "$T/snapzero.qcow2" 64M
	qemu-io -c 'write 0 64k' "$T/snapzero.qcow2" >/dev/null
	qemu-img snapshot -c s1 "$T/snapzero.qcow2"
	put64 "$T/snapzero.qcow2" \
		"$(field "$T/snapzero.qcow2" '.snapshots[0]."entry-offset"')" 0
	as_qemu "snapshot L1 at offset 0" "$T/snapzero.qcow2"
}
t_case "snapshot L1 table at offset 0" snapshot_l1_at_zero

# --- missing backing and data files (issue 13) -------------------------
missing_files() {
	local q o
	mk "$T/base.qcow2" 64M
	mk -b base.qcow2 -F qcow2 "$T/overlay.qcow2"
	mv "$T/base.qcow2" "$T/base.moved"
	qemu-img check "$T/overlay.qcow2" >/dev/null 2>&1
	q=$?
	"$Q2E" check "$T/overlay.qcow2" >"$T/o.txt" 2>"$T/o.err"
	o=$?
	assert_eq "missing backing file: exit status as qemu-img's" "$q" "$o"
	assert_match "missing backing file: the whole report is printed" \
		"^No errors were found on the image" "$(cat "$T/o.txt")"
	assert_match "missing backing file: a finding names it" \
		"missing-file: backing_file: .*base\.qcow2'" "$(cat "$T/o.txt")"
	assert_match "missing backing file: standard error says qemu-img would not open it" \
		"qemu-img could not open .*base.qcow2" "$(cat "$T/o.err")"
	assert_eq "missing backing file: JSON finding" "missing-file backing_file" \
		"$("$Q2E" check --output=json "$T/overlay.qcow2" 2>/dev/null |
		   jq -r '.findings[] | "\(.type) \(.structures[0].name)"')"
	mv "$T/base.moved" "$T/base.qcow2"
	assert_status "backing file back: exit status 0" 0 \
		"$Q2E" check "$T/overlay.qcow2"

	# QEMU opens a data file name as given: from the image's directory.
	(cd "$T" && mk -o data_file=ext.raw ext.qcow2 64M &&
	 mv ext.raw ext.moved &&
	 { qemu-img check ext.qcow2 >/dev/null 2>&1; echo $?; } >q.rc &&
	 { "$Q2E" check --output=json ext.qcow2 >ext.json 2>/dev/null; echo $?; } >o.rc)
	assert_eq "missing data file: exit status as qemu-img's" \
		"$(cat "$T/q.rc")" "$(cat "$T/o.rc")"
	assert_match "missing data file: a finding names it" \
		"^missing-file ext_data_file external data file 'ext.raw'" \
		"$(jq -r '.findings[] | "\(.type) \(.structure) \(.message)"' "$T/ext.json")"
}
t_case "missing backing and data files" missing_files

# A backing chain that comes back to a file: QEMU opens a file for each
# time it is named, without end, and qemu-img fails once memory runs out
# (gigabytes; here under a 2 GB limit, with exit status 1 where its open
# fails and 134 where glib aborts).  check says so as of a missing file,
# with the status of qemu-img's failed open, 1, in little memory (each
# layer was opened, 64 of them: 527 MB for an 8 MB image).  A file that
# names itself as a raw backing file is no loop.
looping_chain() {
	local q o
	mk -o cluster_size=512 "$T/self.qcow2" 1G
	qemu-img rebase -u -b self.qcow2 -F qcow2 "$T/self.qcow2"
	mk "$T/ping.qcow2" 64M
	mk -b ping.qcow2 -F qcow2 "$T/pong.qcow2"
	qemu-img rebase -u -b pong.qcow2 -F qcow2 "$T/ping.qcow2"
	for f in self pong; do
		q=$( (ulimit -v 2000000; qemu-img check "$T/$f.qcow2" >/dev/null 2>&1); echo $?)
		o=$( (ulimit -v 100000; "$Q2E" check "$T/$f.qcow2" >"$T/o.txt" 2>"$T/o.err"); echo $?)
		assert_eq "$f.qcow2, a chain that loops: qemu-img fails; check exits 1" \
			"fails 1" "$([ "$q" != 0 ] && echo fails) $o"
		assert_match "$f.qcow2, a chain that loops: a finding says so" \
			"missing-file: backing_file: .*could not open backing file: .* is in the backing chain already .*: the chain loops" \
			"$(cat "$T/o.txt")"
	done
	assert_status "self.qcow2: map fails, as qemu-img map" 1 \
		"$Q2E" map "$T/self.qcow2"
	mk "$T/rawself.qcow2" 1M
	qemu-img rebase -u -b rawself.qcow2 -F raw "$T/rawself.qcow2"
	q=$( (ulimit -v 2000000; qemu-img check "$T/rawself.qcow2" >/dev/null 2>&1); echo $?)
	assert_eq "an image that is its own raw backing file: exit status as qemu-img's" \
		"$q" "$( ("$Q2E" check "$T/rawself.qcow2" >/dev/null 2>&1); echo $?)"
}
t_case "a backing chain that loops" looping_chain

# --- a v3 header cut between 104 and 111 bytes (issue 13) ---------------
cut_headers() {
	mk "$T/whole.qcow2" 64M
	for n in 104 108 111; do
		head -c "$n" "$T/whole.qcow2" >"$T/cut$n.qcow2"
		as_qemu "v3 header cut at $n bytes" "$T/cut$n.qcow2"
	done
	assert_match "v3 header cut: a finding says where the file ends" \
		"the file ends inside the header \(108 of 112 bytes\)" \
		"$("$Q2E" check "$T/cut108.qcow2" 2>/dev/null)"
}
t_case "v3 header cut short" cut_headers

# --- per-cluster lines on standard error (issue 13) --------------------
lines_on_stderr() {
	local l2
	mk "$T/leak.qcow2" 64M
	qemu-io -c 'write 0 128k' "$T/leak.qcow2" >/dev/null
	l2=$(( $(get64 "$T/leak.qcow2" $(get64 "$T/leak.qcow2" 40)) & 0x00fffffffffffe00 ))
	put64 "$T/leak.qcow2" $((l2 + 8)) 0
	as_qemu "leaked cluster" "$T/leak.qcow2"
	assert_eq "leaked cluster: no per-cluster line on standard output" "" \
		"$(grep '^Leaked cluster' "$T/o.txt")"
	assert_match "leaked cluster: the line on standard error" \
		"^Leaked cluster [0-9]+ refcount=1 reference=0" \
		"$("$Q2E" check "$T/leak.qcow2" 2>&1 >/dev/null)"
}
t_case "per-cluster lines on standard error" lines_on_stderr

# --- check -M (issue 13) ------------------------------------------------
metadata_report() {
	local v try
	# On a loaded machine QEMU's PBKDF timing can fail ("Unable to get
	# accurate CPU usage", half the tries on a fast processor): up to 50 tries half a second apart,
	# as tests/lib/corpus.sh makes its LUKS images.
	for try in $(seq 50); do
		qemu-img create -q --object secret,id=sec0,data=abc -f qcow2 \
			-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100 \
			"$T/luks.qcow2" 64M 2>"$T/luks.err" && break
		sleep 0.5
	done
	"$Q2E" check -M --output=json "$T/luks.qcow2" >"$T/luks.json" 2>/dev/null
	assert_eq "check -M: the LUKS area is crypt-header" number \
		"$(jq -r '.viscera."crypt-header".location.offset | type' "$T/luks.json")"
	assert_eq "check -M: no crypto-header key" null \
		"$(jq '.viscera."crypto-header"' "$T/luks.json")"
	assert_status "an encrypted image is checked without its key" 0 \
		"$Q2E" check "$T/luks.qcow2"

	mk "$T/nol1.qcow2" 64M
	put_be "$T/nol1.qcow2" 36 4 0
	assert_eq "check -M: active-l1 present when l1_size is 0" 0 \
		"$("$Q2E" check -M --output=json "$T/nol1.qcow2" 2>/dev/null |
		   jq '.viscera."active-l1".location.size')"

	mk "$T/short.qcow2" 64M
	gen short-extra "$T/short.qcow2"
	v=$(qemu-img info --output=json "$T/short.qcow2" | jq '."virtual-size"')
	assert_eq "check -M: a snapshot without disk_size has the virtual size" \
		"$v" "$("$Q2E" check -M --output=json "$T/short.qcow2" 2>/dev/null |
			jq '.viscera."snapshot-table"."l1-list"[0]."disk-size"')"

	assert_match "check -M: human offsets in hex" \
		'offset +0x30000$' "$("$Q2E" check -M "$T/luks.qcow2" 2>/dev/null)"
}
t_case "check -M" metadata_report

# --- findings in JSON (issue 13) ----------------------------------------
findings_shape() {
	local l2 e d
	mk "$T/inmeta.qcow2" 64M
	qemu-io -c 'write 0 64k' "$T/inmeta.qcow2" >/dev/null
	l2=$(( $(get64 "$T/inmeta.qcow2" $(get64 "$T/inmeta.qcow2" 40)) & 0x00fffffffffffe00 ))
	# Guest cluster 1 mapped onto the L2 table itself.
	put64 "$T/inmeta.qcow2" $((l2 + 8)) $(( (1 << 63) | l2 ))
	"$Q2E" check --output=json "$T/inmeta.qcow2" >"$T/f.json" 2>/dev/null
	assert_eq "findings: every one has a structures list" 0 \
		"$(jq '[.findings[] | select(.structures | type != "array")] | length' "$T/f.json")"
	assert_eq "findings: no structure listed twice" 0 \
		"$(jq '[.findings[] | [.structures[] | [.kind, .offset]] |
			select(length != (unique | length))] | length' "$T/f.json")"
	e=$(jq -c '[.findings[] | select(.type == "data-in-metadata") |
		    ."entry-offset", .offset]' "$T/f.json")
	assert_eq "findings: the wrong L2 entry's offset and the cluster's" \
		"[$((l2 + 8)),$l2]" "$e"
	d=$(man -l "$TOP/contrib/man/qcow2elf.1" 2>/dev/null | col -b)
	[ -n "$d" ] || d=$(cat "$TOP/contrib/man/qcow2elf.1")
	assert_match "findings: the man page documents entry-offset" \
		"entry.{0,3}offset" "$d"
}
t_case "findings in JSON" findings_shape

# --- cost on hostile input (issue 14) -----------------------------------
overlap_cost() {
	local q
	mk "$T/packed.qcow2" 64M
	gen packed-l1 "$T/packed.qcow2"
	as_qemu "4,096 L1 tables in one cluster" "$T/packed.qcow2"
	bounded "4,096 L1 tables in one cluster: check" "$(cat "$T/q.rc") 0" \
		"$Q2E" check "$T/packed.qcow2"
	bounded "4,096 L1 tables in one cluster: check --output=json" \
		"$(cat "$T/q.rc") 0" "$Q2E" check --output=json "$T/packed.qcow2"
	assert_eq "4,096 L1 tables in one cluster: one overlap finding each but the first" \
		4095 "$(jq '[.findings[] | select(.type == "overlap")] | length' "$T/o.json")"

	mk -o cluster_size=2M "$T/exts.qcow2" 64M
	gen empty-extensions "$T/exts.qcow2"
	# qemu-img takes 15 s on it: its exit status only.
	qemu-img check "$T/exts.qcow2" >/dev/null 2>&1
	q=$?
	bounded "262,144 empty header extensions: check" "$q 0" \
		"$Q2E" check "$T/exts.qcow2"
	bounded "262,144 empty header extensions: check --output=json" "$q 0" \
		"$Q2E" check --output=json "$T/exts.qcow2"
}
t_case "overlaps on hostile input" overlap_cost

shared_l1() {
	local n
	# Snapshots sharing one L1 table are counted once for all; the
	# numbers and lines stay qemu-img's, overflows included.
	mk "$T/hostile3.qcow2" 4T
	python3 "$TOP/tests/lib/hostile.py" shared-snapshot-l1 "$T/hostile3.qcow2" 3
	as_qemu "3 snapshots sharing an L1 whose entries point past the end" \
		"$T/hostile3.qcow2"
	for rb in 1 16; do
		for n in 1 3; do
			mk -o refcount_bits=$rb "$T/share.qcow2" 64M
			qemu-io -c 'write 0 128k' "$T/share.qcow2" >/dev/null
			gen share-active-l1 "$T/share.qcow2" "$n"
			as_qemu "refcount_bits=$rb, $n snapshots sharing the active L1" \
				"$T/share.qcow2"
			# A second reference overflows a 1-bit refcount.
			if [ "$rb" = 1 ]; then
				assert_match "refcount_bits=1, $n snapshots: the overflow is reported" \
					"^ERROR: overflow cluster offset=0x" \
					"$(grep -v '^qcow2elf:' "$T/o.err")"
			fi
		done
	done
}
t_case "snapshots sharing one L1 table" shared_l1

many_references() {
	# More than 16,383 references to a cluster: the counters' side table.
	mk "$T/many.qcow2" 64M
	qemu-io -c 'write 0 128k' "$T/many.qcow2" >/dev/null
	gen share-active-l1 "$T/many.qcow2" 16400
	as_qemu "16,400 snapshots sharing the active L1" "$T/many.qcow2"
	assert_match "16,400 snapshots: the data clusters have 16,401 references" \
		"reference=16401" "$(cat "$T/o.err")"
}
t_case "a cluster with more than 16,383 references" many_references

# --- backing files of other formats ---------------------------------------
# exit_of CMD...: CMD's exit status.
exit_of() { "$@" >/dev/null 2>&1; echo $?; }

other_formats() {
	local f=$T/fmt.qcow2 base=$T/fmt-base.qcow2 v=$T/fmt-base.vmdk at
	qemu-img create -q -f vmdk "$v" 8M
	qemu-io -f vmdk -c 'write -P 1 1M 1M' "$v" >/dev/null
	# A vmdk backing file, named so: qemu-img opens it; map does not
	# read it, and says so.
	mk -b "$v" -F vmdk "$f" 8M
	qemu-io -c 'write -P 2 4M 64k' "$f" >/dev/null
	as_qemu "a vmdk backing file" "$f"
	assert_eq "a vmdk backing file: a note says check did not open it" \
		"note backing_file not opened, so not checked: backing file '$v' has format 'vmdk'; only qcow2 and raw backing files are read" \
		"$("$Q2E" check --output=json "$f" 2>/dev/null | jq -r '.findings[] | "\(.severity) \(.structure) \(.message)"')"
	assert_match "a vmdk backing file: map says it reads only qcow2 and raw" \
		"has format 'vmdk'; only qcow2 and raw.* exit 1" \
		"$({ "$Q2E" map --output=json "$f" 2>&1 >/dev/null; echo "exit $?"; } | tr '\n' ' ')"
	# The same without its backing format: QEMU probes it as vmdk, where
	# qcow2elf read it as raw and printed a map of the vmdk file's bytes.
	at=$(python3 -c 'import struct, sys
b = open(sys.argv[1], "rb").read(4096)
off = struct.unpack(">I", b[100:104])[0]
while True:
    m, n = struct.unpack(">II", b[off:off + 8])
    if m in (0, 0xe2792aca):
        break
    off += 8 + (n + 7) // 8 * 8
print(off if m else -1)' "$f")
	put64 "$f" "$at" $((0x0bacf00d << 32))	# an extension QEMU skips
	assert_eq "a backing file QEMU probes as vmdk: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	assert_match "a backing file QEMU probes as vmdk: map says so and exits 1" \
		"has format 'vmdk' \(QEMU's probe\); only qcow2 and raw.* exit 1" \
		"$({ "$Q2E" map --output=json "$f" 2>&1 >/dev/null; echo "exit $?"; } | tr '\n' ' ')"
	# A qcow2 backing file named vmdk (qemu-img rebase -u -F vmdk): QEMU's
	# vmdk driver refuses it.
	mk "$base" 8M
	mk -b "$base" -F qcow2 "$f" 8M
	qemu-img rebase -u -b "$base" -F vmdk "$f"
	assert_eq "a qcow2 backing file named vmdk: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	assert_match "...with a missing-file finding that says why" \
		"^missing-file .*as format 'vmdk': it is not such a file" \
		"$("$Q2E" check --output=json "$f" 2>/dev/null | jq -r '.findings[] | "\(.type) \(.message)"')"
	# Named vpc or vmdk, files whose driver takes them though its probe
	# does not: a fixed VHD (its "conectix" footer at the end), and a
	# descriptor whose version line is not its first.
	qemu-img create -q -f vpc -o subformat=fixed "$T/fmt-fixed.vhd" 8M
	mk -b "$T/fmt-fixed.vhd" -F vpc "$f" 8M
	assert_eq "a fixed VHD backing file: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	printf '# Disk DescriptorFile\nCID=fffffffe\nversion=1\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 16384 FLAT "fmt-flat.raw" 0\n' >"$T/fmt-desc.vmdk"
	truncate -s 8M "$T/fmt-flat.raw"
	mk -u -b "$T/fmt-desc.vmdk" -F vmdk "$f" 8M
	assert_eq "a vmdk descriptor backing file, its version not first: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	mk -u -b "$base" -F vpc "$f" 8M
	assert_eq "a qcow2 backing file named vpc: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	# A LUKS backing file: QEMU needs its key, which qemu-img is not given
	# (it asks for it before it reads the header: the magic and version
	# are enough, and qemu-img create's key derivation fails now and
	# then on a loaded machine, "Unable to get accurate CPU usage").
	{ printf 'LUKS\272\276\0\1'; head -c 1048568 /dev/zero; } >"$T/fmt-base.luks"
	mk -u -b "$T/fmt-base.luks" -F luks "$f" 8M
	assert_eq "a LUKS backing file: check exits as qemu-img's" \
		"$(exit_of qemu-img check "$f")" "$(exit_of "$Q2E" check "$f")"
	assert_match "...and says it needs the key" "key-secret" \
		"$("$Q2E" check --output=json "$f" 2>/dev/null | jq -r '.findings[].message')"
	# A protocol: qemu-img check asks the server (here none: it exits
	# 1), which qcow2elf does not: a note says so, and the status is the
	# image's own.
	mk -u -b nbd:localhost:1 -F raw "$f" 8M
	assert_eq "an nbd: backing file: a note, and the image's own status" \
		"note backing file 'nbd:localhost:1' is named by protocol 'nbd'; only files are read|exit 0" \
		"$("$Q2E" check --output=json "$f" 2>/dev/null | jq -r '.findings[] | "\(.severity) \(.message | sub("not opened, so not checked: "; ""))"' | tr -d "\n"; echo "|exit ${PIPESTATUS[0]}")"
}
t_case "backing files of other formats" other_formats

# --- an image a running VM writes: QEMU's locks --------------------------

locked_image() {
	local cmd q o
	mk "$T/live.qcow2" 64M
	qemu-io -c 'write 0 1M' "$T/live.qcow2" >/dev/null
	mk -b "$T/live.qcow2" -F qcow2 "$T/over.qcow2"
	hold "" "$T/live.qcow2"
	for cmd in info map check; do
		qemu-img $cmd "$T/live.qcow2" >/dev/null 2>"$T/q.err"
		q=$?
		"$Q2E" $cmd "$T/live.qcow2" >"$T/o.out" 2>"$T/o.err"
		o=$?
		assert_eq "written by a VM: $cmd exits as qemu-img $cmd ($q)" "$q" "$o"
		assert_match "written by a VM: qemu-img $cmd says why" \
			'Failed to get shared "write" lock' "$(cat "$T/q.err")"
		assert_match "written by a VM: $cmd says it as qemu-img $cmd does" \
			"^qcow2elf: '$T/live.qcow2': Failed to get shared \"write\" lock" \
			"$(cat "$T/o.err")"
		assert_eq "written by a VM: $cmd prints nothing on standard output" \
			0 "$(wc -c <"$T/o.out")"
	done
	rm -f "$T/live.elf"
	assert_status "written by a VM: dump exits 1" 1 \
		"$Q2E" dump "$T/live.qcow2" -o "$T/live.elf"
	assert_eq "...and writes no file" no "$([ -e "$T/live.elf" ] && echo yes || echo no)"
	assert_status "written by a VM: diff exits 2" 2 \
		"$Q2E" diff "$T/live.qcow2" "$T/live.qcow2"
	# qemu-img cannot open the overlay; check reports what it can of it
	# (README), with a missing-file finding.
	qemu-img check "$T/over.qcow2" >/dev/null 2>&1
	q=$?
	"$Q2E" check --output=json "$T/over.qcow2" >"$T/o.json" 2>/dev/null
	assert_eq "the backing file written by a VM: check exits as qemu-img's ($q)" \
		"$q" "$?"
	assert_match "...with a missing-file finding that says why" \
		'^missing-file .*Failed to get shared "write" lock' \
		"$(jq -r '.findings[] | "\(.type) \(.message)"' "$T/o.json")"
	assert_eq "-U: check as qemu-img check -U" \
		"$(qemu-img check -U "$T/live.qcow2" 2>&1; echo "exit $?")" \
		"$("$Q2E" check -U "$T/live.qcow2" 2>&1 | sed '/^[0-9]* findings* beyond/,$d'; echo "exit ${PIPESTATUS[0]}")"
	assert_eq "-U: map as qemu-img map -U" \
		"$(qemu-img map -U --output=json "$T/live.qcow2")" \
		"$("$Q2E" map -U --output=json "$T/live.qcow2")"
	release
	# While check reads (stopped in gdb at q2e_check_run(), the image
	# open), it holds qemu-img's locks: a VM cannot start writing the
	# image, and another check may read it.
	if command -v gdb >/dev/null; then
		assert_eq "while check reads: qemu-io cannot write, qemu-img check can read" \
			"write 1|check 0" \
			"$(gdb -nx -batch -ex 'break q2e_check_run' -ex run \
				-ex "shell qemu-io -c 'write 0 4k' '$T/live.qcow2' >/dev/null 2>&1; echo \"write \$?\"" \
				-ex "shell qemu-img check '$T/live.qcow2' >/dev/null 2>&1; echo \"check \$?\"" \
				-ex kill --args "$Q2E" check "$T/live.qcow2" 2>/dev/null |
			   grep -E '^(write|check) [0-9]+$' | paste -sd'|')"
	fi
	# An external data file is opened to be written by others, not
	# resized: a lock on byte 103 (resize held) fails check as it fails
	# qemu-img check, one on 101 (write held) does not.  python3 holds
	# the byte as QEMU's qemu_lock_fd() does.
	mk -o data_file="$T/live.raw" "$T/withdata.qcow2" 8M
	for b in 101 103; do
		rm -f "$T/held"
		python3 -c 'import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, int(sys.argv[2]), 1, 0))
open(sys.argv[3], "w").close()
time.sleep(30)' "$T/live.raw" "$b" "$T/held" &
		for _ in $(seq 100); do [ -e "$T/held" ] && break; sleep 0.1; done
		assert_eq "a data file with byte $b held: check exits as qemu-img's" \
			"$(exit_of qemu-img check "$T/withdata.qcow2")" \
			"$(exit_of "$Q2E" check "$T/withdata.qcow2")"
		kill $! 2>/dev/null; wait $! 2>/dev/null
	done
	assert_match "...and says so of the data file" \
		'^ext_data_file .*Failed to get shared "resize" lock' \
		"$(python3 -c 'import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqi", fcntl.F_RDLCK, 0, 103, 1, 0))
os.system(sys.argv[2])' "$T/live.raw" "'$Q2E' check --output=json '$T/withdata.qcow2' 2>/dev/null | jq -r '.findings[] | \"\\(.structure) \\(.message)\"'")"
	hold -r "$T/live.qcow2"
	as_qemu "an image a process reads" "$T/live.qcow2"
	assert_eq "an image a process reads: check exits 0" 0 "$(cat "$T/q.rc")"
	release
}
t_case "an image a running VM writes" locked_image

finish
