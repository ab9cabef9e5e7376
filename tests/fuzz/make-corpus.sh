#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Makes the seed corpus of tests/fuzz/fuzz_image.c with qemu-img and qemu-io.
# Each image is cut to the bytes its metadata lies in (head -c) so that the
# committed files stay small; a cut image is still a valid fuzzing seed, and
# what lies past the cut is only guest data.  Needs qemu-utils; writes into
# tests/fuzz/corpus/; tests/fuzz/README says which command made which file.
#
# It also joins images into inputs of three parts (tests/fuzz/fuzz.h): two
# images for diff and a command line.  With Q2E=path/to/qcow2elf it dumps
# the images into corpus-dump/, the seeds of fuzz_dump.
# `make-corpus.sh --derived` does only these two, from the images already
# in corpus/ (so that those stay as committed).
set -eu
cd "$(dirname "$0")"
out=$PWD/corpus
dumps=$PWD/corpus-dump

# elf-NAME: the dump of each image seed (not of dumps or found inputs),
# made in corpus/ so that the image names recorded are relative.  No gdb
# helpers: 29 KB of Python the reader skips.  Two without data, for the
# layout-only reading.
make_dumps() {
	mkdir -p "$dumps"
	(cd "$out" &&
	 for f in *; do
		case $f in dump-* | crash-* | oracle-* | diff-* | split-* | redact-*) continue ;; esac
		"$Q2E" dump "$f" -o "$dumps/elf-$f" --no-gdb-script 2>/dev/null
	 done &&
	 "$Q2E" dump v3-data -o "$dumps/elf-v3-data-no-data" --no-data \
		--no-gdb-script &&
	 "$Q2E" dump snapshots -o "$dumps/elf-snapshots-no-data" \
		--no-data --no-gdb-script)
}
# split-*: IMAGE, OTHER and the arguments of a command line, one a line,
# joined by the separator of tests/fuzz/fuzz.h.
join() {
	local name=$1 a=$2 b=$3
	shift 3
	{ cat "$out/$a"; printf '\n--q2e-fuzz--\n'; cat "$out/$b"
	  printf '\n--q2e-fuzz--\n'; printf '%s\n' "$@"; } >"$out/split-$name"
}
make_splits() {
	join info-json c512-rc1 v2-empty info --output=json image
	join map-human overlay self-raw map image
	join check-metadata lazy c512-rc1 check -M --output=json image
	join diff-verbose snapshots v3-data diff -v --color=always image other
	join dump-no-data bitmaps v2-empty dump image -o out.elf --no-data
	join restore dump-v3-data v2-empty restore image -o restored --force
	join help c512-rc1 c512-rc1 check --help
}
# redact-NAME: NAME and one byte more, which makes the input's variant
# (tests/fuzz/fuzz_commands.c: its length xor its last byte) one that
# dumps with --redact (bit 6) and with data (bit 1 clear).
make_redacts() {
	local n len
	for n in luks snapshots overlay datafile; do
		len=$(($(stat -c %s "$out/$n") + 1))
		{ cat "$out/$n"
		  printf "\\x$(printf %02x $((((len & 0x42) ^ 0x40) & 0x42)))"
		} >"$out/redact-$n"
	done
}
# variant-NAME: the dump elf-NAME and one byte more, which makes its
# variant BITS: a dump's length is a multiple of 8 and its last byte 0, so
# without it no dump seed renders check with -M or in human form.
make_variants() {
	local n=$1 bits=$2 len
	len=$(($(stat -c %s "$dumps/elf-$n") + 1))
	{ cat "$dumps/elf-$n"
	  printf "\\x$(printf %02x $(((len ^ bits) & 0xff)))"
	} >"$dumps/variant-$n"
}
if [ "${1:-}" = --derived ]; then
	make_splits
	make_redacts
	if [ -n "${Q2E:-}" ]; then
		make_dumps
		# map, info and check (-M) in human form, diff -v, the
		# restored image read back
		make_variants v3-data 0xbd
		# check -M in JSON, the restored image read back
		make_variants snapshots 0x24
	fi
	ls -l "$out" "$dumps"
	exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/q2e-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
# Images are made inside $tmp under relative names, so that the names
# written into them (backing file, data file) do not depend on $tmp.
cd "$tmp"

# keep NAME BYTES [IMAGE]: the first BYTES of IMAGE.qcow2 (default:
# NAME) become corpus/NAME.
keep() {
	head -c "$2" "${3:-$1}.qcow2" >"$out/$1"
}

# patch NAME OFFSET HEX: overwrites bytes of corpus/NAME, e.g. 'ff 00'.
patch() {
	local bytes
	bytes=$(printf '\\x%s' $3)
	printf "$bytes" | dd of="$out/$1" bs=1 seek="$2" conv=notrunc status=none
}

img() { qemu-img create -q -f qcow2 "$@"; }
io() { qemu-io -f qcow2 "$@" >/dev/null; }

# Version 2, empty.
img -o compat=0.10,cluster_size=4096 v2-empty.qcow2 16M
keep v2-empty 12352

