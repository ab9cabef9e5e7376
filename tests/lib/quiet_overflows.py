#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qemu-img check's lines on standard input, as qcow2elf check prints them:
past a cluster's 131,072nd refcount overflow line, its overflows (each a
line and a line of advice in qemu-img's output) become one line, at the
place of the first of them, that counts them."""
import re, sys
over = re.compile(r"ERROR: overflow cluster offset=0x([0-9a-f]+)$")
lines, seen, quiet, skip = [], {}, {}, False
for line in sys.stdin:
    m = over.match(line)
    if skip:	# the advice after an overflow not kept
        skip = False
        continue
    if m:
        c = m.group(1)
        seen[c] = seen.get(c, 0) + 1
        if seen[c] > 131072:
            if c not in quiet:
                lines.append(c)
                quiet[c] = 0
            quiet[c] += 1
            skip = True
            continue
    lines.append(line)
for line in lines:
    sys.stdout.write(line if line.endswith("\n") else "ERROR %d more refcount overflows of cluster offset=0x%s, the first here (qemu-img prints its overflow line and advice for each)\n" % (quiet[line], line))
