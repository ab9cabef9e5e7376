#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `-o` behaves as a Unix output: "-" is standard output; a device, a FIFO or
# /dev/stdout is written in place and never replaced; a symbolic link is
# followed and stays a link; a replaced file keeps its mode; restore still
# refuses an existing target without --force; an output that the input
# reads (a backing file, an external data file) is refused; no temporary
# file is left behind.
. "$(dirname "$0")/../lib/common.sh"
need qemu-img qemu-io readelf cmp

cd "$T_TMP" || finish

qemu-img create -q -f qcow2 img.qcow2 64M
qemu-io -c 'write -P 1 0 128k' img.qcow2 >/dev/null
"$Q2E" dump img.qcow2 -o ref.elf
"$Q2E" restore ref.elf -o ref.qcow2

# Standard output, as a pipe, as a file, and by the name /dev/stdout.
"$Q2E" dump img.qcow2 -o - | cat >pipe.elf
assert_same_file "dump -o - writes the dump to a pipe" ref.elf pipe.elf
assert_status "and no file named '-' is made" 1 test -e ./-
"$Q2E" dump img.qcow2 -o - >stdout.elf
assert_same_file "dump -o - writes the dump to a file" ref.elf stdout.elf
# A link of our own, made as /dev/stdout is: a build that replaces the
# name must not replace the machine's /dev/stdout.
ln -s /proc/self/fd/1 my-stdout
"$Q2E" dump img.qcow2 -o my-stdout | cat >devstdout.elf
assert_same_file "dump -o /dev/stdout writes the dump to the pipe" ref.elf devstdout.elf
assert_status "and /dev/stdout stays a link" 0 test -L my-stdout
# A descriptor by its name is written where it stands, as "-" is: never
# opened again from offset 0 or replaced (the shell's file keeps what was
# written before and after).
descriptor_case() {
	local name
	printf 'hdr\n' >hdr; printf 'trl\n' >trl
	cat hdr ref.elf trl >framed.elf
	for name in /dev/stdout /dev/fd/1 /proc/self/fd/1; do
		{ echo hdr; "$Q2E" dump img.qcow2 -o $name; echo trl; } >fd.elf
		assert_same_file "dump -o $name between two lines of a redirected block" \
			framed.elf fd.elf
	done
	{ echo hdr >&2; "$Q2E" dump img.qcow2 -o /dev/stderr; echo trl >&2; } 2>fd.elf
	assert_same_file "dump -o /dev/stderr after a line on it" framed.elf fd.elf
	cat hdr >fd.elf
	"$Q2E" dump img.qcow2 -o /dev/fd/5 5>>fd.elf
	assert_same_file "dump -o /dev/fd/5 opened for appending" <(cat hdr ref.elf) fd.elf
	# Standard output at its start is written directly: the shell's next
	# line follows the dump instead of overwriting its ELF header.
	{ "$Q2E" dump img.qcow2 -o -; echo trl; } >fd.elf
	assert_same_file "dump -o - then a line, into one file" <(cat ref.elf trl) fd.elf
	"$Q2E" restore ref.elf -o /dev/stdout | cat >fd.qcow2
	assert_same_file "restore -o /dev/stdout, as -o -, needs no --force" ref.qcow2 fd.qcow2
	assert_status "dump -o /dev/fd/9 (not open) fails" 1 "$Q2E" dump img.qcow2 -o /dev/fd/9
	assert_eq "saying why" "qcow2elf: '/dev/fd/9': cannot write: Bad file descriptor" \
		"$(cat "$T_TMP/.err")"
}
t_case "/dev/stdout, /dev/stderr, /dev/fd/N" descriptor_case
"$Q2E" restore ref.elf -o - | cat >pipe.qcow2
assert_same_file "restore -o - writes the image to a pipe" ref.qcow2 pipe.qcow2
"$Q2E" restore ref.elf -o - >stdout.qcow2
assert_same_file "restore -o - writes the image to a file" ref.qcow2 stdout.qcow2
assert_status "which qemu-img checks clean" 0 qemu-img check -q stdout.qcow2
assert_status "a full standard output is an error" 1 sh -c "'$Q2E' dump img.qcow2 -o - >/dev/full"

