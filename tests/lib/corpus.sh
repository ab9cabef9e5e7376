# SPDX-License-Identifier: GPL-2.0-or-later
# A corpus of QCOW2 images built at test time with the real qemu-img and
# qemu-io, nothing committed: every feature `info` and `map` must report
# the way qemu-img does.  Source it, then call
#
#	corpus_build DIR
#
# which fills DIR with small images (a few MiB each, mostly sparse) and
# writes DIR/corpus.list: one line per image to compare, "NAME KIND", where
# KIND is "plain" or "luks" (open it with corpus_luks_opts).  Backing files
# and external data files that are only there for another image are not
# listed.  Each builder is a function of its own, so a test can also build
# one image at a time; a builder that fails leaves no line in the list and
# makes corpus_build return 1.

CORPUS_SECRET=abc

# qemu-img options that open a LUKS image of the corpus: corpus_luks_opts
# FILE prints them one a line, for `mapfile`.
corpus_luks_opts() {
	printf '%s\n' --object "secret,id=sec0,data=$CORPUS_SECRET" \
		--image-opts "driver=qcow2,file.filename=$1,encrypt.key-secret=sec0"
}

_corpus_io() {	# _corpus_io FILE COMMAND...: runs each command in qemu-io
	local f=$1 args=() out

	shift
	for c in "$@"; do args+=(-c "$c"); done
	# qemu-io reports a failed command on stdout.
	out=$(qemu-io -f qcow2 "${args[@]}" "$f" 2>&1) ||
		{ printf '%s\n' "$out" | grep -v '^wrote\|^[0-9.]* [KMG]*i*B\|ops/sec' >&2; return 1; }
	! printf '%s\n' "$out" | grep -q -i 'error\|fail' ||
		{ printf '%s\n' "$out" >&2; return 1; }
}

_corpus_create() {	# _corpus_create FILE SIZE [qemu-img create options]
	local f=$1 size=$2

	shift 2
	qemu-img create -q -f qcow2 "$@" "$f" "$size"
}

# LUKS key setup times PBKDF2 with the thread's CPU clock, which can be too
# coarse to measure ("Unable to get accurate CPU usage"), more often on a
# loaded machine: try again, up to 50 times over about half a minute (20
# quick tries all failed once, beside a fuzzer, a helper's builds and a
# CI run).
_corpus_create_luks() {
	local try

	for try in $(seq 1 50); do
		_corpus_create "$@" 2>"$1.err" && { rm -f "$1.err"; return 0; }
		grep -q 'accurate CPU usage' "$1.err" || break
		sleep 0.5
	done
	cat "$1.err" >&2
	rm -f "$1.err"
	return 1
}

# The same guest pattern on every plain image: data, a zero range, a
# discarded range and a compressed cluster, so each feature meets them all.
# Offsets are multiples of 64 KiB and fit a 2 MiB image.
_corpus_pattern() {
	_corpus_io "$1" 'write -P 0x11 0 128k' 'write -P 0x22 320k 64k' \
		'write -z 512k 128k' 'write -P 0x33 768k 192k' \
		'discard 832k 64k' 'write -P 0x44 1536k 64k'
}

corpus_v2() {
	_corpus_create "$1/v2.qcow2" 2M -o compat=0.10 && _corpus_pattern "$1/v2.qcow2"
}

corpus_v3() {
	_corpus_create "$1/v3.qcow2" 2M -o compat=1.1 && _corpus_pattern "$1/v3.qcow2"
}

corpus_empty() {
	_corpus_create "$1/empty.qcow2" 3M
}

# Zero clusters both with and without a host cluster behind them.
corpus_zero() {
	local f=$1/zero.qcow2

	_corpus_create "$f" 2M &&
		_corpus_io "$f" 'write -P 1 0 256k' 'write -z 64k 64k' \
			'write -z -u 128k 64k' 'write -z 1M 128k' \
			'discard 192k 64k' 'write -P 2 1536k 4k'
}

corpus_v2_zero() {
	local f=$1/v2-zero.qcow2

	_corpus_create "$f" 2M -o compat=0.10 &&
		_corpus_io "$f" 'write -P 1 0 256k' 'write -z 64k 64k' \
			'discard 192k 64k'
}

