#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Rewrites one fact of a qcow2elf dump's note in place, for tests that
need a dump claiming what no real image gives (an 8 EiB file).

    dump_note.py DUMP KEY VALUE

The note keeps its size: the image name (qcow2elf:image=...) is shortened
or padded with '_' to make room, so nothing else in the file moves.
Little-endian ELF64 only, as dumps written on this machine are."""
import struct
import sys

PREFIX = b"qcow2elf:"


def read_notes(buf, off, size):
    notes, at = [], off
    while at + 12 <= off + size:
        namesz, descsz, ntype = struct.unpack_from("<III", buf, at)
        name = bytes(buf[at + 12:at + 12 + namesz]).rstrip(b"\0")
        notes.append((name, ntype))
        at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
    return notes


def encode(notes):
    out = b""
    for name, ntype in notes:
        raw = name + b"\0"
        out += struct.pack("<III", len(raw), 0, ntype)
        out += raw + b"\0" * (-len(raw) % 4)
    return out


def main():
    path, key, value = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
    buf = bytearray(open(path, "rb").read())
    phoff, = struct.unpack_from("<Q", buf, 32)
    phentsize, phnum = struct.unpack_from("<HH", buf, 54)
    for i in range(phnum):
        ptype, _, poff, _, _, filesz = struct.unpack_from(
            "<IIQQQQ", buf, phoff + i * phentsize)
        if ptype == 4:
            break
    else:
        sys.exit("no PT_NOTE")
    notes = read_notes(buf, poff, filesz)
    facts = [n[len(PREFIX):].split(b"=", 1) for n, _ in notes]
    for f in facts:
        if f[0] == key:
            f[1] = value
    image = next(f for f in facts if f[0] == b"image")
    for n in range(0, 4096):
        image[1] = b"_" * n
        new = encode([(PREFIX + k + b"=" + v, t)
                      for (k, v), (_, t) in zip(facts, notes)])
        if len(new) == filesz:
            buf[poff:poff + filesz] = new
            open(path, "wb").write(buf)
            return
    sys.exit("cannot keep the note's size")


main()
