# SPDX-License-Identifier: GPL-2.0-or-later
# qcow2elf gdb helpers: `qcow2 info|regions|translate|refcount|whatis|
# snapshots|bitmaps|bitmap` and pretty-printers for a dump written by
# `qcow2elf dump`.  Everything is read from the dump gdb has loaded: the
# image's bytes through gdb's memory (the sections are at the image's
# offsets), the section and symbol tables from the ELF file the objfile
# names (gdb 13 resolves no symbol past section 32767 through `info
# symbol`, and has no Python API for sections).  Dumps carry this file in
# .debug_gdb_scripts; it is also installed for `source`.
import bisect
import math
import re
import struct

import gdb

L1E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
L2E_OFFSET_MASK = 0x00FFFFFFFFFFFE00
REFT_OFFSET_MASK = 0xFFFFFFFFFFFFFE00
OFLAG_COPIED = 1 << 63
OFLAG_COMPRESSED = 1 << 62
OFLAG_ZERO = 1
L1E_RESERVED = 0x7F000000000001FF
L2E_STD_RESERVED = 0x3F000000000001FE
BME_TABLE_RESERVED = 0xFF000000000001FE
EXT_FEATURE_TABLE = 0x6803F857
EXT_BITMAPS = 0x23852875
EXT_DATA_FILE = 0x44415441

FEATURES = {  # the spec's names, when the image has no feature name table
    0: {0: "dirty", 1: "corrupt", 2: "external data file",
        3: "compression type", 4: "extended L2 entries"},
    1: {0: "lazy refcounts"},
    2: {0: "bitmaps", 1: "raw external data"},
}
FEATURE_KINDS = ("incompatible", "compatible", "autoclear")
EXTENSIONS = {0xE2792ACA: "backing format", 0x6803F857: "feature name table",
              0x23852875: "bitmaps", 0x0537BE77: "full disk encryption",
              0x44415441: "external data file"}
BITMAP_FLAGS = {1: "in_use", 2: "auto", 4: "extra_data_compatible"}
HEADER_FIELDS = (("magic", 0, 4), ("version", 4, 4),
                 ("backing_file_offset", 8, 8), ("backing_file_size", 16, 4),
                 ("cluster_bits", 20, 4), ("size", 24, 8),
                 ("crypt_method", 32, 4), ("l1_size", 36, 4),
                 ("l1_table_offset", 40, 8), ("refcount_table_offset", 48, 8),
                 ("refcount_table_clusters", 56, 4), ("nb_snapshots", 60, 4),
                 ("snapshots_offset", 64, 8),
                 ("incompatible_features", 72, 8),
                 ("compatible_features", 80, 8),
                 ("autoclear_features", 88, 8), ("refcount_order", 96, 4),
                 ("header_length", 100, 4), ("compression_type", 104, 1))


# QEMU's limits (include/qcow2elf/qcow2.h), which the C code keeps too: a
# dump is untrusted input, so no field makes the helpers read or loop more.
MIN_CLUSTER_BITS, MAX_CLUSTER_BITS = 9, 21
MAX_REFCOUNT_ORDER = 6
MAX_SNAPSHOTS = 65536
MAX_SNAPSHOT_EXTRA = 1024
MAX_SNAPSHOT_TABLE = 64 << 20
MAX_BITMAPS = 65535
MAX_BITMAP_NAME = 1023
MAX_BITMAP_DIRECTORY = 64 << 20
MAX_NAME = 4096     # an ELF name: qcow2elf's are under 64 bytes