corpus_snapshots() {
	local f=$1/snapshots.qcow2

	_corpus_create "$f" 2M &&
		_corpus_io "$f" 'write -P 1 0 128k' &&
		qemu-img snapshot -c first "$f" &&
		_corpus_io "$f" 'write -P 2 64k 128k' &&
		qemu-img snapshot -c "second one" "$f" &&
		qemu-img snapshot -c "to be deleted" "$f" &&
		_corpus_io "$f" 'write -P 3 1M 64k' 'discard 0 64k' &&
		qemu-img snapshot -c " spaces  inside " "$f" &&
		qemu-img snapshot -d "to be deleted" "$f" &&
		_corpus_io "$f" 'write -P 4 0 64k'
}

# A snapshot taken last: the file ends with the snapshot table, short of the
# padding after its last entry (a 7-byte name leaves none, a 1-byte one 7).
corpus_snapshot_last() {
	_corpus_create "$1/snapshot-last.qcow2" 1M &&
		_corpus_io "$1/snapshot-last.qcow2" 'write -P 1 0 64k' &&
		qemu-img snapshot -c a "$1/snapshot-last.qcow2"
}

corpus_v2_snapshots() {
	local f=$1/v2-snapshots.qcow2

	_corpus_create "$f" 2M -o compat=0.10 &&
		_corpus_io "$f" 'write -P 1 0 128k' &&
		qemu-img snapshot -c one "$f" &&
		qemu-img snapshot -c two "$f" &&
		qemu-img snapshot -d one "$f" &&
		_corpus_io "$f" 'write -P 2 64k 64k'
}

# Bitmaps: enabled ones track the writes qemu-io makes (so they have
# serialized data clusters), a disabled one does not, and one is merged
# from another.  A 512-byte granularity bitmap of a 2 MiB image needs more
# than one cluster of its own.
corpus_bitmaps() {
	local f=$1/bitmaps.qcow2

	_corpus_create "$f" 4M &&
		qemu-img bitmap --add "$f" b0 &&
		qemu-img bitmap --add -g 512 "$f" "fine grained" &&
		qemu-img bitmap --add -g 1M "$f" coarse &&
		qemu-img bitmap --add "$f" disabled &&
		qemu-img bitmap --disable "$f" disabled &&
		_corpus_io "$f" 'write -P 1 0 64k' 'write -P 2 3M 4k' \
			'write -z 2M 64k' &&
		qemu-img bitmap --add "$f" merged &&
		qemu-img bitmap --merge b0 "$f" merged &&
		qemu-img bitmap --add "$f" empty
}

corpus_compressed_zlib() {
	local f=$1/compressed-zlib.qcow2

	_corpus_create "$f" 2M &&
		_corpus_io "$f" 'write -c -P 1 0 64k' 'write -c -P 2 64k 64k' \
			'write -P 3 128k 64k' 'write -c -P 4 512k 128k' \
			'write -c -z 1M 64k'
}

corpus_compressed_zstd() {
	local f=$1/compressed-zstd.qcow2

	_corpus_create "$f" 2M -o compression_type=zstd &&
		_corpus_io "$f" 'write -c -P 1 0 64k' 'write -c -P 2 64k 64k' \
			'write -P 3 128k 64k' 'write -c -P 4 512k 128k'
}

# qemu-img convert -c: every cluster compressed, zeros skipped.
corpus_convert_zstd() {
	local d=$1

	qemu-img create -q -f raw "$d/.convert.raw" 2M &&
		qemu-io -f raw -c 'write -P 7 0 200k' -c 'write -P 8 1M 64k' \
			"$d/.convert.raw" >/dev/null &&
		qemu-img convert -c -O qcow2 -o compression_type=zstd \
			"$d/.convert.raw" "$d/convert-zstd.qcow2" &&
		rm -f "$d/.convert.raw"
}

# Extended L2: 32 subclusters of 2 KiB per 64 KiB cluster, written,
# zeroed and discarded piecemeal.
corpus_extended_l2() {
	local f=$1/extended-l2.qcow2

	_corpus_create "$f" 2M -o extended_l2=on &&
		_corpus_io "$f" 'write -P 1 0 2k' 'write -P 2 6k 1k' \
			'write -P 3 64k 64k' 'write -z 72k 4k' \
			'discard 96k 8k' 'write -z 256k 16k' \
			'write -P 4 1M 512' 'write -c -P 5 512k 64k'
}

