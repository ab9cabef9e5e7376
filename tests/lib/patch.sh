# SPDX-License-Identifier: GPL-2.0-or-later
# Reading and patching big-endian fields of an image in place, for tests
# that damage images qemu-img made.  QCOW2 is big-endian throughout.
# Values are bash integers: a u64 with its top bit set reads as negative,
# which the masks the tests apply (& 0x00fffffffffffe00) undo.

# get_be FILE OFFSET BYTES: the big-endian integer there, in decimal.
get_be() {
	local v=0 b

	for b in $(od -An -v -tu1 -j "$2" -N "$3" "$1"); do
		v=$(((v << 8) | b))
	done
	echo "$v"
}

# put_be FILE OFFSET BYTES VALUE: writes VALUE there, big-endian, in
# BYTES bytes, without changing the file's size or anything else in it.
put_be() {
	local hex

	hex=$(printf "%0$(($3 * 2))x" "$4")
	hex=${hex: -$(($3 * 2))}
	printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

get64() { get_be "$1" "$2" 8; }		# get64 FILE OFFSET
put64() { put_be "$1" "$2" 8 "$3"; }	# put64 FILE OFFSET VALUE
put32() { put_be "$1" "$2" 4 "$3"; }	# put32 FILE OFFSET VALUE
