# SPDX-License-Identifier: GPL-2.0-or-later
# A running VM's hold on an image, for the tests of QEMU's locks: sourced
# after common.sh.
#
# hold MODE IMAGE: qemu-io keeps IMAGE open (MODE -r: read-only) until
# release; waits until the kernel lists its locks on IMAGE (OFD locks in
# /proc/locks, by inode), or 10 s, and fails if they never come.
hold() {
	local ino
	rm -f "$T_TMP/hold.fifo" && mkfifo "$T_TMP/hold.fifo"
	qemu-io $1 -f qcow2 "$2" <"$T_TMP/hold.fifo" >/dev/null 2>&1 &
	HOLDER=$!
	exec 7>"$T_TMP/hold.fifo"
	ino=$(stat -c %i "$2")
	for _ in $(seq 100); do
		grep -q "OFDLCK .*:$ino " /proc/locks && return 0
		sleep 0.1
	done
	fail "qemu-io $1 holds its locks on $2"
}
release() { exec 7>&-; wait "$HOLDER"; }