# Extended L2 over a backing file: subclusters not allocated in a
# cluster that is read through to the backing file.
corpus_extended_l2_backing() {
	local d=$1

	_corpus_create "$d/.extl2-base.qcow2" 2M &&
		_corpus_io "$d/.extl2-base.qcow2" 'write -P 9 0 1M' &&
		_corpus_create "$d/extended-l2-backing.qcow2" 2M -o extended_l2=on \
			-b .extl2-base.qcow2 -F qcow2 &&
		_corpus_io "$d/extended-l2-backing.qcow2" 'write -P 1 2k 2k' \
			'write -P 2 66k 1k' 'write -z 130k 2k' 'discard 192k 4k'
}

corpus_refcount_bits() {
	local d=$1 bits

	for bits in 1 8 16 64; do
		_corpus_create "$d/refcount-$bits.qcow2" 2M -o refcount_bits=$bits &&
			_corpus_pattern "$d/refcount-$bits.qcow2" || return 1
	done
	# Snapshots need refcounts above 1.
	qemu-img snapshot -c s1 "$d/refcount-8.qcow2"
}

corpus_cluster_512() {
	local f=$1/cluster-512.qcow2

	_corpus_create "$f" 1M -o cluster_size=512 &&
		_corpus_io "$f" 'write -P 1 0 3k' 'write -P 2 130k 1k' \
			'write -z 4k 1k' 'write -c -P 3 8k 512' \
			'write -P 4 600k 64k' 'discard 610k 2k'
}

corpus_cluster_2m() {
	local f=$1/cluster-2m.qcow2

	_corpus_create "$f" 7M -o cluster_size=2M &&
		_corpus_io "$f" 'write -P 1 0 4k' 'write -z 2M 2M' \
			'write -P 2 4M 1M' 'write -c -P 3 6M 1M'
}

corpus_cluster_2m_extended_l2() {
	local f=$1/cluster-2m-extended-l2.qcow2

	_corpus_create "$f" 4M -o cluster_size=2M,extended_l2=on &&
		_corpus_io "$f" 'write -P 1 0 4k' 'write -P 2 192k 64k' \
			'write -z 2M 128k' 'write -P 3 3M 64k'
}

# Virtual size not a multiple of the cluster size.
corpus_partial() {
	local f=$1/partial-cluster.qcow2

	_corpus_create "$f" $((3 * 1048576 + 1536)) &&
		_corpus_io "$f" 'write -P 1 0 64k' 'write -P 2 3M 1536' &&
		_corpus_create "$1/partial-empty.qcow2" $((1048576 + 512))
}

corpus_lazy_refcounts() {
	local f=$1/lazy-refcounts.qcow2

	_corpus_create "$f" 2M -o lazy_refcounts=on && _corpus_pattern "$f"
}

# qemu-io's abort: the process dies with lazy refcounts on, so the image
# keeps its dirty bit, and its bitmaps stay marked in use.
corpus_dirty() {
	local f=$1/dirty.qcow2

	_corpus_create "$f" 2M -o lazy_refcounts=on &&
		qemu-img bitmap --add "$f" b0 &&
		qemu-img bitmap --add "$f" "also in use" || return 1
	bash -c 'ulimit -c 0; qemu-io -f qcow2 -c "write -P 1 0 128k" -c abort "$1"; true' \
		sh "$f" >/dev/null 2>&1
	qemu-img info --output=json "$f" | grep -q '"dirty-flag": true'
}

# corpus_sparse_tables FILE N STEP: FILE, an image of 512-byte clusters
# with a byte written every STEP bytes of N * STEP: an L2 table (of 32 KiB
# of the guest) for each, N of them, each a span of its own in a dump.
# Made by qemu-img convert of a sparse raw file, fast where qemu-io would
# take a write at a time.  Not one of corpus_build's.
corpus_sparse_tables() {
	python3 - "$1.raw" "$2" "$3" <<'PY' || return 1
import os, sys
n, step = int(sys.argv[2]), int(sys.argv[3])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, n * step)
for i in range(n):
    os.pwrite(fd, bytes([1 + i % 255]), i * step)