# A FIFO is written in place, as a stream.  A FIFO replaced by a file
# leaves its reader waiting on the old one: reap ends it rather than hang.
reap() {
	test -p fifo || kill "$1" 2>/dev/null
	wait "$1"
}
fifo_case() {
	mkfifo fifo
	cat fifo >fifo.elf &
	assert_status "dump -o FIFO exits 0" 0 "$Q2E" dump img.qcow2 -o fifo
	reap $!
	assert_status "the FIFO is still a FIFO" 0 test -p fifo
	assert_same_file "and the reader got the dump" ref.elf fifo.elf
	assert_status "restore -o FIFO without --force is refused" 1 "$Q2E" restore ref.elf -o fifo
	cat fifo >fifo.qcow2 &
	assert_status "restore --force -o FIFO exits 0" 0 "$Q2E" restore --force ref.elf -o fifo
	reap $!
	assert_same_file "and the reader got the image" ref.qcow2 fifo.qcow2
	assert_status "the FIFO is still a FIFO" 0 test -p fifo
}
t_case "a FIFO" fifo_case

# A character device: nodes of our own, never the machine's /dev/null and
# /dev/full, which the old behaviour replaced.
device_case() {
	if [ "$(id -u)" != 0 ] || ! mknod null c 1 3 2>/dev/null ||
	   ! mknod full c 1 7 2>/dev/null; then
		skip "a device node needs root"
		return 0
	fi
	assert_status "dump -o DEVICE exits 0" 0 "$Q2E" dump img.qcow2 -o null
	assert_status "the device is still a device" 0 test -c null
	assert_status "dump -o a full device fails" 1 "$Q2E" dump img.qcow2 -o full
	assert_match "saying why" "'full': cannot write: No space left on device" "$(cat "$T_TMP/.err")"
	assert_status "the full device is still a device" 0 test -c full
}
t_case "a character device" device_case

# Symbolic links: followed, and left links.
link_case() {
	echo old >real.elf
	chmod 0600 real.elf
	ln -s real.elf link.elf
	assert_status "dump -o LINK exits 0" 0 "$Q2E" dump img.qcow2 -o link.elf
	assert_status "the link is still a link" 0 test -L link.elf
	assert_same_file "the file it names holds the dump" ref.elf real.elf
	assert_eq "and keeps its mode" 600 "$(stat -c %a real.elf)"
	mkdir sub
	ln -s ../new.elf sub/dangling.elf
	assert_status "dump -o DANGLING-LINK exits 0" 0 "$Q2E" dump img.qcow2 -o sub/dangling.elf
	assert_status "the link is still a link" 0 test -L sub/dangling.elf
	assert_same_file "the file it names is created" ref.elf new.elf
	ln -s gone.qcow2 dangling.qcow2
	assert_status "restore -o DANGLING-LINK without --force is refused" 1 "$Q2E" restore ref.elf -o dangling.qcow2
	assert_status "restore -o LINK without --force is refused" 1 "$Q2E" restore ref.elf -o link.elf
	assert_same_file "and the file it names is untouched" ref.elf real.elf
	assert_status "restore --force -o LINK exits 0" 0 "$Q2E" restore --force ref.elf -o link.elf
	assert_status "the link is still a link" 0 test -L link.elf
	assert_same_file "the file it names holds the image" ref.qcow2 real.elf
}
t_case "symbolic links" link_case

mode_case() {
	(umask 027 && "$Q2E" dump img.qcow2 -o new-mode.elf)
	assert_eq "a new file gets 0666 less the umask" 640 "$(stat -c %a new-mode.elf)"
	chmod 0604 new-mode.elf
	"$Q2E" dump img.qcow2 -o new-mode.elf
	assert_eq "a replaced file keeps its mode" 604 "$(stat -c %a new-mode.elf)"
}
t_case "modes" mode_case

