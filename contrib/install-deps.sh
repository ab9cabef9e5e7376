#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what building and testing qcow2elf needs on Debian (bookworm),
# and only what is missing.  Run as root, or with sudo available.
set -eu

packages=(
	gcc make pkg-config			# build
	libelf-dev libdwarf-dev zlib1g-dev	# libelf and zlib (linked from their
						# archives), the libdwarf producer
						# (loaded by dump)
	liburing-dev				# io_uring reads (optional;
						# linked from its archive)
	libcmocka-dev				# unit tests
	qemu-utils				# qemu-img, qemu-io: test images
	binutils elfutils gdb llvm		# readelf, eu-elflint, gdb, llvm-dwarfdump
	jq python3 valgrind git strace		# integration tests
	mandoc parallel				# t_docs: man page lint, fleet examples
	clang libclang-rt-dev			# make fuzz: libFuzzer
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	sudo=
elif command -v sudo >/dev/null; then
	sudo=sudo
else
	echo "install-deps: missing packages: ${missing[*]}" >&2
	echo "install-deps: run as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