PY
	qemu-img convert -O qcow2 -o cluster_size=512 "$1.raw" "$1"
	local rc=$?
	rm -f "$1.raw"
	return $rc
}

corpus_prealloc_metadata() {
	local f=$1/prealloc-metadata.qcow2

	_corpus_create "$f" 2M -o preallocation=metadata &&
		_corpus_io "$f" 'write -P 1 64k 64k' 'write -z 256k 64k'
}

corpus_prealloc_falloc() {
	local f=$1/prealloc-falloc.qcow2

	_corpus_create "$f" 2M -o preallocation=falloc &&
		_corpus_io "$f" 'write -P 1 64k 64k'
}

# qcow2 over qcow2 over raw.  The raw base is sparse; the middle image is
# larger than the base, the top one smaller than the middle one; a second
# top is larger than its backing file.
corpus_backing() {
	local d=$1

	qemu-img create -q -f raw "$d/.base.raw" 3M &&
		qemu-io -f raw -c 'write -P 1 0 192k' -c 'write -P 2 1M 64k' \
			-c 'write -P 3 2M 1M' "$d/.base.raw" >/dev/null &&
		_corpus_create "$d/backing-mid.qcow2" 4M -b .base.raw -F raw &&
		_corpus_io "$d/backing-mid.qcow2" 'write -P 4 64k 64k' \
			'write -z 1M 64k' 'write -P 5 3M 128k' &&
		_corpus_create "$d/backing-top-small.qcow2" 2560k \
			-b backing-mid.qcow2 -F qcow2 &&
		_corpus_io "$d/backing-top-small.qcow2" 'write -P 6 128k 64k' \
			'write -z 0 64k' &&
		_corpus_create "$d/backing-top-large.qcow2" 6M \
			-b "$d/backing-mid.qcow2" -F qcow2 &&
		_corpus_io "$d/backing-top-large.qcow2" 'write -P 7 5M 64k' \
			'discard 64k 64k'
}

# A backing file without a backing format.  qemu-img 7.2 refuses to write
# one (create, rebase and amend all want -F), so the backing-format
# extension of an image made with -F is renamed to an unknown magic: QEMU
# keeps unknown extensions and probes the backing file's format.
corpus_backing_probed() {
	local d=$1 f=$1/backing-probed.qcow2 off

	_corpus_create "$d/.probed-base.qcow2" 2M &&
		_corpus_io "$d/.probed-base.qcow2" 'write -P 1 0 1M' &&
		_corpus_create "$f" 2M -b .probed-base.qcow2 -F qcow2 &&
		_corpus_io "$f" 'write -P 2 64k 64k' || return 1
	off=$(od -An -tx1 -v -w4 -N 4096 "$f" | grep -n ' e2 79 2a ca$' |
	      head -n 1 | cut -d: -f1)
	[ -n "$off" ] || return 1
	printf '\x0b\xac\xf0\x0d' |
		dd of="$f" bs=1 seek=$(((off - 1) * 4)) conv=notrunc status=none &&
		! qemu-img info "$f" | grep -q 'backing file format'
}

# External data files.  QEMU opens a relative data file name relative to the
# current directory (not the image's, as for backing files), so these are
# built, and must be read, from inside DIR.
# A raw backing file whose size is not a multiple of 512 (QEMU rounds it
# up), under a v2 image; and a qcow2 backing file whose last cluster is
# partial, with compressed clusters, under zeros and data of the top.
corpus_backing_odd() {
	local d=$1

	head -c 1000000 /dev/zero | tr '\0' 'x' >"$d/.odd.raw" &&
		truncate -s 1000000 "$d/.odd.raw" &&
		_corpus_create "$d/backing-odd-raw.qcow2" 2M -o compat=0.10 \
			-b .odd.raw -F raw &&
		_corpus_io "$d/backing-odd-raw.qcow2" 'write -P 1 64k 64k' &&
		_corpus_create "$d/.unaligned-base.qcow2" $((1048576 + 1536)) &&
		_corpus_io "$d/.unaligned-base.qcow2" 'write -c -P 2 192k 64k' \
			'write -P 1 0 192k' 'write -P 1 256k 768k' \
			'write -P 3 1M 1536' &&
		_corpus_create "$d/backing-unaligned.qcow2" 2M \
			-b .unaligned-base.qcow2 -F qcow2 &&
		_corpus_io "$d/backing-unaligned.qcow2" 'write -z 128k 128k' \
			'write -P 4 512k 4k'
}