# qemu_strtosz()'s suffixes, in either case; B is bytes.
SUFFIXES = {"B": 0, "K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}
# A size as QEMU 7.2 reads one: decimal with an optional fraction, or hex
# (its suffix deprecated, but taken), then at most one suffix.
SIZE = re.compile(r"(?:([0-9]+)(\.[0-9]*)?|0[xX]([0-9a-fA-F]+))"
                  r"([bkmgtpeBKMGTPE]?)\Z")
SIZE_MAX = (1 << 63) - 1    # qemu-img's limit of a size or an offset


def _suffixed(term):
    """A size as qemu-img reads one (4M, 1g, 1.5M, 512B, 0x10k), or None
    where TERM has no suffix (gdb reads it: 010 is 8) or is no size.  As
    qemu_strtosz(): a fraction needs a suffix other than B unless it is
    zero, and rounds half up; past 2^63 - 1 is an error."""
    m = SIZE.match(term.strip())
    if not m or not m.group(4):
        return None
    whole, frac, hexdigits, suffix = m.groups()
    shift = SUFFIXES[suffix.upper()]
    if hexdigits is not None:
        v = int(hexdigits, 16) << shift
    else:
        # The fraction as QEMU keeps it: a double, as a 64-bit binary
        # fraction (one that reads as 1.0 overflows to 0, as on x86),
        # scaled and rounded half up (src/cli/size.c does the same).
        d = float(frac) if frac and len(frac) > 1 else 0.0
        f = int(d * 2.0 ** 64) if d < 1.0 else 0
        if f and not shift:
            return None
        v = (int(whole) << shift) + ((f << shift) >> 64) + \
            ((f << shift) >> 63 & 1)
    if v > SIZE_MAX:
        raise gdb.error("past 2^63 - 1, the largest size qemu-img takes")
    return v


def _gdb_int(expr):
    """EXPR as gdb reads it, which must be a whole number (gdb would read
    1.5 as 1)."""
    v = gdb.parse_and_eval(expr)
    if v.type.strip_typedefs().code == gdb.TYPE_CODE_FLT:
        f = float(v)
        if not math.isfinite(f) or f != int(f):
            raise gdb.error("not a whole number")
        return int(f)
    return int(v)


def _terms(arg):
    """ARG split at its signs, the signs between the terms ([t, s, t...]);
    a sign between a decimal mantissa ending in e and plain digits (1e+3,
    2.5E-1) is a float's exponent, not a sign between terms (in 0x1e+4k
    and 7E+7E it is one)."""
    parts = re.split(r"([+-])", arg)
    out = parts[:1]
    for sign, term in zip(parts[1::2], parts[2::2]):
        last = out[-1].split()[-1:]
        if last and re.match(r"[0-9]*\.?[0-9]+[eE]\Z", last[0]) and \
                re.match(r"[0-9]+(?![0-9A-Za-z_.])", term):
            out[-1] += sign + term
        else:
            out += [sign, term]
    return out


def _int(arg, what):
    """A gdb expression, or a sum or difference whose terms may be sizes
    as qemu-img reads them (4M, 1G+4k, 0x100000+4k, 64M-1); other terms
    are read as gdb reads them (010 is 8, 1e+3 is 1000)."""
    arg = arg.strip()
    try:
        if _suffixed(arg) is not None:
            return _suffixed(arg)
        parts = _terms(arg)
        terms = parts[0::2]
        if len(terms) > 1 and any(_suffixed(t) is not None for t in terms):
            total, sign = 0, 1
            for i, t in enumerate(terms):
                if i:
                    sign = 1 if parts[2 * i - 1] == "+" else -1
                if not t.strip():
                    if i:
                        raise gdb.error("a sign without a number")
                    continue
                v = _suffixed(t)
                total += sign * (v if v is not None else _gdb_int(t))
            if abs(total) > SIZE_MAX:
                raise gdb.error("past 2^63 - 1, the largest size qemu-img "
                                "takes")
            return total
        return _gdb_int(arg)
    except gdb.error as e:
        raise gdb.GdbError("%s: cannot read '%s': %s" % (what, arg, e))


def _utf8_char(raw, i):
    """The character of well-formed UTF-8 at RAW[i], or None."""
    for k in (2, 3, 4):  # the shortest that decodes is one character
        try:
            return raw[i:i + k].decode("utf-8")
        except UnicodeDecodeError:
            pass
    return None


def _shown(raw, message=False):
    """Bytes from the dump (a name) as text safe to print, as qcow2elf
    prints names (and as `ls -b` and git quote them): well-formed UTF-8
    passes; control characters, C1 controls and the bytes of bad UTF-8 are
    written \\xNN, so that a name cannot drive the terminal (ESC ]0;...
    would retitle it), and a backslash \\\\, so that a name holding the
    four characters \\x1b is not printed as one holding ESC (_unshown()
    reads it back).  In a MESSAGE (an error naming the dump's file), a
    backslash stays single, as in qcow2elf's messages."""
    out, i, n = [], 0, len(raw)
    while i < n:
        c = raw[i]
        if 0x20 <= c < 0x7F:
            j = i + 1
            while j < n and 0x20 <= raw[j] < 0x7F:
                j += 1
            text = raw[i:j].decode("ascii")
            out.append(text if message else text.replace("\\", "\\\\"))
            i = j
            continue
        ch = _utf8_char(raw, i) if c >= 0x80 else None
        if ch is not None and ord(ch) >= 0xA0:
            out.append(ch)
            i += len(ch.encode("utf-8"))
            continue
        out.append("\\x%02x" % c)
        i += 1
    return "".join(out)


def _unshown(text, what):
    """The bytes of a name given as _shown() prints it: \\\\ is a
    backslash, \\xNN the byte NN, and any other character itself (as
    UTF-8).  A backslash before anything else is an error: a name as
    printed has none."""
    raw = text.encode("utf-8", "surrogateescape")
    out, i = bytearray(), 0
    while i < len(raw):
        j = raw.find(b"\\", i)
        if j < 0:
            out += raw[i:]
            break
        out += raw[i:j]
        if raw[j + 1:j + 2] == b"\\":
            out += b"\\"
            i = j + 2
            continue
        hexits = raw[j + 2:j + 4]
        if raw[j + 1:j + 2] != b"x" or len(hexits) != 2 or \
                not all(chr(h) in "0123456789abcdefABCDEF" for h in hexits):
            raise gdb.GdbError(
                "%s: '%s' is not a name as printed: a backslash there is "
                "\\\\ or starts \\xNN (with gdb's quoting, type each "
                "backslash twice)" % (what, text))
        out.append(int(hexits, 16))
        i = j + 4
    return bytes(out)


def _names(value, names):
    out = [names.get(1 << b, "bit %d" % b) for b in range(64)
           if value >> b & 1]
    return " | ".join(out) if out else "none"


class Dump:
    """One dump: its ELF tables, and the image read through gdb."""

    def __init__(self, path):
        self.path = path
        self._exts = self._features = self._snaps = self._bitmaps = None
        with open(path, "rb") as f:
            self._read_elf(f)
        self.inferior = gdb.selected_inferior()
        self._read_header()

    def error(self, what):
        """A clear error about the dump: its file, then what is wrong."""
        return gdb.GdbError("'%s': %s" % (
            _shown(self.path.encode("utf-8", "surrogateescape"), True), what))

    # --- the ELF file ------------------------------------------------
    def _read_elf(self, f):
        # Every table is read from where the file holds it, at most the
        # file's size: no count or size from the file is trusted (as
        # src/source/elf_source.c, with libelf, checks them).
        self.file_size = f.seek(0, 2)
        f.seek(0)
        ident = f.read(64)
        if len(ident) < 64 or ident[:4] != b"\x7fELF" or ident[4] != 2:
            raise self.error("not a 64-bit ELF file")
        e = "<" if ident[5] == 1 else ">"
        (shoff,) = struct.unpack_from(e + "Q", ident, 40)
        shnum, shstrndx = struct.unpack_from(e + "HH", ident, 60)

        def held(off, n, what):
            size = self.file_size
            if off > size or n > size - off:
                raise self.error("%s at file offset 0x%x (%d bytes) runs "
                                 "past the end of the dump (%d bytes)" %
                                 (what, off, n, size))
            f.seek(off)
            return f.read(n)

        shdrs = []
        if shoff:
            first = held(shoff, 64, "the section header table")
            if shnum == 0:
                (shnum,) = struct.unpack_from(e + "Q", first, 32)
            if shstrndx == 0xFFFF:
                (shstrndx,) = struct.unpack_from(e + "I", first, 40)
            if shnum > (self.file_size - shoff) // 64:
                raise self.error("the section header table at file offset "
                                 "0x%x claims %d sections, past the end of "
                                 "the dump" % (shoff, shnum))
            raw = held(shoff, 64 * shnum, "the section header table")
            shdrs = [struct.unpack_from(e + "IIQQQQIIQQ", raw, 64 * i)
                     for i in range(shnum)]

        def section(i, what):
            if i >= len(shdrs):
                raise self.error("%s is section %d, past the %d sections" %
                                 (what, i, len(shdrs)))
            h = shdrs[i]
            if h[1] == 8:       # SHT_NOBITS: no bytes in the file
                return b""
            return held(h[4], h[5], "section %d (%s)" % (i, what))

        def cstr(tab, at, what):
            end = tab.find(b"\0", at, at + MAX_NAME + 1)
            if at >= len(tab) or end < 0:
                raise self.error("%s: no name of at most %d bytes at offset "
                                 "0x%x of its string table" %
                                 (what, MAX_NAME, at))
            return _shown(tab[at:end])

        shstr = section(shstrndx, "the section name table") if shdrs else b""
        self.facts = {}         # the note's qcow2elf:KEY=VALUE
        self.sections = []      # (addr, size, name), by address
        self.empty = set()      # the addresses of sections without bytes
        symtab = strtab = None
        for i, h in enumerate(shdrs):
            name = cstr(shstr, h[0], "section %d" % i)
            if name.startswith(".qcow2.") and h[2] & 2:
                if h[1] == 8:
                    self.empty.add(h[3])
                else:           # its bytes lie in the file, as in C
                    if h[4] > self.file_size or \
                            h[5] > self.file_size - h[4]:
                        raise self.error(
                            "section %d (%s) at file offset 0x%x runs past "
                            "the end of the dump" % (i, name, h[4]))
                self.sections.append((h[3], h[5], name))
            elif h[1] == 2:     # SHT_SYMTAB
                symtab, strtab = section(i, "the symbol table"), \
                    section(h[6], "the symbol table's string table")
            elif h[1] == 7 and name == ".note.qcow2elf":    # SHT_NOTE
                self.facts = note_facts(section(i, name), e)
        self.sections.sort()
        self.starts = [s[0] for s in self.sections]
        self.symbols = {}       # name -> (addr, size)
        self.at = {}            # addr -> [names], in symbol table order
        if symtab:
            for i in range(1, len(symtab) // 24):
                nm, _, _, _, value, size = struct.unpack_from(
                    e + "IBBHQQ", symtab, 24 * i)
                name = cstr(strtab, nm, "symbol %d" % i)
                self.symbols[name] = (value, size)
                self.at.setdefault(value, []).append(name)
        # The symbols naming each (address, size), the active owner first:
        # found once here, not by a scan of the symbols for each region.
        self.owned = {}
        for value, names in self.at.items():
            for n in names:
                if not _is_entry_symbol(n):
                    key = (value, self.symbols[n][1])
                    self.owned.setdefault(key, []).append(n)
        for names in self.owned.values():
            names.sort(key=lambda n: n.startswith(("snapshot_", "bitmap_")))
        # The union of the sections' ranges, disjoint and sorted, for read().
        self.held = []
        for addr, n, _ in self.sections:
            if self.held and addr <= self.held[-1][1]:
                self.held[-1][1] = max(self.held[-1][1], addr + n)
            elif n:
                self.held.append([addr, addr + n])
        self.held_starts = [h[0] for h in self.held]

    # --- the image -----------------------------------------------------
    def read(self, addr, n):
        """Bytes of the image: those no section holds read as zeros.
        Callers keep N within QEMU's limits."""
        try:
            return bytes(self.inferior.read_memory(addr, n))
        except gdb.MemoryError:
            pass
        out = bytearray(n)
        i = max(bisect.bisect_right(self.held_starts, addr) - 1, 0)
        while i < len(self.held) and self.held[i][0] < addr + n:
            lo, hi = max(self.held[i][0], addr), min(self.held[i][1],
                                                     addr + n)
            if lo < hi:
                try:
                    out[lo - addr:hi - addr] = bytes(
                        self.inferior.read_memory(lo, hi - lo))
                except gdb.MemoryError:
                    pass        # a section gdb does not map: zeros
            i += 1
        return bytes(out)

    def be(self, addr, n):
        return int.from_bytes(self.read(addr, n), "big")

    def _read_header(self):
        raw = self.read(0, 112)
        self.hdr = {}
        for name, off, size in HEADER_FIELDS:
            self.hdr[name] = int.from_bytes(raw[off:off + size], "big")
        h = self.hdr
        if h["magic"] != 0x514649FB and 0 in self.empty:
            raise self.error("its header section holds no bytes (a dump "
                             "written with --no-data holds only the layout)")
        if h["magic"] != 0x514649FB:
            raise gdb.GdbError("'%s' holds no QCOW2 header" % self.path)
        if h["version"] < 3:
            h["refcount_order"] = 4
            h["header_length"] = 72
            h["incompatible_features"] = h["compatible_features"] = 0
            h["autoclear_features"] = h["compression_type"] = 0
        if h["header_length"] < 105:
            h["compression_type"] = 0
        if not MIN_CLUSTER_BITS <= h["cluster_bits"] <= MAX_CLUSTER_BITS:
            raise self.error("qcow2_header.cluster_bits (offset 0x14) is %d, "
                             "not QEMU's %d to %d" % (h["cluster_bits"],
                                                      MIN_CLUSTER_BITS,
                                                      MAX_CLUSTER_BITS))
        if h["refcount_order"] > MAX_REFCOUNT_ORDER:
            raise self.error("qcow2_header.refcount_order (offset 0x60) is "
                             "%d, past QEMU's %d" % (h["refcount_order"],
                                                     MAX_REFCOUNT_ORDER))
        self.cluster_bits = h["cluster_bits"]
        self.cluster_size = 1 << self.cluster_bits
        self.refcount_bits = 1 << h["refcount_order"]
        self.extended_l2 = bool(h["incompatible_features"] & 16)
        self.l2_entry_size = 16 if self.extended_l2 else 8
        self.l2_entries = self.cluster_size // self.l2_entry_size

    def section_at(self, off):
        i = bisect.bisect_right(self.starts, off) - 1
        while i >= 0:
            addr, size, name = self.sections[i]
            if addr <= off < addr + size:
                return self.sections[i]
            if addr + size <= off and i < len(self.sections) - 1:
                break
            i -= 1
        return None

    def owners(self, sec):
        """Symbols naming a region, the active owner first."""
        return self.owned.get(sec[:2], [])

    def extensions(self):
        """(offset, magic, length) of each header extension, read once:
        they lie in the first cluster, as QEMU reads them."""
        if self._exts is not None:
            return self._exts
        out, off = [], 72 if self.hdr["version"] < 3 else \
            self.hdr["header_length"]
        raw = self.read(0, self.cluster_size) if off < self.cluster_size \
            else b""
        self._features = {}
        while off + 8 <= self.cluster_size:
            magic, length = struct.unpack_from(">II", raw, off)
            if magic == 0:
                break
            if length > self.cluster_size - off - 8:
                raise self.error("header extension 0x%08x at 0x%x: its %d "
                                 "bytes run past the first cluster (0x%x)" %
                                 (magic, off, length, self.cluster_size))
            out.append((off, magic, length))
            if magic == EXT_FEATURE_TABLE:  # the first name of a bit wins
                for i in range(off + 8, off + 8 + length - 47, 48):
                    self._features.setdefault(
                        (raw[i], raw[i + 1]),
                        _shown(raw[i + 2:i + 48].split(b"\0")[0]))
            off += 8 + (length + 7) // 8 * 8
        self._exts = out
        return out

    def feature_name(self, kind, bit):
        self.extensions()
        return self._features.get((kind, bit),
                                  FEATURES[kind].get(bit,
                                                     "unknown bit %d" % bit))

    def host_note(self):
        """Where a data cluster's host offset lies when not in this image
        file: the external data file (its name from the header extension,
        as qemu-img map names it), or bytes the guest reads decrypted."""
        notes = []
        if self.hdr["incompatible_features"] & 4:
            names = [self.read(off + 8, n) for off, magic, n in
                     self.extensions() if magic == EXT_DATA_FILE]
            notes.append("in the external data file" +
                         (" '%s'" % _shown(names[0]) if names else ""))
        if self.hdr["crypt_method"]:
            notes.append("%s-encrypted: the guest reads these bytes decrypted" %
                         ("AES" if self.hdr["crypt_method"] == 1 else "LUKS"))
        return " (%s)" % ", ".join(notes) if notes else ""

    def _table_end(self, what, n, total, limit):
        """Entry N of a table a dump holds: within QEMU's limits of the
        count and the bytes, and within the dump's own size."""
        if n >= limit[0]:
            raise self.error("more than %d %s, QEMU's limit" % (limit[0],
                                                                 what))
        if total > min(limit[1], self.file_size):
            raise self.error("%s 0 to %d take %d bytes, more than QEMU's "
                             "limit (%d) or the dump's size (%d)" %
                             (what, n, total, limit[1], self.file_size))

    def stripped(self):
        """True for a dump without qcow2elf's symbols (strip removes the
        symbol table): its structures are then found through the header,
        as QEMU finds them, and read through the sections, which keep
        their addresses (image offsets)."""
        return "qcow2_header" not in self.symbols

    def snapshots(self):
        """The snapshot table's entries, read once."""
        if self._snaps is None:
            self._snaps = self._read_snapshots()
        return self._snaps

    def _entry_at(self, prefix, n, count, addr):
        """Where entry N of a table lies: at its symbol (PREFIX0,
        PREFIX1...), or in a stripped dump at ADDR, just past entry N-1,
        while N is under the header's COUNT; None past the last."""
        if self.stripped():
            return addr if n < count else None
        sym = self.symbols.get("%s%d" % (prefix, n))
        return sym[0] if sym else None

    def _read_snapshots(self):
        out, total = [], 0
        h = self.hdr
        if self.stripped() and h["nb_snapshots"] > MAX_SNAPSHOTS:
            raise self.error("qcow2_header.nb_snapshots (offset 0x3c) is "
                             "%d, over QEMU's %d" % (h["nb_snapshots"],
                                                     MAX_SNAPSHOTS))
        n, addr = 0, h["snapshots_offset"]
        while True:
            addr = self._entry_at("snapshot_", n, h["nb_snapshots"], addr)
            if addr is None:
                break
            self._table_end("snapshots", n, total,
                            (MAX_SNAPSHOTS, MAX_SNAPSHOT_TABLE))
            f = self.read(addr, 40)
            l1, l1_size, id_size, name_size = struct.unpack_from(">QIHH", f)
            date_sec, date_nsec, vm_clock, vm_state, extra = \
                struct.unpack_from(">IIQII", f, 16)
            if extra > MAX_SNAPSHOT_EXTRA:
                raise self.error("snapshot_%d at 0x%x: extra_data_size %d "
                                 "is over QEMU's %d" %
                                 (n, addr, extra, MAX_SNAPSHOT_EXTRA))
            size = (40 + extra + id_size + name_size + 7) // 8 * 8
            total += size
            self._table_end("snapshots", n, total,
                            (MAX_SNAPSHOTS, MAX_SNAPSHOT_TABLE))
            ex = self.read(addr + 40, extra)
            disk = int.from_bytes(ex[8:16], "big") if extra >= 16 else None
            tail = self.read(addr + 40 + extra, id_size + name_size)
            out.append(dict(n=n, addr=addr, l1=l1, l1_size=l1_size,
                            raw_id=tail[:id_size], id=_shown(tail[:id_size]),
                            raw_name=tail[id_size:],
                            name=_shown(tail[id_size:]),
                            date=date_sec, vm_state=vm_state, disk=disk))
            addr, n = addr + size, n + 1
        return out

    def bitmaps_ext(self):
        """(nb_bitmaps, directory size, directory offset) from the
        bitmaps extension, or None without one."""
        for off, magic, length in self.extensions():
            if magic == EXT_BITMAPS and length >= 24:
                nb, _, size, addr = struct.unpack(">IIQQ",
                                                  self.read(off + 8, 24))
                return nb, size, addr
        return None

    def bitmaps(self):
        """The bitmap directory's entries, read once."""
        if self._bitmaps is None:
            self._bitmaps = self._read_bitmaps()
        return self._bitmaps

    def _read_bitmaps(self):
        out, total = [], 0
        ext = self.bitmaps_ext() or (0, 0, 0)
        if self.stripped() and ext[0] > MAX_BITMAPS:
            raise self.error("ext_bitmaps.nb_bitmaps is %d, over QEMU's %d"
                             % (ext[0], MAX_BITMAPS))
        if self.stripped() and ext[1] > MAX_BITMAP_DIRECTORY:
            raise self.error("ext_bitmaps.bitmap_directory_size is %d, over "
                             "QEMU's %d" % (ext[1], MAX_BITMAP_DIRECTORY))
        n, addr = 0, ext[2]
        while True:
            addr = self._entry_at("bitmap_", n, ext[0], addr)
            if addr is None:
                break
            self._table_end("bitmaps", n, total,
                            (MAX_BITMAPS, MAX_BITMAP_DIRECTORY))
            table, tsize, flags, typ, gran, name_size, extra = \
                struct.unpack_from(">QIIBBHI", self.read(addr, 24))
            if name_size > MAX_BITMAP_NAME:
                raise self.error("bitmap_%d at 0x%x: name_size %d is over "
                                 "QEMU's %d" % (n, addr, name_size,
                                                MAX_BITMAP_NAME))
            size = (24 + extra + name_size + 7) // 8 * 8
            total += size
            self._table_end("bitmaps", n, total,
                            (MAX_BITMAPS, MAX_BITMAP_DIRECTORY))
            if self.stripped() and total > ext[1]:
                raise self.error("bitmap_%d at 0x%x runs past the bitmap "
                                 "directory's %d bytes" % (n, addr, ext[1]))
            name = self.read(addr + 24 + extra, name_size)
            out.append(dict(n=n, addr=addr, table=table, table_size=tsize,
                            flags=flags, type=typ, granularity=gran,
                            raw_name=name, name=_shown(name)))
            addr, n = addr + size, n + 1
        return out


def _is_entry_symbol(name):
    for p in ("snapshot_", "bitmap_"):
        if name.startswith(p) and name[len(p):].isdigit():
            return True
    return False


_dumps = {}


def current_dump():
    prog = gdb.current_progspace()
    path = prog.filename if prog else None
    if not path:
        raise gdb.GdbError("no dump loaded: run 'file DUMP' first")
    if path not in _dumps:
        _dumps[path] = Dump(path)
    return _dumps[path]


def _argv(arg, lo, hi, usage):
    argv = gdb.string_to_argv(arg)
    if not lo <= len(argv) <= hi:
        raise gdb.GdbError("usage: %s" % usage)
    return argv


def _offset_and_name(arg, what, usage, is_name):
    """OFFSET [NAME]: the offset an expression that may hold spaces
    (0x100000 + 4096), the name the last word where it is quoted or the
    whole is no expression.  Where the whole is one and so is all but a
    last word that IS_NAME takes (a snapshot named +4096), which was meant
    cannot be told: an error says to quote the name."""
    argv = gdb.string_to_argv(arg)
    if not argv:
        raise gdb.GdbError("usage: %s" % usage)
    head = " ".join(argv[:-1])
    if len(argv) > 1 and arg.rstrip()[-1:] in ("'", '"'):
        return _int(head, what), argv[-1]
    try:
        whole = _int(" ".join(argv), what)
    except gdb.GdbError:
        if len(argv) == 1:
            raise
        return _int(head, what), argv[-1]
    if len(argv) > 1 and is_name(argv[-1]):
        try:
            _int(head, what)
        except gdb.GdbError:
            return whole, None
        raise gdb.GdbError("%s: '%s' ends an offset and names a snapshot: "
                           "quote the snapshot (%s '%s') or write the "
                           "offset without spaces" %
                           (what, argv[-1], head, argv[-1]))
    return whole, None


def _offset(arg, what, usage):
    """An offset, as an expression that may hold spaces, and never
    negative."""
    argv = gdb.string_to_argv(arg)
    if not argv:
        raise gdb.GdbError("usage: %s" % usage)
    off = _int(" ".join(argv), what)
    if off < 0:
        raise gdb.GdbError("%s: offset %d is negative" % (what, off))
    return off


# --- decoding ------------------------------------------------------------
def l2_entry_text(d, e, bitmap=None):
    """The one view that applies to an L2 entry."""
    if e & OFLAG_COMPRESSED:
        x = 62 - (d.cluster_bits - 8)
        off = e & ((1 << x) - 1)
        sectors = ((e >> x) & ((1 << (d.cluster_bits - 8)) - 1)) + 1
        end = (off & ~511) + sectors * 512
        return ("compressed: host 0x%x-0x%x, %d sectors" %
                (off, end, sectors))
    off = e & L2E_OFFSET_MASK
    parts = []
    if bitmap is not None:
        parts.append("subclusters alloc 0x%08x zero 0x%08x" %
                     (bitmap & 0xFFFFFFFF, bitmap >> 32))
    elif e & OFLAG_ZERO:
        parts.append("zero" if d.hdr["version"] >= 3 else
                     "zero flag (QEMU refuses it in a version 2 image)")
    # With an external data file, COPIED makes offset 0 a cluster.
    if off or (data_file_cluster(d, e) and
               (bitmap is not None or not e & OFLAG_ZERO)):
        parts.insert(0, "host 0x%x" % off)
    elif not parts:
        parts.append("unallocated")
    if e & OFLAG_COPIED:
        parts.append("copied")
    if e & L2E_STD_RESERVED:
        parts.append("reserved bits 0x%x" % (e & L2E_STD_RESERVED))
    return ", ".join(parts)


def l1_entry_text(e):
    off = e & L1E_OFFSET_MASK
    s = "L2 table at 0x%x" % off if off else "no L2 table"
    if e & OFLAG_COPIED:
        s += ", copied"
    if e & L1E_RESERVED:
        s += ", reserved bits 0x%x" % (e & L1E_RESERVED)
    return s


def bitmap_entry_text(e):
    off = e & L1E_OFFSET_MASK
    if off:
        s = "data at 0x%x" % off
    else:
        s = "all ones" if e & 1 else "all zeros"
    if e & BME_TABLE_RESERVED:
        s += ", reserved bits 0x%x" % (e & BME_TABLE_RESERVED)
    return s


def refcount_at(d, block, j):
    w = d.refcount_bits
    if w >= 8:
        return d.be(block + j * (w // 8), w // 8)
    byte = d.read(block + j * w // 8, 1)[0]
    return (byte >> (j * w % 8)) & ((1 << w) - 1)


# --- commands --------------------------------------------------------------
class Qcow2(gdb.Command):
    """Explore a QCOW2 image from its qcow2elf dump.

qcow2 info                    header, features, extensions
qcow2 regions [KIND]          every region: symbol, kind, offset, size, owners
qcow2 translate GUEST [SNAP]  guest offset to L1, L2 entry and host offset
qcow2 refcount HOST           the refcount of the cluster at HOST
qcow2 whatis OFFSET           the structure and entry at an image offset
qcow2 snapshots               one line per snapshot
qcow2 bitmaps                 one line per bitmap
qcow2 bitmap NAME GUEST       whether the bitmap's bit for GUEST is set"""

    def __init__(self):
        super().__init__("qcow2", gdb.COMMAND_DATA, gdb.COMPLETE_NONE, True)


class Info(gdb.Command):
    """Header fields, feature bits by name, cluster size, refcount width and
header extensions of the dumped image.
Usage: qcow2 info"""

    def __init__(self):
        super().__init__("qcow2 info", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        _argv(arg, 0, 0, "qcow2 info")
        d = current_dump()
        h = d.hdr
        for name, _, _ in HEADER_FIELDS:
            print("%-24s %s" % (name, hex(h[name]) if "offset" in name or
                                name == "magic" else h[name]))
        print("%-24s %d" % ("cluster size", d.cluster_size))
        print("%-24s %d" % ("refcount bits", d.refcount_bits))
        print("%-24s %s" % ("extended L2", "yes" if d.extended_l2 else "no"))
        print("%-24s %s" % ("QEMU opens it", "no: " + d.facts["qemu-refuses"]
                            if "qemu-refuses" in d.facts else "yes"))
        for kind, field in enumerate(FEATURE_KINDS):
            v = h[field + "_features"]
            names = [d.feature_name(kind, b) for b in range(64) if v >> b & 1]
            print("%-24s %s" % (field + " features",
                                ", ".join(names) if names else "none"))
        # One write: gdb's output costs about 30 us a call, 8 s for the
        # 262,000 empty extensions a 2 MiB header cluster holds.
        exts = ["extension 0x%08x at 0x%x, %d bytes: %s" %
                (magic, off, length, EXTENSIONS.get(magic, "unknown"))
                for off, magic, length in d.extensions()]
        if exts:
            print("\n".join(exts))


KINDS = (("header", "header"), ("ext.", "header extension"),
         ("backing-file", "backing file name"), ("l1", "L1 table"),
         ("snapshot-table", "snapshot table"),
         ("refcount-table", "refcount table"),
         ("refcount-block.", "refcount block"),
         ("bitmap-directory", "bitmap directory"),
         ("crypto-header", "encryption header"), ("l2.", "L2 table"))


def region_kind(section):
    rest = section[len(".qcow2."):]
    if rest.startswith("snapshot."):
        rest = rest.split(".", 2)[2]
    elif rest.startswith("bitmap."):
        return "bitmap data" if ".data." in rest else "bitmap table"
    for prefix, kind in KINDS:
        if rest == prefix or (prefix.endswith(".") and
                              rest.startswith(prefix)):
            return kind
    return "unknown"


class Regions(gdb.Command):
    """Every region of the image: symbol, kind, offset, size, owners.
Usage: qcow2 regions [KIND]
KIND filters by kind, e.g. "L2", "refcount block", "bitmap"."""

    def __init__(self):
        super().__init__("qcow2 regions", gdb.COMMAND_DATA)

    def complete(self, text, word):
        return [k for _, k in KINDS if k.startswith(text)]

    def invoke(self, arg, from_tty):
        d = current_dump()
        # Quoted or not, as the other commands take their arguments.
        given = " ".join(gdb.string_to_argv(arg))
        want = given.lower()
        last = None
        kinds = [k for _, k in KINDS] + ["bitmap table", "bitmap data"]
        if want and not any(k.lower().startswith(want) for k in kinds):
            raise gdb.GdbError("qcow2 regions: no kind '%s'; kinds: %s" % (
                given, ", ".join(kinds)))
        shown = 0
        for sec in d.sections:
            kind = region_kind(sec[2])
            if want and not kind.lower().startswith(want):
                continue
            shown += 1
            # A hand-made dump may repeat a region: its owners once.
            owners = d.owners(sec) if sec[:2] != last else []
            last = sec[:2]
            print("%-28s %-18s 0x%-10x %8d  %s" % (
                owners[0] if owners else sec[2], kind, sec[0], sec[1],
                ", ".join(owners[1:])))
        if not shown:
            print("no regions" + (" of kind '%s'" % given if want else ""))


class Translate(gdb.Command):
    """Guest offset to host offset, through the L1 and L2 tables.
Usage: qcow2 translate GUEST_OFFSET [SNAPSHOT]
GUEST_OFFSET is a gdb expression (0x100000 + 4096), or sizes as qemu-img
reads them (1M, 1.5g, 512B, 0x10k) summed or subtracted (1M+4k, 64M-1),
within the image's virtual size or the snapshot's.  A quoted last word is
the SNAPSHOT: quote a name that could end the offset ('+4096').
SNAPSHOT is a snapshot's ID or name as `qcow2 snapshots` prints it, else
its position in the table (0, 1...): "3" is the snapshot with ID 3 where
there is one; without it the active L1 table is used."""

    def __init__(self):
        super().__init__("qcow2 translate", gdb.COMMAND_DATA)

    def complete(self, text, word):
        return [s["name"] for s in current_dump().snapshots()
                if s["name"].startswith(text)]

    def invoke(self, arg, from_tty):
        d = current_dump()
        guest, key = _offset_and_name(
            arg, "qcow2 translate", "qcow2 translate GUEST_OFFSET [SNAPSHOT]",
            lambda k: is_snapshot_key(d, k))
        if guest < 0:
            raise gdb.GdbError("qcow2 translate: guest offset %d is "
                               "negative" % guest)
        snap = find_snapshot(d, key) if key is not None else None
        if snap is None and guest >= d.hdr["size"]:
            raise gdb.GdbError("qcow2 translate: guest offset 0x%x is past "
                               "the virtual size 0x%x" % (guest, d.hdr["size"]))
        # A snapshot has its own size (QEMU's disk_size, in its extra
        # data; without one, the image's).
        if snap is not None and guest >= snap_size(d, snap):
            raise gdb.GdbError("qcow2 translate: guest offset 0x%x is past "
                               "the virtual size of snapshot_%d (ID %s, "
                               "name '%s'), 0x%x" %
                               (guest, snap["n"], snap["id"], snap["name"],
                                snap_size(d, snap)))
        why = d.facts.get("qemu-refuses")
        if why:
            print("QEMU would not open the image (%s), so qemu-img map "
                  "fails; what the tables say:" % why)
        for line in translate(d, guest, snap):
            print(line)


def snap_size(d, snap):
    return snap["disk"] if snap["disk"] is not None else d.hdr["size"]


def is_snapshot_key(d, key):
    """Whether KEY is a snapshot's ID or name, as printed."""
    try:
        raw = _unshown(key, "qcow2 translate")
    except gdb.GdbError:
        return False
    return any(raw in (s["raw_id"], s["raw_name"]) for s in d.snapshots())


def find_snapshot(d, key):
    """An ID first, then a name, as qemu-img snapshot -a looks them up;
    KEY as the helpers print it (\\xNN, \\\\)."""
    snaps = d.snapshots()
    raw = _unshown(key, "qcow2 translate")
    for field in ("raw_id", "raw_name"):
        for s in snaps:
            if s[field] == raw:
                return s
    if key.isdigit() and int(key) < len(snaps):
        return snaps[int(key)]
    raise gdb.GdbError("no snapshot '%s'" % key)


def translate(d, guest, snap=None):
    """The lines of a translation through the active L1 table, or SNAP's
    (a generator: the entries read come out before an error about them).
    The tables are named by their symbols; a stripped dump has none, and
    they are found from the header and the snapshot entry, as QEMU finds
    them."""
    if snap is None:
        prefix, l1_addr, l1_size = "", d.hdr["l1_table_offset"], \
            d.hdr["l1_size"]
    else:
        prefix, l1_addr, l1_size = "snapshot_%d_" % snap["n"], snap["l1"], \
            snap["l1_size"]
    l1_name = prefix + "l1_table"
    if l1_name in d.symbols:
        l1_addr, l1_bytes = d.symbols[l1_name]
        l1_size = l1_bytes // 8
    else:
        l1_bytes = 8 * l1_size
        l1_name = "L1 table at 0x%x" % l1_addr
    l2_bits = d.cluster_bits - (4 if d.extended_l2 else 3)
    i = guest >> (d.cluster_bits + l2_bits)
    j = (guest >> d.cluster_bits) & ((1 << l2_bits) - 1)
    in_cluster = guest & (d.cluster_size - 1)
    backing = ("read from the backing file" if d.hdr["backing_file_offset"]
               else "reads as zeros")
    if i >= l1_size:
        yield "%s has %d entries: index %d is past it" % (l1_name, l1_size,
                                                          i)
        yield "unallocated (%s)" % backing
        return
    e1 = d.be(l1_addr + 8 * i, 8)
    yield "%s[%d] = 0x%016x  %s" % (l1_name, i, e1, l1_entry_text(e1))
    l2 = e1 & L1E_OFFSET_MASK
    if not l2:
        yield "unallocated (%s)" % backing
        return
    l2_name = "%sl2_table_%d" % (prefix, i)
    if l2_name not in d.symbols:
        # A snapshot sharing an earlier one's L1 table: its L2 tables
        # have the first such snapshot's symbols.
        names = [n.replace("l1_table", "l2_table_%d" % i)
                 for n in d.at.get(l1_addr, [])
                 if n.startswith("snapshot_") and n.endswith("_l1_table") and
                 d.symbols[n] == (l1_addr, l1_bytes)]
        names = [n for n in names if n in d.symbols]
        if not names:
            names = [n for n in d.at.get(l2, []) if "l2_table" in n]
        l2_name = names[0] if names else "L2 table at 0x%x" % l2
    e2 = d.be(l2 + d.l2_entry_size * j, 8)
    bitmap = d.be(l2 + 16 * j + 8, 8) if d.extended_l2 else None
    yield "%s[%d] = 0x%016x  %s" % (l2_name, j, e2,
                                    l2_entry_text(d, e2, bitmap))
    if e2 & OFLAG_COMPRESSED:
        yield "compressed (guest cluster at 0x%x)" % (guest - in_cluster)
        return
    host = e2 & L2E_OFFSET_MASK
    if d.extended_l2:
        sc_size = d.cluster_size // 32
        sc = in_cluster // sc_size
        alloc, zero = bitmap >> sc & 1, bitmap >> (32 + sc) & 1
        # qcow2_get_subcluster_type(): a subcluster both allocated and
        # zero, or allocated in a cluster without a host offset, is
        # invalid; the zero flag of the entry itself is ignored.
        normal = host or data_file_cluster(d, e2)
        if ((bitmap >> 32) & bitmap & 0xFFFFFFFF if normal
                else bitmap & 0xFFFFFFFF):
            raise gdb.GdbError("qcow2 translate: %s[%d] has an invalid "
                               "subcluster bitmap 0x%016x: QEMU refuses to "
                               "read it (EIO)" % (l2_name, j, bitmap))
        if normal:
            check_host(d, l2_name, j, host, guest - in_cluster)
        yield "subcluster %d: %s" % (sc, "zero" if zero else "allocated"
                                     if alloc else "unallocated")
        if zero:
            yield "zero"
        elif alloc:
            yield "host offset 0x%x%s" % (host + in_cluster, d.host_note())
        else:
            yield "unallocated (%s)" % backing
        return
    if e2 & OFLAG_ZERO and d.hdr["version"] < 3:
        # QEMU fails the read (EIO, "Zero cluster entry found in pre-v3
        # image"), and qcow2elf map refuses the image.
        raise gdb.GdbError("qcow2 translate: %s[%d] has the zero flag, "
                           "which a version 2 image does not have: QEMU "
                           "refuses to read it (EIO)" % (l2_name, j))
    if e2 & OFLAG_ZERO:
        if host:
            check_host(d, l2_name, j, host, guest - in_cluster)
        yield "zero"
    elif host or data_file_cluster(d, e2):
        check_host(d, l2_name, j, host, guest - in_cluster)
        yield "host offset 0x%x%s" % (host + in_cluster, d.host_note())
    else:
        yield "unallocated (%s)" % backing


def check_host(d, l2_name, j, host, guest_cluster):
    """qcow2_get_host_offset(): QEMU fails a read (EIO) through an entry
    whose host cluster is not cluster aligned, or, with an external data
    file, is not the guest cluster."""
    if host & (d.cluster_size - 1):
        raise gdb.GdbError("qcow2 translate: %s[%d] names host offset 0x%x, "
                           "not cluster aligned: QEMU refuses to read it "
                           "(EIO)" % (l2_name, j, host))
    if d.hdr["incompatible_features"] & 4 and host != guest_cluster:
        raise gdb.GdbError("qcow2 translate: %s[%d] names data file offset "
                           "0x%x for guest cluster 0x%x: QEMU refuses to "
                           "read it (EIO)" % (l2_name, j, host,
                                              guest_cluster))


def data_file_cluster(d, e):
    """With an external data file, offset 0 is a cluster when COPIED is
    set (QEMU's qcow2_get_cluster_type())."""
    return bool(d.hdr["incompatible_features"] & 4 and e & OFLAG_COPIED)


class Refcount(gdb.Command):
    """The stored refcount of the host cluster holding an image offset.
Usage: qcow2 refcount HOST_OFFSET"""

    def __init__(self):
        super().__init__("qcow2 refcount", gdb.COMMAND_DATA,
                         gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        off = _offset(arg, "qcow2 refcount", "qcow2 refcount HOST_OFFSET")
        d = current_dump()
        print(refcount_line(d, off))


def refcount_line(d, off):
    cluster = off >> d.cluster_bits
    per_block = d.cluster_size * 8 // d.refcount_bits
    i, j = divmod(cluster, per_block)
    if "refcount_table" in d.symbols:
        rt_addr, rt_size = d.symbols["refcount_table"]
    else:       # a stripped dump: where the header says
        rt_addr = d.hdr["refcount_table_offset"]
        rt_size = d.hdr["refcount_table_clusters"] << d.cluster_bits
    if i >= rt_size // 8:
        return ("cluster %d is past the refcount table (%d entries): "
                "refcount 0" % (cluster, rt_size // 8))
    block = d.be(rt_addr + 8 * i, 8) & REFT_OFFSET_MASK
    if not block:
        return "refcount_table[%d] = 0: no refcount block, refcount 0" % i
    name = "refcount_block_%d" % i
    if name not in d.symbols:
        name = "refcount block at 0x%x" % block
    return "%s[%d] = %d" % (name, j, refcount_at(d, block, j))


class Whatis(gdb.Command):
    """The structure and entry at an image offset, with every owner of a
shared table (the active one first).
Usage: qcow2 whatis OFFSET"""

    def __init__(self):
        super().__init__("qcow2 whatis", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        off = _offset(arg, "qcow2 whatis", "qcow2 whatis OFFSET")
        d = current_dump()
        for line in whatis(d, off):
            print(line)


def whatis(d, off):
    sec = d.section_at(off)
    if not sec:
        return ["0x%x: no metadata (data, or free)" % off]
    addr, size, name = sec
    kind = region_kind(name)
    rel = off - addr
    owners = d.owners(sec) or [name]
    if kind in ("L1 table", "L2 table", "refcount table", "bitmap table"):
        esize = d.l2_entry_size if kind == "L2 table" else 8
        where = ["%s[%d]" % (o, rel // esize) for o in owners]
    elif kind == "refcount block":
        where = ["%s[%d]" % (o, rel * 8 // d.refcount_bits) for o in owners]
    elif kind == "header":
        field = [f for f, o, s in HEADER_FIELDS if o <= rel < o + s]
        where = ["%s.%s" % (owners[0], field[0]) if field else
                 "%s+0x%x" % (owners[0], rel)]
    elif kind in ("snapshot table", "bitmap directory"):
        p = "snapshot_" if kind == "snapshot table" else "bitmap_"
        best = None
        for n, (a, s) in d.symbols.items():
            if n.startswith(p) and _is_entry_symbol(n) and a <= off < a + s:
                best = "%s+0x%x" % (n, off - a)
        where = [best or "%s+0x%x" % (owners[0], rel)]
    else:
        where = ["%s+0x%x" % (o, rel) for o in owners]
    lines = ["0x%x: %s (%s at 0x%x, %d bytes)" % (off, where[0], kind, addr,
                                                  size)]
    lines += ["  also %s" % w for w in where[1:]]
    return lines


class Snapshots(gdb.Command):
    """One line per snapshot: position, ID, name, L1 table, sizes.
Usage: qcow2 snapshots"""

    def __init__(self):
        super().__init__("qcow2 snapshots", gdb.COMMAND_DATA,
                         gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        _argv(arg, 0, 0, "qcow2 snapshots")
        d = current_dump()
        snaps = d.snapshots()
        if not snaps:
            print("no snapshots")
        for s in snaps:
            print("snapshot_%d id %s name '%s' l1_table 0x%x (%d entries) "
                  "vm_state %d disk_size %s" %
                  (s["n"], s["id"], s["name"], s["l1"], s["l1_size"],
                   s["vm_state"], s["disk"] if s["disk"] is not None else "-"))
        count_note(len(snaps), d.hdr["nb_snapshots"],
                   "qcow2_header.nb_snapshots")


class Bitmaps(gdb.Command):
    """One line per bitmap: position, name, flags, granularity, table.
Usage: qcow2 bitmaps"""

    def __init__(self):
        super().__init__("qcow2 bitmaps", gdb.COMMAND_DATA, gdb.COMPLETE_NONE)

    def invoke(self, arg, from_tty):
        _argv(arg, 0, 0, "qcow2 bitmaps")
        d = current_dump()
        bitmaps = d.bitmaps()
        if not bitmaps:
            print("no bitmaps")
        for b in bitmaps:
            print("bitmap_%d '%s' flags %s granularity %d table 0x%x "
                  "(%d entries)" %
                  (b["n"], b["name"], _names(b["flags"], BITMAP_FLAGS),
                   1 << b["granularity"], b["table"], b["table_size"]))
        count_note(len(bitmaps), (d.bitmaps_ext() or (0,))[0],
                   "ext_bitmaps.nb_bitmaps")


def note_facts(raw, e):
    """The facts of a dump's note (include/qcow2elf/dumpfmt.h): notes whose
    owner is "qcow2elf:KEY=VALUE", 4-byte aligned."""
    facts, at = {}, 0
    while at + 12 <= len(raw):
        namesz, descsz, _ = struct.unpack_from(e + "III", raw, at)
        owner = raw[at + 12:at + 12 + namesz].rstrip(b"\0")
        at += 12 + (namesz + 3) // 4 * 4 + (descsz + 3) // 4 * 4
        if owner.startswith(b"qcow2elf:") and b"=" in owner:
            k, v = owner[9:].split(b"=", 1)
            facts[_shown(k)] = _shown(v)
    return facts


def count_note(have, want, field):
    """A dump whose entries are fewer (or more) than the header's count:
    qcow2elf stopped at one it could not read."""
    if have != want:
        print("%s is %d, but the dump holds %d (qcow2elf check on the "
              "image says why)" % (field, want, have))


class Bitmap(gdb.Command):
    """Whether a bitmap's bit for a guest offset is set.
Usage: qcow2 bitmap NAME GUEST_OFFSET
NAME is as `qcow2 bitmaps` prints it."""

    def __init__(self):
        super().__init__("qcow2 bitmap", gdb.COMMAND_DATA)

    def complete(self, text, word):
        return [b["name"] for b in current_dump().bitmaps()
                if b["name"].startswith(text)]

    def invoke(self, arg, from_tty):
        usage = "qcow2 bitmap NAME GUEST_OFFSET"
        argv = _argv(arg, 2, 64, usage)
        d = current_dump()
        raw = _unshown(argv[0], "qcow2 bitmap")
        found = [b for b in d.bitmaps() if b["raw_name"] == raw]
        if not found:
            raise gdb.GdbError("no bitmap '%s'" % argv[0])
        guest = _int(" ".join(argv[1:]), "qcow2 bitmap")
        if guest < 0:
            raise gdb.GdbError("qcow2 bitmap: guest offset %d is negative" %
                               guest)
        if guest >= d.hdr["size"]:
            raise gdb.GdbError("qcow2 bitmap: guest offset 0x%x is past the "
                               "virtual size 0x%x" % (guest, d.hdr["size"]))
        b = found[0]
        bit = guest >> b["granularity"]
        per_cluster = d.cluster_size * 8
        ti, k = divmod(bit, per_cluster)
        if ti >= b["table_size"]:
            raise gdb.GdbError("qcow2 bitmap: bit %d is in entry %d, past "
                               "bitmap_%d_table (%d entries)" %
                               (bit, ti, b["n"], b["table_size"]))
        e = d.be(b["table"] + 8 * ti, 8)
        data = e & L1E_OFFSET_MASK
        if data:
            v = d.read(data + k // 8, 1)[0] >> (k % 8) & 1
        else:
            v = e & 1
        name = "bitmap_%d_table" % b["n"]
        if name not in d.symbols:   # a stripped dump
            name = "bitmap table at 0x%x" % b["table"]
        print("%s[%d] = 0x%016x  %s" % (name, ti, e, bitmap_entry_text(e)))
        if data and data in d.empty and \
                "bitmap-data" in d.facts.get("redacted", ""):
            v = "unknown: the dump holds no bytes of its data cluster " \
                "(dump --redact leaves bitmap data out)"
        else:
            v = "set" if v else "clear"
        print("bit %d (guest 0x%x-0x%x): %s" % (
            bit, bit << b["granularity"], ((bit + 1) << b["granularity"]) - 1,
            v))
        if b["flags"] & 1:
            print("bitmap_%d '%s' is in_use: a program has the image open "
                  "with it, or closed it without storing it (a crash), so "
                  "its bits may be out of date; one not stored QEMU takes "
                  "as inconsistent and will not use" % (b["n"], b["name"]))


# --- pretty-printers --------------------------------------------------------
class EntryPrinter:
    def __init__(self, val, text):
        self.val, self.text = val, text

    def to_string(self):
        raw = int(self.val["raw"])
        return "0x%016x  %s" % (raw, self.text(raw))


class L2ExtendedPrinter:
    def __init__(self, val):
        self.val = val

    def to_string(self):
        d = current_dump()
        raw = int(self.val["entry"]["raw"])
        bitmap = int(self.val["bitmap"]["raw"])
        return "0x%016x 0x%016x  %s" % (raw, bitmap,
                                        l2_entry_text(d, raw, bitmap))


class RefcountBlockPrinter:
    """Refcount blocks of 1, 2 and 4 bits, which DWARF shows as bytes, and
    of 8, which gdb would print as a string."""

    def __init__(self, val, width):
        self.val, self.width = val, width

    def to_string(self):
        return "refcount block of %d-bit entries" % self.width

    def children(self):
        # The type's size comes from the dump: gdb's max-value-size
        # (raised to MAX_VALUE) bounds it, as it refuses the value before
        # this runs.
        n = self.val.type.sizeof
        raw = bytes(gdb.selected_inferior().read_memory(
            self.val.address, n)) if self.val.address is not None else b""
        per = 8 // self.width
        for i in range(n * per):
            yield "[%d]" % i, (raw[i // per] >> (i % per * self.width)) & \
                ((1 << self.width) - 1)

    def display_hint(self):
        return "array"


class NumberPrinter:
    """1-byte numbers that gdb would print as characters."""

    def __init__(self, val):
        self.val = val

    def to_string(self):
        return str(int(self.val))


class EntryNamePrinter:
    """Snapshot and bitmap directory entries: ID and name first."""

    def __init__(self, val, kind):
        self.val, self.kind = val, kind

    def to_string(self):
        def s(field):  # the bytes as they are (latin-1), then shown
            try:    # no such member where the entry's size for it is 0
                v = self.val[field]
                return _shown(v.string("latin-1", length=int(v.type.sizeof))
                              .encode("latin-1"))
            except gdb.error:
                return ""
        if self.kind == "snapshot":
            return "snapshot id %s '%s'" % (s("id_str"), s("name"))
        return "bitmap '%s'" % s("name")

    def children(self):
        for f in self.val.type.fields():
            yield f.name, self.val[f.name]


def lookup_printer(val):
    t = val.type.strip_typedefs()
    name = t.tag or t.name
    d = None
    if name == "qcow2_l1_entry":
        return EntryPrinter(val, l1_entry_text)
    if name in ("qcow2_l2_entry", "qcow2_l2_extended_entry"):
        try:    # a dump the helpers refuse: gdb's own view of the entry
            d = current_dump()
        except gdb.GdbError:
            return None
        if name == "qcow2_l2_extended_entry":
            return L2ExtendedPrinter(val)
        return EntryPrinter(val, lambda raw: l2_entry_text(d, raw))
    if name == "qcow2_bitmap_table_entry":
        return EntryPrinter(val, bitmap_entry_text)
    if name in ("qcow2_refcount_block_1", "qcow2_refcount_block_2",
                "qcow2_refcount_block_4"):  # a type name from the dump
        return RefcountBlockPrinter(val, int(name.rsplit("_", 1)[1]))
    if name == "qcow2_refcount8":
        return NumberPrinter(val)
    if t.code == gdb.TYPE_CODE_ARRAY and \
            t.target().strip_typedefs().name == "qcow2_refcount8":
        return RefcountBlockPrinter(val, 8)
    if name == "qcow2_snapshot_entry":
        return EntryNamePrinter(val, "snapshot")
    if name == "qcow2_bitmap_directory_entry":
        return EntryNamePrinter(val, "bitmap")
    return None


# The largest structures QEMU writes: the snapshot table and the bitmap
# directory (64 MiB each), an L1 table (32 MiB), the LUKS area and a table
# of 2 MiB clusters.  gdb refuses a value over max-value-size (64 KiB), so
# `p l2_table_0` failed on a dump of 2 MiB clusters.
MAX_VALUE = 64 << 20


def raise_max_value_size():
    cur = gdb.parameter("max-value-size")
    if cur is not None and cur < MAX_VALUE:
        gdb.execute("set max-value-size %d" % MAX_VALUE, to_string=True)


def register(objfile=None):
    raise_max_value_size()
    Qcow2()
    for cmd in (Info, Regions, Translate, Refcount, Whatis, Snapshots,
                Bitmaps, Bitmap):
        cmd()
    gdb.pretty_printers.append(lookup_printer)


if not getattr(gdb, "_qcow2elf_loaded", False):
    gdb._qcow2elf_loaded = True
    register()