# A name as long as the file system takes: its temporary name is cut short
# to fit (it was NAME.tmpXXXXXX, refused after all the work); one longer
# than that fails before the work.
long_name_case() {
	local max n name
	max=$(getconf NAME_MAX .) || max=255
	for n in $((max - 9)) $((max - 5)) "$max"; do
		name=$(printf 'n%.0s' $(seq "$n"))
		assert_status "dump -o a name of $n bytes" 0 "$Q2E" dump img.qcow2 -o "$name"
		assert_status "dump -o it again, replacing it" 0 "$Q2E" dump img.qcow2 -o "$name"
		assert_same_file "which holds the dump" ref.elf "$name"
		assert_status "restore --force -o it" 0 "$Q2E" restore --force ref.elf -o "$name"
		assert_same_file "which holds the image" ref.qcow2 "$name"
		rm "$name"
	done
	name=$(printf 'n%.0s' $(seq $((max + 1))))
	assert_status "dump -o a name of $((max + 1)) bytes fails" 1 "$Q2E" dump img.qcow2 -o "$name"
	assert_match "before the work, saying why" "cannot create it: File name too long" \
		"$(cat "$T_TMP/.err")"
}
t_case "names of up to NAME_MAX bytes" long_name_case

# The files the input reads are refused, as the input itself is.
chain_case() {
	qemu-img create -q -f qcow2 base.qcow2 64M
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
	cp base.qcow2 base.orig
	cp mid.qcow2 mid.orig
	assert_status "dump -o its backing file is refused" 1 "$Q2E" dump top.qcow2 -o mid.qcow2
	assert_match "naming it" "'mid.qcow2' is a file the input reads" "$(cat "$T_TMP/.err")"
	assert_status "dump -o its backing file's backing file is refused" 1 "$Q2E" dump top.qcow2 -o base.qcow2
	assert_same_file "the backing files are untouched" base.orig base.qcow2
	assert_same_file "both of them" mid.orig mid.qcow2
	qemu-img create -q -f qcow2 -o data_file=ext.raw ext.qcow2 64M
	qemu-io -c 'write -P 7 0 64k' ext.qcow2 >/dev/null
	cp ext.raw ext.orig
	assert_status "dump -o its external data file is refused" 1 "$Q2E" dump ext.qcow2 -o ext.raw
	assert_same_file "the data file is untouched" ext.orig ext.raw
	# QEMU 7.2 looks for a relative data file name from the working
	# directory: from another, the file beside the image is not the one
	# it reads, but the one the image's writer meant.
	mkdir -p elsewhere
	assert_status "dump -o the data file beside the image, run from another directory, is refused" 1 \
		sh -c "cd elsewhere && '$Q2E' dump ../ext.qcow2 -o ../ext.raw"
	assert_match "as a file the input reads" "'../ext.raw' is a file the input reads" \
		"$(cat "$T_TMP/.err")"
	assert_same_file "the data file is untouched" ext.orig ext.raw
	cp top.qcow2 top.orig
	assert_status "dump -o - onto its input is refused" 1 sh -c "'$Q2E' dump top.qcow2 -o - 1<>top.qcow2"
	assert_match "saying standard output is the input" \
		"^qcow2elf: standard output is the input file \\(was it closed, or opened on the input\\?\\); refusing" \
		"$(cat "$T_TMP/.err")"
	assert_same_file "the input is untouched" top.orig top.qcow2
	# Standard output closed: the image opens as descriptor 1.
	assert_status "dump -o - with standard output closed is refused" 1 \
		sh -c "'$Q2E' dump top.qcow2 -o - >&-"
	assert_match "saying standard output is the input" \
		"standard output is the input file" "$(cat "$T_TMP/.err")"
	assert_same_file "the input is untouched" top.orig top.qcow2
}
t_case "the files the input reads" chain_case

assert_eq "no temporary file is left behind" "" "$(find . -name '*.tmp*')"
finish
