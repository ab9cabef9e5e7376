#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job on an image made here: installs what is missing, builds,
# makes a sample image with qemu-img and qemu-io (data, a zero range, a
# compressed cluster, two snapshots, a bitmap), dumps its metadata to ELF
# and reads the dump with readelf and gdb.  Files go to ./demo/.
set -eu
cd "$(dirname "$0")/.."
contrib/install-deps.sh
make -s

mkdir -p demo
cd demo
rm -f sample.qcow2 sample.elf
qemu-img create -q -f qcow2 sample.qcow2 256M
qemu-io -c 'write -P 0xaa 0 192k' -c 'write -z 1M 64k' -c 'write -c 2M 64k' sample.qcow2 >/dev/null
qemu-img snapshot -c "before upgrade" sample.qcow2
qemu-io -c 'write -P 0xbb 64M 64k' sample.qcow2 >/dev/null
qemu-img snapshot -c after sample.qcow2
qemu-img bitmap --add sample.qcow2 backup-0

run() { printf '\n$ %s\n' "$*"; "$@"; }
run ../qcow2elf dump sample.qcow2 -o sample.elf
run readelf -SW sample.elf
run gdb -nx -batch -ex 'p qcow2_header' -ex 'p/x l1_table[0]' \
	-ex 'p l2_table_0[0]' -ex 'p snapshot_0' -ex 'info symbol 0x30000' sample.elf
run ../qcow2elf info sample.elf
