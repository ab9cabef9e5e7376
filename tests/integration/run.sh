#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs every integration test (tests/integration/t_*.sh) and sums them up.
set -u
cd "$(dirname "$0")"
pass=0 fail=0 skipped=0 failed_tests=()
for t in t_*.sh; do
	out=$(bash "$t" 2>&1)
	rc=$?
	printf '%s\n' "$out" | grep -v '^ok ' | sed '$d'
	line=$(printf '%s\n' "$out" | tail -n 1)
	p=$(printf '%s' "$line" | sed -n 's/.*: \([0-9]*\) passed.*/\1/p')
	f=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	s=$(printf '%s' "$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p')
	pass=$((pass + ${p:-0})); fail=$((fail + ${f:-0})); skipped=$((skipped + ${s:-0}))
	echo "$line"
	if [ "$rc" -ne 0 ]; then
		failed_tests+=("$t")
		[ -z "$f" ] || [ "$f" -eq 0 ] && fail=$((fail + 1))
	fi
done
[ ${#failed_tests[@]} -eq 0 ] || echo "failed: ${failed_tests[*]}"
echo "integration: $pass passed, $fail failed, $skipped skipped"
[ "$fail" -eq 0 ] && [ ${#failed_tests[@]} -eq 0 ]