# Version 3 with data, zero clusters (plain and allocated) and a discard.
img -o cluster_size=4096 v3-data.qcow2 16M
io -c 'write -P 0xaa 0 8k' -c 'write -z 64k 4k' -c 'write -P 1 1M 4k' \
	-c 'write -z 1M 4k' -c 'write -P 2 2M 4k' -c 'discard 2M 4k' \
	v3-data.qcow2
keep v3-data 36864

# Smallest clusters and refcount widths of 1 and 64 bits.
img -o cluster_size=512,refcount_bits=1 c512-rc1.qcow2 1M
io -c 'write -P 0x55 0 2k' c512-rc1.qcow2
keep c512-rc1 4096
img -o cluster_size=4096,refcount_bits=64 rc64.qcow2 4M
io -c 'write -P 0x55 0 4k' rc64.qcow2
keep rc64 20480

# Compressed clusters (zlib, and zstd in the header's compression_type).
qemu-img create -q -f raw raw 1M
qemu-io -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 128k 64k' \
	raw >/dev/null
qemu-img convert -q -c -O qcow2 -o cluster_size=4096 raw \
	compressed.qcow2
keep compressed 20480
qemu-img convert -q -c -O qcow2 \
	-o cluster_size=4096,compression_type=zstd raw \
	zstd.qcow2
keep zstd 20480

# Extended L2 entries with subclusters allocated and zeroed.
img -o cluster_size=16384,extended_l2=on extl2.qcow2 4M
io -c 'write -P 3 0 512' -c 'write -P 4 4096 1k' -c 'write -z 8k 2k' \
	extl2.qcow2
keep extl2 81920

# Snapshots, with a write between them so that L2 tables are copied.
img -o cluster_size=4096 snapshots.qcow2 8M
io -c 'write -P 5 0 4k' snapshots.qcow2
qemu-img snapshot -c first snapshots.qcow2
io -c 'write -P 6 0 4k' snapshots.qcow2
qemu-img snapshot -c second snapshots.qcow2
keep snapshots 45199

# Persistent dirty bitmaps, one of them with a dirty range.
img -o cluster_size=4096 bitmaps.qcow2 8M
qemu-img bitmap --add bitmaps.qcow2 b0
qemu-img bitmap --add -g 65536 bitmaps.qcow2 b1
io -c 'write -P 7 0 4k' bitmaps.qcow2
qemu-img bitmap --disable bitmaps.qcow2 b1
keep bitmaps 61504

# LUKS encryption (the secret is not a secret: it is a test fixture).
img --object secret,id=s0,data=fuzz \
	-o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 \
	-o cluster_size=4096 luks.qcow2 1M
keep luks 20480

# A backing file named relatively, with its format (absent when fuzzing).
img -o cluster_size=4096 base.qcow2 4M
img -o cluster_size=4096 -b base.qcow2 -F qcow2 overlay.qcow2 4M
io -c 'write -P 8 4k 4k' overlay.qcow2
keep overlay 20480

# Backing files named "image": the fuzz target writes its input to a file
# of that name, so these chains lead back to the input itself, read as
# qcow2 (until the chain is too deep) or as raw.
img -u -o cluster_size=4096 -b image -F qcow2 self-qcow2.qcow2 4M
keep self-qcow2 12304
img -u -o cluster_size=4096 -b image -F raw self-raw.qcow2 4M
keep self-raw 12304

# An external raw data file.
img -o cluster_size=4096,data_file=ext.raw,data_file_raw=on \
	datafile.qcow2 1M
io -c 'write -P 9 0 4k' datafile.qcow2
keep datafile 20480

# Large clusters: the header cluster and the first tables only.
img -o cluster_size=2M c2m.qcow2 64M
keep c2m 8192

# Lazy refcounts, left dirty: qemu-io's abort stops it before it can
# write the refcounts and clear the dirty bit.
img -o cluster_size=4096,lazy_refcounts=on lazy.qcow2 1M
(qemu-io -f qcow2 -c 'write -P 10 0 4k' -c abort lazy.qcow2 \
	>/dev/null 2>&1 || :) 2>/dev/null
keep lazy 20480

# Dumps written by qcow2elf itself, when Q2E names the binary: the model
# reads these through the ELF byte source instead of the image file.
if [ -n "${Q2E:-}" ]; then
	(cd "$out" && "$Q2E" dump v3-data -o dump-v3-data &&
	 "$Q2E" dump snapshots -o dump-snapshots-no-data --no-data) \
		2>/dev/null
fi

# Inputs that crashed the model once (see tests/fuzz/README).
# The file ends inside the padding of the first snapshot table entry.
keep crash-snapshot-padding 45126 snapshots
# backing_file_offset 0xffffffffffffff00, backing_file_size 512: the end
# of the name wraps around 2^64.
keep crash-backing-offset-wrap 8192 v3-data
patch crash-backing-offset-wrap 8 'ff ff ff ff ff ff ff 00 00 00 02 00'

make_splits
make_redacts
if [ -n "${Q2E:-}" ]; then
	make_dumps
	make_variants v3-data 0xbd
	make_variants snapshots 0x24
fi
ls -l "$out" "$dumps"
