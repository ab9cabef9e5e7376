#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs every integration test (tests/integration/t_*.sh) and sums them up.
# A file that exits 77 could not run (a tool is missing) and is listed as
# skipped by name; one that fails, or ends without its summary line, is
# listed as failed.  Arguments name the files to run (t_info_map.sh ...),
# by default all.
set -u
cd "$(dirname "$0")"
pass=0 fail=0 skipped=0 failed_tests=() skipped_tests=()
[ $# -gt 0 ] || set -- t_*.sh
for t in "$@"; do
	out=$(bash "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -v '^ok ' | sed '$d'
	line=$(printf '%s\n' "$out" | tail -n 1)
	echo "$line"
	summary='^t_[a-z0-9_]*: [0-9]* passed, [0-9]* failed, [0-9]* skipped$'
	if ! printf '%s' "$line" | grep -q "$summary"; then
		failed_tests+=("$t")
		fail=$((fail + 1))
		continue
	fi
	set -- $line
	pass=$(($pass + $2)) fail=$(($fail + $4)) skipped=$(($skipped + $6))
	if [ "$rc" -eq 77 ]; then
		why=$(printf '%s\n' "$out" | sed -n 's/^skip [^:]*: //p' | head -n 1)
		skipped_tests+=("$t (${why:-skipped})")
	elif [ "$rc" -ne 0 ]; then
		failed_tests+=("$t")
		[ "$4" -eq 0 ] && fail=$((fail + 1))
	fi
done
[ ${#skipped_tests[@]} -eq 0 ] || printf 'skipped: %s\n' "${skipped_tests[@]}"
[ ${#failed_tests[@]} -eq 0 ] || echo "failed: ${failed_tests[*]}"
echo "integration: $pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ ${#failed_tests[@]} -eq 0 ]