# More than 1 GiB, so `map` queries in several chunks and must merge
# ranges across them; a range of data straddles the 1 GiB mark.
corpus_large() {
	local f=$1/large.qcow2

	_corpus_create "$f" 3G &&
		_corpus_io "$f" 'write -P 1 1023M 2M' 'write -z 2047M 2M' \
			'write -P 2 3071M 1M'
}

# Resized images: grown past a snapshot's size, and shrunk to an odd size.
corpus_resized() {
	local d=$1

	_corpus_create "$d/resized-grown.qcow2" 1M &&
		_corpus_io "$d/resized-grown.qcow2" 'write -P 1 0 1M' &&
		qemu-img snapshot -c small "$d/resized-grown.qcow2" &&
		qemu-img resize -q "$d/resized-grown.qcow2" 600M &&
		_corpus_io "$d/resized-grown.qcow2" 'write -P 2 599M 1M' &&
		_corpus_create "$d/resized-shrunk.qcow2" 4M &&
		_corpus_io "$d/resized-shrunk.qcow2" 'write -P 1 0 4M' &&
		qemu-img resize -q --shrink "$d/resized-shrunk.qcow2" $((1048576 + 2560))
}

corpus_data_file() {
	(cd "$1" &&
		_corpus_create data-file.qcow2 2M -o data_file=data-file.data &&
		_corpus_io data-file.qcow2 'write -P 1 0 128k' \
			'write -z 512k 64k' 'write -P 2 1M 64k' 'discard 64k 64k' &&
		_corpus_create data-file-raw.qcow2 2M \
			-o data_file=data-file-raw.data,data_file_raw=on &&
		_corpus_io data-file-raw.qcow2 'write -P 1 0 128k' \
			'write -z 512k 64k' 'write -P 2 1M 64k' &&
		_corpus_create data-file-abs.qcow2 1M \
			-o "data_file=$PWD/data-file-abs.data,data_file_raw=on" &&
		_corpus_io data-file-abs.qcow2 'write -P 1 64k 64k')
}

# LUKS with the other IV generator, a hash for it and a non-default key
# size and hash.
corpus_luks_essiv() {
	local f=$1/luks-essiv.qcow2 sec=(--object "secret,id=sec0,data=$CORPUS_SECRET")

	_corpus_create_luks "$f" 1M "${sec[@]}" \
		-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100,encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha256,encrypt.hash-alg=sha1
}

corpus_luks() {
	local f=$1/luks.qcow2 sec=(--object "secret,id=sec0,data=$CORPUS_SECRET")

	_corpus_create_luks "$f" 2M "${sec[@]}" \
		-o encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=100 &&
		qemu-io "${sec[@]}" --image-opts \
			-c 'write -P 1 64k 128k' -c 'write -z 1M 64k' \
			"driver=qcow2,file.filename=$f,encrypt.key-secret=sec0" \
			>/dev/null
}

CORPUS_BUILDERS="v2 v3 empty zero v2_zero snapshots snapshot_last v2_snapshots bitmaps
	compressed_zlib compressed_zstd convert_zstd extended_l2
	extended_l2_backing refcount_bits cluster_512 cluster_2m
	cluster_2m_extended_l2 partial lazy_refcounts dirty prealloc_metadata
	prealloc_falloc backing backing_probed backing_odd large resized
	data_file luks luks_essiv"

corpus_build() {
	local d=$1 b f rc=0

	mkdir -p "$d" || return 1
	for b in $CORPUS_BUILDERS; do
		if ! "corpus_$b" "$d" 2>"$d/.err"; then
			echo "corpus: corpus_$b failed: $(head -n 3 "$d/.err")" >&2
			rc=1
		fi
	done
	rm -f "$d/.err"
	: >"$d/corpus.list"
	for f in "$d"/*.qcow2; do
		f=${f##*/}
		case $f in
		luks*) echo "$f luks" ;;
		*) echo "$f plain" ;;
		esac
	done >>"$d/corpus.list"
	return $rc
}
