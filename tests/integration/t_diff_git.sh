#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# contrib/git: a repository that keeps dumps shows `qcow2elf diff` in
# `git diff` and `git log -p`, configured as contrib/git/README says.
. "$(dirname "$0")/../lib/common.sh"
need git qemu-img qemu-io

cd "$T_TMP" || finish
export QCOW2ELF=$Q2E GIT_CONFIG_NOSYSTEM=1 HOME=$T_TMP
git init -q repo && cd repo || finish
git config user.email t@example.com
git config user.name test
cat "$TOP/contrib/git/gitattributes" >.gitattributes
git config diff.qcow2elf.command "$TOP/contrib/git/qcow2elf-git-diff"

qemu-img create -q -f qcow2 ../disk.qcow2 1G
"$Q2E" dump ../disk.qcow2 -o disk.elf
git add .gitattributes disk.elf && git commit -qm before
qemu-io -c 'write 150M 128k' ../disk.qcow2 >/dev/null
"$Q2E" dump ../disk.qcow2 -o disk.elf

git diff >diff.out 2>diff.err
assert_status "git diff succeeds although the dumps differ" 0 git diff
assert_eq "it opens with the file's name" "qcow2elf diff a/disk.elf b/disk.elf" "$(head -1 diff.out)"
assert_match "and names the L2 entries that changed" "name +l2_table_0\[2400\.\.2401\]" "$(cat diff.out)"
assert_match "with the new value" "new +0x8000000000050000" "$(cat diff.out)"
assert_eq "no colour into a file" "0" "$(grep -c $'\033' diff.out)"
assert_match "colour in git's pager" $'\033\\[32m' "$(GIT_PAGER_IN_USE=true git diff)"

git commit -qam after
assert_match "git log -p --ext-diff shows it too" "refcount_block_0\[4\.\.6\]" "$(git log -p --ext-diff -1)"
"$Q2E" dump ../disk.qcow2 -o other.elf
git add other.elf
assert_match "a new dump is a new file" "new file" "$(git diff --cached)"
git commit -qm other
git mv disk.elf renamed.elf
git commit -qm renamed
git show -M --ext-diff --format= HEAD >rename.out
git show -M --no-ext-diff --format= HEAD >rename-git.out
assert_eq "a renamed dump: named by the paths git's own header names, old then new" \
	"$(sed -n '1s/^diff --git //p' rename-git.out)" \
	"$(sed -n '1s/^qcow2elf diff //p' rename.out)"
assert_eq "...which are the old name and the new" "a/disk.elf b/renamed.elf" \
	"$(sed -n '1s/^diff --git //p' rename-git.out)"
finish
