#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from real material and small fixtures.

   python3 fuzz/make_corpus.py [--samples DIR] [--scratch DIR]

Real material: the sample snapshots ($VMI_SAMPLES_DIR or ~/.cache/vmi-forensics/samples,
linux-6.1-la57), the shipped ISF profile, the sample kernel's System.map. Fixtures: the files
the test suite writes under build/tests/scratch (LiME, kdump, savevm, crash dump, VMware,
container), and hand-made BTF blobs, page tables and a tiny kernel image matching the profile
in fuzz/targets/fuzz_support.hpp; ELF files holding BTF (hand-made) and DWARF (a small C file
compiled with `gcc -g -c`, its debug relocations applied), binary profile-cache entries written
the way lib/symbols/profile_cache.cpp writes them, and xz/zstd/gzip streams (the `zstd` command
line tool makes the zstd frames; Python's lzma and gzip the rest). Every seed is under 64 KiB.
Re-running rewrites the files it owns and leaves any others (e.g. ones a fuzzer added) alone.
"""
import argparse
import base64
import gzip
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
MAX_SEED = 64 * 1024
PAGE = 4096


def put(target, name, data):
    assert len(data) <= MAX_SEED, (target, name, len(data))
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def head(path, n=MAX_SEED):
    with open(path, "rb") as f:
        return f.read(n)


def at(path, offset, n):
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(n)


# ---- the tiny kernel image that matches kTinyLinuxIsf -------------------------------------
TEXT_VA = 0xFFFFFFFF81000000
TASK_SIZE = 0x100
OFF = dict(tasks=0, pid=16, tgid=20, comm=24, real_parent=40, real_cred=48, flags=56, start_time=64,
           start_boottime=72, signal=80, thread_node=88, worker_private=104, name_ptr=112)
BANNER = b"Linux version 6.1.0-fuzz (gcc) #1\n\0"


def tiny_kernel(five_level=False, ntasks=3, threads=True):
    img = bytearray(0x8000)
    struct.pack_into("<I", img, 0x80, 1 if five_level else 0)
    img[0x100:0x100 + len(BANNER)] = BANNER
    # init_top_pgt at 0x1000 maps TEXT_VA -> physical 0 with one 2 MiB page.
    va = TEXT_VA
    idx = [(va >> s) & 511 for s in (48, 39, 30, 21)]
    tables = [0x1000, 0x2000, 0x3000] if not five_level else [0x1000, 0x2000, 0x3000, 0x7000]
    if five_level:
        struct.pack_into("<Q", img, 0x1000 + 8 * idx[0], 0x2000 | 3)
        struct.pack_into("<Q", img, 0x2000 + 8 * idx[1], 0x3000 | 3)
        struct.pack_into("<Q", img, 0x3000 + 8 * idx[2], 0x7000 | 3)
        struct.pack_into("<Q", img, 0x7000 + 8 * idx[3], 0x0 | 0x83)
    else:
        struct.pack_into("<Q", img, 0x1000 + 8 * idx[1], 0x2000 | 3)
        struct.pack_into("<Q", img, 0x2000 + 8 * idx[2], 0x3000 | 3)
        struct.pack_into("<Q", img, 0x3000 + 8 * idx[3], 0x0 | 0x83)
    task_phys = [0x4000 + i * TASK_SIZE for i in range(ntasks)]
    task_va = [TEXT_VA + p for p in task_phys]
    cred_va = TEXT_VA + 0x5000
    struct.pack_into("<IIII", img, 0x5000 + 4, 1000, 1000, 0, 0)
    names = [b"swapper/0", b"init", b"kthreadd", b"sh", b"worker"]
    for i, p in enumerate(task_phys):
        nxt = task_va[(i + 1) % ntasks] + OFF["tasks"]
        prv = task_va[(i - 1) % ntasks] + OFF["tasks"]
        struct.pack_into("<QQ", img, p, nxt, prv)
        struct.pack_into("<ii", img, p + OFF["pid"], i, i)
        img[p + OFF["comm"]:p + OFF["comm"] + 16] = names[i % len(names)].ljust(16, b"\0")
        struct.pack_into("<Q", img, p + OFF["real_parent"], task_va[0 if i < 2 else 1])
        struct.pack_into("<Q", img, p + OFF["real_cred"], cred_va)
        struct.pack_into("<I", img, p + OFF["flags"], 0x00200000 if i == 2 else 0)
        struct.pack_into("<QQ", img, p + OFF["start_time"], 1000 * i, 2000 * i)
        if threads:
            sig_phys = 0x5800 + i * 0x40
            sig_va = TEXT_VA + sig_phys
            struct.pack_into("<Q", img, p + OFF["signal"], sig_va)
            node = task_va[i] + OFF["thread_node"]
            head = sig_va + 16
            struct.pack_into("<QQ", img, sig_phys + 16, node, node)
            struct.pack_into("<QQ", img, p + OFF["thread_node"], head, head)
    return bytes(img)


def with_modules_and_files(kernel):
    """tiny_kernel() plus one module on `modules` (two parameters) and an fd table for task 1
    (a file in a directory, and an unlinked one), laid out for the tiny profile's module and file
    types, in the same 2 MiB page (physical 0x8000-0x9fff)."""
    img = bytearray(kernel) + bytearray(0xA000 - len(kernel))

    def va(phys):
        return TEXT_VA + phys

    def text(phys, data):
        img[phys:phys + len(data) + 1] = data + b"\0"

    # modules (list_head at 0x6800, the tiny profile's symbol) -> module "brd" at 0x8000.
    struct.pack_into("<QQ", img, 0x6800, va(0x8008), va(0x8008))
    struct.pack_into("<I", img, 0x8000, 0)  # MODULE_STATE_LIVE
    struct.pack_into("<QQ", img, 0x8008, va(0x6800), va(0x6800))
    img[0x8018:0x8018 + 56] = b"brd".ljust(56, b"\0")
    struct.pack_into("<QII", img, 0x8050, 0xFFFFFFFFC0000000, 0x5000, 0x1000)  # core_layout
    struct.pack_into("<QII", img, 0x8070, 0, 0, 0)  # init_layout
    struct.pack_into("<iIQ", img, 0x8090, 1, 0, 1 << 13)  # refcnt, taints (E)
    struct.pack_into("<QI", img, 0x80A0, va(0x8100), 2)  # kp, num_kp
    struct.pack_into("<QQ", img, 0x80B0, va(0x9000), va(0x9000))  # init, exit
    struct.pack_into("<QQ", img, 0x80C0, va(0x80C0), va(0x80C0))  # source_list: empty
    ops_int, ops_charp = 0xFFFFFFFF81006F00, 0xFFFFFFFF81006F10  # the profile's param_ops_*
    struct.pack_into("<QQH6xQ", img, 0x8100, va(0x8180), ops_int, 0o444, va(0x8160))
    struct.pack_into("<QQH6xQ", img, 0x8128, va(0x8188), ops_charp, 0o444, va(0x8168))
    struct.pack_into("<i", img, 0x8160, 2)
    struct.pack_into("<Q", img, 0x8168, va(0x8170))
    text(0x8170, b"tcp:4444")
    text(0x8180, b"rd_nr")
    text(0x8188, b"path")

    # Task 1's files (task_struct.files at +160, fs at +168).
    task1 = 0x4000 + TASK_SIZE
    struct.pack_into("<QQ", img, task1 + 160, va(0x8300), va(0x8980))
    struct.pack_into("<QQ", img, 0x8980 + 8, va(0x8510), va(0x8680))  # fs->root
    struct.pack_into("<Q", img, 0x8308, va(0x8340))  # files->fdt
    struct.pack_into("<I4xQQ", img, 0x8340, 4, va(0x8380), va(0x83C0))
    struct.pack_into("<QQQQ", img, 0x8380, va(0x8400), 0, va(0x8440), 0)
    struct.pack_into("<Q", img, 0x83C0, 0b100)  # fd 2 close-on-exec
    struct.pack_into("<QQQI4xq", img, 0x8400, va(0x8510), va(0x8600), va(0x8700), 0o100000, 5)
    struct.pack_into("<QQQI4xq", img, 0x8440, va(0x8510), va(0x8640), va(0x8760), 0o2, 0)
    struct.pack_into("<QQ", img, 0x8500, va(0x8500), va(0x8680))  # mount: its own parent
    struct.pack_into("<QQ", img, 0x8510, va(0x8680), va(0x8800))  # vfsmount: root, sb

    def dentry(phys, hashed, parent, name_phys, name, inode):
        text(name_phys, name)
        struct.pack_into("<QQQ", img, phys, 0, va(phys) if hashed else 0, va(parent))
        struct.pack_into("<I", img, phys + 28, len(name))
        struct.pack_into("<QQQ", img, phys + 32, va(name_phys), va(inode) if inode else 0, va(0x8800))

    dentry(0x8600, True, 0x86C0, 0x8900, b"passwd", 0x8700)
    dentry(0x8640, False, 0x8680, 0x8910, b"deleted.bin", 0x8760)
    dentry(0x8680, True, 0x8680, 0x8920, b"/", 0)
    dentry(0x86C0, True, 0x8680, 0x8928, b"etc", 0)
    struct.pack_into("<H6xQQq", img, 0x8700, 0o100644, va(0x8800), 87, 30)
    struct.pack_into("<H6xQQq", img, 0x8760, 0o100600, va(0x8800), 3, 10)
    struct.pack_into("<IIQ", img, 0x8800, 2, 0, va(0x8840))  # s_dev 0:2, s_type
    struct.pack_into("<Q", img, 0x8840, va(0x8930))
    text(0x8930, b"rootfs")
    return bytes(img)


def tiny_task_list(ntasks=4):
    """Physical task_structs (base 0) for the objects target: the first 8 bytes name the head."""
    img = bytearray(0x1000 + ntasks * TASK_SIZE + 0x200)
    tasks = [0x1000 + i * TASK_SIZE for i in range(ntasks)]
    struct.pack_into("<Q", img, 0, tasks[0] + OFF["tasks"])
    cred = len(img) - 0x100
    for i, t in enumerate(tasks):
        struct.pack_into("<QQ", img, t, tasks[(i + 1) % ntasks], tasks[(i - 1) % ntasks])
        struct.pack_into("<ii", img, t + OFF["pid"], i + 1, i + 1)
        img[t + OFF["comm"]:t + OFF["comm"] + 16] = b"task%d" % i + b"\0" * (16 - len(b"task%d" % i))
        struct.pack_into("<QQ", img, t + OFF["real_parent"], tasks[0], cred)
        struct.pack_into("<Q", img, t + OFF["name_ptr"], t + OFF["comm"])
        sig = cred + 0x40
        struct.pack_into("<Q", img, t + OFF["signal"], sig)
    struct.pack_into("<QQ", img, cred + 0x50, cred + 0x50, cred + 0x50)
    return bytes(img)


# ---- page tables for the paging target (root at physical 0) -------------------------------
def paging_seed(levels, large=None):
    """A hierarchy in the input: root at 0, one table per level, the last 64 bytes name VAs."""
    pages = levels + 2
    img = bytearray(pages * PAGE + 64)
    va = 0xFFFF800000000000 if levels == 4 else 0xFF00000000000000
    va |= 0x12345000 & ((1 << (9 * levels + 12 - 1)) - 1)
    shifts = [12 + 9 * l for l in range(levels - 1, -1, -1)]
    table = 0
    for depth, s in enumerate(shifts):
        index = (va >> s) & 511
        level = levels - depth  # 1 = PTE
        if large == level:
            struct.pack_into("<Q", img, table + 8 * index, 0x0 | 0x83)
            break
        nxt = (depth + 1) * PAGE if level > 1 else (pages - 1) * PAGE
        struct.pack_into("<Q", img, table + 8 * index, nxt | 3)
        table = nxt
    vas = [va, va + 0x1000, va + 0xFFF, va - 8, 0, 0xFFFFFFFFFFFFF000, 0x00007FFFFFFFF000, va + (1 << 21)]
    struct.pack_into("<8Q", img, len(img) - 64, *vas)
    return bytes(img)


# ---- BTF --------------------------------------------------------------------------------
class Btf:
    def __init__(self):
        self.strings = bytearray(b"\0")
        self.types = bytearray()
        self.count = 0

    def s(self, name):
        if not name:
            return 0
        off = len(self.strings)
        self.strings += name.encode() + b"\0"
        return off

    def add(self, name, kind, vlen, size_or_type, extra=b"", kind_flag=0):
        info = (kind_flag << 31) | (kind << 24) | vlen
        self.types += struct.pack("<III", self.s(name), info, size_or_type) + extra
        self.count += 1
        return self.count

    def int(self, name, size, signed=True, bits=None):
        enc = 1 if signed else 0
        if name == "char":
            enc = 2
        if name == "_Bool":
            enc = 4
        return self.add(name, 1, 0, size, struct.pack("<I", (enc << 24) | (bits or size * 8)))

    def ptr(self, t):
        return self.add("", 2, 0, t)

    def array(self, elem, index, n):
        return self.add("", 3, 0, 0, struct.pack("<III", elem, index, n))

    def struct(self, name, size, members, union=False, bitfields=False):
        extra = b"".join(struct.pack("<III", self.s(m), t, off) for m, t, off in members)
        return self.add(name, 5 if union else 4, len(members), size, extra, 1 if bitfields else 0)

    def blob(self):
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings))
        return hdr + bytes(self.types) + bytes(self.strings)


KALLSYMS_BASE = 0xffffffff81000000  # fuzz/targets/kallsyms.cpp maps the input here


def kallsyms_seed(seqs_of_names, absolute_percpu, nsyms=300):
    """A kernel image holding kallsyms tables in the 6.1 layout (scripts/kallsyms.c), optionally
    with 6.2's kallsyms_seqs_of_names and x86-64's absolute per-CPU offsets. Every code stands for
    its own character except the unprintable ones (token "z")."""
    def align8(b):
        return b + b"\0" * (-len(b) % 8)
    names = ["T_text"] + [("T" if i % 3 else "D") + f"sym_{i:03d}" for i in range(1, nsyms)]
    addresses = [16 * i for i in range(nsyms)]  # offsets from _text
    if absolute_percpu:
        names = ["Afixed_percpu_data"] + names
        addresses = [0] + addresses
    n = len(names)
    body = b""
    markers = []
    for i, name in enumerate(names):
        if i % 256 == 0:
            markers.append(len(body))
        body += bytes([len(name)]) + name.encode()
    tokens = [bytes([c]) if 0x20 < c < 0x7f else b"z" for c in range(256)]
    table = b"".join(t + b"\0" for t in tokens)
    index, at = [], 0
    for t in tokens:
        index.append(at)
        at += len(t) + 1
    # offsets: relative to _text, or (absolute per-CPU) negative for kernel addresses
    if absolute_percpu:
        offs = [0] + [(-1 - a) & 0xffffffff for a in addresses[1:]]
    else:
        offs = addresses
    image = b"\x90" * 0x100  # "code" before the tables
    image = align8(image + struct.pack(f"<{n}I", *offs))
    image += struct.pack("<Q", KALLSYMS_BASE)  # kallsyms_relative_base
    image += struct.pack("<II", n, 0)  # kallsyms_num_syms
    image = align8(image + body)
    image = align8(image + struct.pack(f"<{len(markers)}I", *markers))
    if seqs_of_names:
        order = sorted(range(n), key=lambda i: names[i][1:])
        image = align8(image + b"".join(struct.pack(">I", i)[1:] for i in order))
    image = align8(image + table)
    image += struct.pack("<256H", *index)
    return image


def btf_seeds():
    out = {}
    b = Btf()
    i = b.int("int", 4)
    u = b.int("unsigned int", 4, False)
    c = b.int("char", 1)
    ull = b.int("long long unsigned int", 8, False)
    lh_fwd = b.count + 1
    lh = b.struct("list_head", 16, [("next", lh_fwd + 1, 0), ("prev", lh_fwd + 1, 64)])
    b.ptr(lh)
    arr = b.array(c, i, 16)
    ts_ptr_target = b.count + 2
    tsp = b.ptr(ts_ptr_target)
    b.struct("task_struct", 64, [("tasks", lh, 0), ("pid", i, 128), ("comm", arr, 160), ("parent", tsp, 288),
                                 ("start_time", ull, 352), ("", b.count + 2, 416)])
    b.struct("", 8, [("a", u, 0), ("b", i, 0)], union=True)
    b.add("pid_t", 8, 0, i)                                      # typedef
    b.add("const", 10, 0, u)                                     # const
    b.add("state", 6, 2, 4, struct.pack("<IiIi", b.s("A"), 0, b.s("B"), 1))  # enum
    b.add("fwd", 7, 0, 0)                                        # fwd
    fp = b.add("f", 13, 1, i, struct.pack("<II", b.s("x"), i))   # func_proto
    b.add("fn", 12, 0, fp)                                       # func
    v = b.add("runqueues", 14, 0, i, struct.pack("<I", 1))      # var
    b.add(".data..percpu", 15, 1, 64, struct.pack("<III", v, 0, 4))  # datasec
    out["types.btf"] = b.blob()

    b = Btf()
    i = b.int("int", 4)
    u = b.int("unsigned int", 4, False)
    b.struct("flags", 4, [("a", u, (3 << 24) | 0), ("b", u, (5 << 24) | 3), ("c", i, (24 << 24) | 8)], bitfields=True)
    b.add("volatile", 9, 0, u)
    b.add("restrict", 11, 0, u)
    b.add("tag", 18, 0, u, struct.pack("<i", -1))                # type tag
    b.add("e64", 19, 1, 8, struct.pack("<III", b.s("BIG"), 0xFFFFFFFF, 0x7FFFFFFF))  # enum64
    out["bitfields.btf"] = b.blob()

    b = Btf()
    i = b.int("int", 4)
    b.struct("loop", 8, [("self", b.count + 2, 0)])
    b.add("loop_t", 8, 0, b.count + 2)   # typedef -> typedef (cycle)
    b.add("loop_t2", 8, 0, b.count)
    out["cycle.btf"] = b.blob()
    return out


# ---- ELF files for vmlinux_elf (BTF) and dwarf (DWARF) --------------------------------------
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_RELA, SHT_NOBITS = 1, 2, 3, 4, 8
SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = 1, 2, 4


def elf64(sections, extended_numbering=False):
    """An ELF64 little-endian x86-64 executable with only section headers (what our vmlinux reader
    reads). sections: (name, type, flags, address, data, link, info, entsize). With
    extended_numbering, e_shnum = 0 and e_shstrndx = 0xffff, the real values in section header 0
    (as for files of more than 0xff00 sections)."""
    names = bytearray(b"\0")
    name_at = []
    for name, *_ in sections + [(".shstrtab",)]:
        name_at.append(len(names))
        names += name.encode() + b"\0"
    body = bytearray(b"\0" * 64)
    placed = []
    for (name, stype, flags, addr, data, link, info, entsize), off in zip(sections, name_at):
        body += b"\0" * (-len(body) % 8)
        placed.append((off, stype, flags, addr, len(body), len(data), link, info, entsize))
        if stype != SHT_NOBITS:
            body += data
    body += b"\0" * (-len(body) % 8)
    placed.append((name_at[-1], SHT_STRTAB, 0, 0, len(body), len(names), 0, 0, 0))
    body += names
    body += b"\0" * (-len(body) % 8)
    shoff = len(body)
    count = len(placed) + 1
    shstrndx = count - 1
    first = struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, count if extended_numbering else 0,
                        shstrndx if extended_numbering else 0, 0, 0, 0)
    body += first
    for off, stype, flags, addr, offset, size, link, info, entsize in placed:
        body += struct.pack("<IIQQQQIIQQ", off, stype, flags, addr, offset, size, link, info, 8, entsize)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, TEXT_VA, 0, shoff, 0, 64, 0, 0, 64,
                                 0 if extended_numbering else count, 0xFFFF if extended_numbering else shstrndx)
    body[:64] = header
    return bytes(body)


def vmlinux_seed(btf, extended_numbering=False, with_banner=True):
    """A vmlinux-shaped ELF: .text at _text holding linux_banner, .data..percpu at 0 (where the
    BTF seeds' DATASEC places runqueues), .BTF, and a symbol table with file, section, local
    (repeated) and global symbols."""
    text = bytearray(0x200)
    text[0x100:0x100 + len(BANNER)] = BANNER
    strtab = bytearray(b"\0")

    def name(n):
        at = len(strtab)
        strtab.extend(n.encode() + b"\0")
        return at

    # st_name, st_info (bind << 4 | type), st_other, st_shndx, st_value, st_size
    syms = [struct.pack("<IBBHQQ", 0, 0, 0, 0, 0, 0),
            struct.pack("<IBBHQQ", name("vmlinux.c"), 4, 0, 0xFFF1, 0, 0),          # STT_FILE
            struct.pack("<IBBHQQ", 0, 3, 0, 1, TEXT_VA, 0),                        # STT_SECTION
            struct.pack("<IBBHQQ", name("helper"), 2, 0, 1, TEXT_VA + 0x20, 8),     # local func
            struct.pack("<IBBHQQ", name("helper"), 2, 0, 1, TEXT_VA + 0x40, 8),     # same name again
            struct.pack("<IBBHQQ", name("_text"), 0x10, 0, 1, TEXT_VA, 0),
            struct.pack("<IBBHQQ", name("runqueues"), 0x11, 0, 2, 0, 64),
            struct.pack("<IBBHQQ", name("init_task"), 0x11, 0, 1, TEXT_VA + 0x180, 64)]
    if with_banner:
        syms.append(struct.pack("<IBBHQQ", name("linux_banner"), 0x11, 0, 1, TEXT_VA + 0x100, len(BANNER)))
    sections = [
        (".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, TEXT_VA, bytes(text), 0, 0, 0),
        (".data..percpu", SHT_PROGBITS, SHF_ALLOC | SHF_WRITE, 0, bytes(64), 0, 0, 0),
        (".bss", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, TEXT_VA + 0x1000, bytes(0x100), 0, 0, 0),
        (".BTF", SHT_PROGBITS, SHF_ALLOC, TEXT_VA + 0x2000, btf, 0, 0, 0),
        (".symtab", SHT_SYMTAB, 0, 0, b"".join(syms), 6, 5, 24),
        (".strtab", SHT_STRTAB, 0, 0, bytes(strtab), 0, 0, 0),
    ]
    return elf64(sections, extended_numbering)


DWARF_SOURCE = r"""
typedef unsigned long long u64;
typedef struct { int counter; } atomic_t;
typedef struct spinlock { unsigned int raw; } spinlock_t;
struct list_head { struct list_head *next, *prev; };
enum task_state { TASK_RUNNING, TASK_SLEEPING = 1, TASK_DEAD = -1 };
struct cred { unsigned int usage; unsigned int uid, gid, euid, egid; };
struct task_struct {
  struct list_head tasks;
  int pid, tgid;
  char comm[16];
  struct task_struct *real_parent;
  const struct cred *real_cred;
  unsigned int flags;
  unsigned in_execve : 1, in_iowait : 1, : 2, bits : 4;
  u64 start_time;
  volatile long state;
  enum task_state task_state;
  union { u64 a; unsigned int b[2]; };
  struct { int x, y; } pair;
  int grid[2][3];
  spinlock_t lock;
  atomic_t usage;
  void (*fn)(struct task_struct *, int);
  char name[];
};
struct task_struct init_task;
struct list_head *head_ptr = &init_task.tasks;
static int counter;
const char linux_banner[] = "Linux version 6.1.0-fuzz (gcc) #1\n";
int *use(void) { static int local; return local ? &counter : &local; }
"""


def apply_debug_relocations(obj):
    """libdw reads an object file's DWARF as it is, and x86-64 relocations keep their values in
    the addend (RELA), so the string and line offsets read 0 until applied: apply the .debug_*
    sections' R_X86_64_64/32/32S relocations (symbol value + addend) in place."""
    obj = bytearray(obj)
    shoff, = struct.unpack_from("<Q", obj, 0x28)
    shnum, shstrndx = struct.unpack_from("<HH", obj, 0x3C)
    shdrs = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + 64 * i) for i in range(shnum)]
    names_at = shdrs[shstrndx][4]

    def name_of(sh):
        start = names_at + sh[0]
        return obj[start:obj.index(b"\0", start)].decode()

    for sh in shdrs:
        if sh[1] != SHT_RELA or not name_of(shdrs[sh[7]]).startswith(".debug"):
            continue
        target = shdrs[sh[7]][4]
        symtab = shdrs[sh[6]]
        for at in range(sh[4], sh[4] + sh[5], 24):
            offset, info, addend = struct.unpack_from("<QQq", obj, at)
            value = struct.unpack_from("<Q", obj, symtab[4] + 24 * (info >> 32) + 8)[0] + addend
            kind = info & 0xFFFFFFFF
            if kind == 1:
                struct.pack_into("<Q", obj, target + offset, value & (2**64 - 1))
            elif kind == 10:
                struct.pack_into("<I", obj, target + offset, value & 0xFFFFFFFF)
            elif kind == 11:
                struct.pack_into("<i", obj, target + offset, value)
    return bytes(obj)


def dwarf_seeds():
    """DWARF 2, 4 and 5 of DWARF_SOURCE (bitfields both ways, location blocks, a flexible array,
    anonymous members, typedef'd structs), compiled by gcc; nothing when gcc is missing."""
    if shutil.which("gcc") is None:
        print("no gcc: dwarf seeds skipped", file=sys.stderr)
        return {}
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "types.c").write_text(DWARF_SOURCE)
        for version in (2, 4, 5):
            subprocess.run(["gcc", "-g", f"-gdwarf-{version}", "-O0", "-c", "-fno-merge-debug-strings",
                            "-fno-asynchronous-unwind-tables", f"-fdebug-prefix-map={tmp}=.", "types.c", "-o",
                            "types.o"], cwd=tmp, check=True)
            out[f"types-dwarf{version}.o"] = apply_debug_relocations(Path(tmp, "types.o").read_bytes())
    return out


# ---- binary profile-cache entries (lib/symbols/profile_cache.cpp, format 3) ----------------
KIND = dict(base=0, pointer=1, array=2, struct=3, union=4, **{"class": 5}, enum=6, bitfield=7, function=8,
            void=9)
BASE_KIND = dict(int=0, char=1, bool=2, float=3, void=4)


class ProfileBuilder:
    """ProfileBuilder (lib/symbols/profile.cpp) and the ISF reader's use of it, in Python: the
    same interning, shared type references, name order and banner, so an entry written here holds
    what write_cached_profile would write for that ISF (padding bytes aside)."""

    def __init__(self):
        self.strings = bytearray()
        self.interned = {}
        self.types, self.type_ids = [], {}
        self.members, self.aggregates, self.base_types = [], [], []
        self.enums, self.enumerators, self.symbols = [], [], []
        self.banner, self.producer, self.format_version, self.os = "", "", "", ""

    def intern(self, text):
        data = text.encode() if isinstance(text, str) else text
        if data not in self.interned:
            self.interned[data] = (len(self.strings), len(data))
            self.strings += data
        return self.interned[data]

    def str(self, ref):
        return bytes(self.strings[ref[0]:ref[0] + ref[1]])

    def add_type(self, kind, name="", subtype=0xFFFFFFFF, count=0, bit_position=0, bit_length=0):
        ref = self.intern(name) if name else (0, 0)
        key = (kind, ref, subtype, count, bit_position, bit_length)
        if key not in self.type_ids:
            self.type_ids[key] = len(self.types)
            self.types.append(key)
        return self.type_ids[key]

    def parse_type(self, t):
        sub = self.parse_type(t.get("subtype", t.get("type"))) if ("subtype" in t or "type" in t) else 0xFFFFFFFF
        return self.add_type(KIND[t["kind"]], t.get("name", ""), sub, t.get("count", 0), t.get("bit_position", 0),
                             t.get("bit_length", 0))

    def load_isf(self, isf):
        meta = isf["metadata"]
        self.format_version = meta["format"]
        producer = meta.get("producer", {})
        self.producer = producer.get("name", "") + (" " + producer["version"] if "version" in producer else "")
        self.os = next((k for k in ("linux", "windows", "mac") if k in meta), "")
        for name, b in isf.get("base_types", {}).items():
            self.base_types.append((self.intern(name), b["size"], BASE_KIND.get(b.get("kind"), 0),
                                    1 if b.get("signed") else 0))
        for name, u in isf.get("user_types", {}).items():
            first = len(self.members)
            fields = [(f, self.parse_type(d["type"]), d.get("offset", 0), d.get("anonymous", False))
                      for f, d in u.get("fields", {}).items()]
            agg_name = self.intern(name)
            for f, t, off, anon in fields:
                self.members.append((self.intern(f), off, t, 1 if anon else 0))
            self.aggregates.append([agg_name, u.get("size", 0), first, len(fields), KIND[u.get("kind", "struct")]])
        for name, e in isf.get("enums", {}).items():
            first = len(self.enumerators)
            self.enums.append((self.intern(name), self.intern(e.get("base", "")), e.get("size", 0), first,
                               len(e.get("constants", {}))))
            for c, v in e.get("constants", {}).items():
                self.enumerators.append((self.intern(c), v))
        for name, sym in isf.get("symbols", {}).items():
            t = self.parse_type(sym["type"]) if "type" in sym else 0xFFFFFFFF
            data = base64.b64decode(sym["constant_data"]) if "constant_data" in sym else b""
            self.symbols.append((self.intern(name), sym.get("address", 0) & (2**64 - 1), t,
                                 self.intern(data) if data else (0, 0)))
        return self

    def cache_entry(self):
        """build()'s sorting and banner, then the entry: header, banner, section and frame sizes,
        one zstd frame (level 6, content checksum) per array and for the tail."""
        by_name = lambda item: self.str(item[0])
        for agg in self.aggregates:
            first, n = agg[2], agg[3]
            self.members[first:first + n] = sorted(self.members[first:first + n], key=by_name)
        aggregates = sorted(self.aggregates, key=by_name)
        base_types = sorted(self.base_types, key=by_name)
        enums = sorted(self.enums, key=by_name)
        symbols = sorted(self.symbols, key=by_name)
        banner = self.banner.encode()
        linux_banner = next((s for s in symbols if self.str(s[0]) == b"linux_banner"), None)
        if not banner and linux_banner and linux_banner[3][1]:
            banner = self.str(linux_banner[3])
        banner = banner.rstrip(b"\0\n")
        # banner, producer, format, os, then the identity's build id, PDB name and PDB GUID (none here)
        tail_refs = [self.intern(banner), self.intern(self.producer), self.intern(self.format_version),
                     self.intern(self.os), self.intern(b""), self.intern(b""), self.intern(b"")]
        pointer = next((b for b in base_types if self.str(b[0]) == b"pointer" and b[1]), None)
        pointer_size = pointer[1] if pointer else 8

        sections = [
            bytes(self.strings),
            b"".join(struct.pack("<BBBBIIII", k, bp, bl, 0, c, r[0], r[1], sub)
                     for k, r, sub, c, bp, bl in self.types),                                 # TypeDesc, 20
            b"".join(struct.pack("<IIIIB3x", r[0], r[1], off, t, anon)
                     for r, off, t, anon in self.members),                                    # Member, 20
            b"".join(struct.pack("<IIIIIB3x", r[0], r[1], size, first, n, kind)
                     for r, size, first, n, kind in aggregates),                              # Aggregate, 24
            b"".join(struct.pack("<IIIBB2x", r[0], r[1], size, kind, signed)
                     for r, size, kind, signed in base_types),                                # BaseType, 16
            b"".join(struct.pack("<IIIIIIII", r[0], r[1], b[0], b[1], size, first, n, 0)
                     for r, b, size, first, n in enums),                                      # EnumType, 32
            b"".join(struct.pack("<IIq", r[0], r[1], (v + 2**63) % 2**64 - 2**63)
                     for r, v in self.enumerators),                                           # Enumerator, 16
            b"".join(struct.pack("<IIQIII4x", r[0], r[1], addr, t, c[0], c[1])
                     for r, addr, t, c in symbols),                                           # Symbol, 32
            b"".join(struct.pack("<II", *ref) for ref in tail_refs) + struct.pack("<II", 0, pointer_size),  # Tail, 64
        ]
        frames = [zstd(section, 6) for section in sections]
        addrs = {self.str(s[0]): s[1] for s in symbols}
        offset_plus_one = 0
        if b"_text" in addrs and b"linux_banner" in addrs and addrs[b"linux_banner"] >= addrs[b"_text"]:
            offset_plus_one = addrs[b"linux_banner"] - addrs[b"_text"] + 1
        # ProfileIdentity::key() of a Linux profile without a build id: "linux/banner-<FNV-1a>".
        fnv = 0xcbf29ce484222325
        for c in banner:
            fnv = ((fnv ^ c) * 0x100000001b3) % 2**64
        identity = (self.os or "unknown").encode() + \
            b"/banner-%016x" % fnv
        header = b"VMIPROF\0" + struct.pack("<IIQQII", 4, len(banner), sum(map(len, sections)), offset_plus_one,
                                            len(identity), 0)
        return (header + banner + identity + struct.pack("<9Q", *map(len, sections)) +
                struct.pack("<9Q", *map(len, frames)) + b"".join(frames))


# ---- compressed streams ---------------------------------------------------------------------
def zstd(data, level=3):
    """One zstd frame with content size and checksum, from the zstd command line tool."""
    return subprocess.run(["zstd", "-q", "-c", f"-{level}", "--check", f"--stream-size={len(data)}"], input=data,
                          stdout=subprocess.PIPE, check=True).stdout


def xz(data, check=lzma.CHECK_CRC64):
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=check)


def gz(data):
    return gzip.compress(data, compresslevel=6, mtime=0)


def main():
    ap = argparse.ArgumentParser()
    cache = Path(os.environ.get("VMI_SAMPLES_DIR", Path.home() / ".cache/vmi-forensics/samples"))
    ap.add_argument("--samples", type=Path, default=cache / "linux-6.1-la57")
    ap.add_argument("--kernel-dir", type=Path, default=cache / "kernels/6.1.0-56-amd64")
    ap.add_argument("--scratch", type=Path, default=ROOT / "build/tests/scratch")
    args = ap.parse_args()
    s = args.samples

    # Physical formats: headers of the real snapshots, and the test suite's fixtures.
    real = {}
    if s.is_dir():
        real["memory.elf"] = head(s / "memory.elf")
        real["kdump-seekable"] = head(s / "memory.kdump-seekable")
        real["kdump-zlib"] = head(s / "memory.kdump-zlib")
        real["savevm"] = head(s / "memory.savevm")
    else:
        print(f"no samples at {s}: real-header seeds skipped", file=sys.stderr)
    fixtures = {}
    if args.scratch.is_dir():
        for path in sorted(args.scratch.rglob("*")):
            if path.is_file() and 0 < path.stat().st_size <= MAX_SEED and path.suffix in (
                    ".lime", ".kdump", ".state", ".dmp", ".vmss", ".vmsn", ".vmic", ".elf", ".gz", ".zst"):
                fixtures[path.parent.name + "-" + path.name] = path.read_bytes()
    else:
        print(f"no test scratch at {args.scratch}: fixture seeds skipped (run the tests first)", file=sys.stderr)

    def pick(*needles):
        return {k: v for k, v in {**real, **fixtures}.items() if any(n in k for n in needles)}

    per_format = {
        "format_elf_core": pick("memory.elf", ".elf"),
        "format_lime": pick(".lime"),
        "format_vmi_container": pick(".vmic"),
        "format_kdump": pick("kdump"),
        "format_qemu_savevm": pick("savevm", ".state"),
        "format_windows_crashdump": pick(".dmp", "evidence"),
        "format_vmware": pick(".vmss", ".vmsn"),
    }
    for target, seeds in per_format.items():
        # The real headers, then at most six fixtures (the tests' corrupted variants differ
        # by a few bytes; the fuzzer finds those on its own).
        chosen = [k for k in seeds if k in real] + [k for k in seeds if k not in real][:6]
        seen = set()
        for name in chosen:
            if seeds[name] not in seen:
                seen.add(seeds[name])
                put(target, name, seeds[name])
    detect = {}
    for seeds in per_format.values():
        # A few of each format keep image_detect's corpus small; the real headers all go in.
        for k in [k for k in seeds if k not in real][:2]:
            detect[k] = seeds[k]
    detect.update(real)
    for k, v in pick(".gz", ".zst").items():
        detect[k] = v
    for name, data in detect.items():
        put("image_detect", name, data)
    if s.is_dir():
        raw = s / "memory.raw"
        # Raw images are whole pages: the first 16 KiB, and the page holding the PML5 root.
        put("image_detect", "memory.raw-first16k", at(raw, 0, 4 * PAGE))
        put("image_detect", "memory.raw-pml5", at(raw, 0x1C610000, PAGE))

    # Paging: hand-made hierarchies, and the sample's own PML5 root and task pages.
    for levels in (4, 5):
        put("paging", f"tables-{levels}level", paging_seed(levels))
        put("paging", f"tables-{levels}level-2m", paging_seed(levels, large=2))
        put("paging", f"tables-{levels}level-1g", paging_seed(levels, large=3))
    if s.is_dir():
        raw = s / "memory.raw"
        kernel_vas = struct.pack("<8Q", 0xFFFFFFFFB4A00000, 0xFF33A0AFC11F8000, 0xFF33A0AFC0000000, 0xFFFFFFFFB4A01000,
                                 0xFF33A0AFC11FA100, 0, 0x7FFFFFFFF000, 0xFFFFFFFFFFFFF000)
        put("paging", "memory.raw-pml5-root", at(raw, 0x1C610000, PAGE) + kernel_vas)
        put("paging", "memory.raw-root-and-next", at(raw, 0x1C610000, 2 * PAGE) + kernel_vas)
        put("objects", "memory.raw-task-pages", at(raw, 0x11F8000, 3 * PAGE))

    # Objects and pipeline: task lists laid out for the tiny profile.
    put("objects", "task-list", tiny_task_list())
    put("objects", "task-list-one", tiny_task_list(1))
    put("pipeline", "tiny-kernel-4level", tiny_kernel())
    put("pipeline", "tiny-kernel-5level", tiny_kernel(five_level=True))
    put("pipeline", "tiny-kernel-nothreads", tiny_kernel(ntasks=5, threads=False))
    put("pipeline", "tiny-kernel-modules-files", with_modules_and_files(tiny_kernel()))

    # ISF: the tiny profile, and the shipped profile trimmed to a few types and symbols.
    support = (ROOT / "fuzz/targets/fuzz_support.hpp").read_text()
    tiny = support[support.index('R"json(') + 7:support.index(')json"')]
    put("isf", "tiny-linux.json", tiny.encode())
    shipped = sorted((ROOT / "profiles/linux").glob("*.json.xz"))
    if shipped:
        full = json.loads(lzma.decompress(shipped[0].read_bytes()))
        keep_types = ["list_head", "cred", "kuid_t", "kgid_t", "kthread", "hlist_node", "callback_head", "qspinlock"]
        keep_syms = ["_text", "linux_banner", "init_task", "init_top_pgt", "__pgtable_l5_enabled", "tk_core",
                     "page_offset_base", "runqueues"]
        trimmed = {
            "metadata": full["metadata"],
            "base_types": full["base_types"],
            "user_types": {k: full["user_types"][k] for k in keep_types if k in full["user_types"]},
            "enums": dict(list(full["enums"].items())[:3]),
            "symbols": {k: full["symbols"][k] for k in keep_syms if k in full["symbols"]},
        }
        put("isf", "shipped-trimmed.json", json.dumps(trimmed, indent=1).encode())
        trimmed["user_types"] = {"task_struct": full["user_types"]["task_struct"]}
        put("isf", "shipped-task_struct.json", json.dumps(trimmed).encode())

    for name, data in btf_seeds().items():
        put("btf", name, data)

    sm = args.kernel_dir / "System.map"
    if sm.is_file():
        lines = sm.read_bytes().splitlines(keepends=True)
        put("system_map", "System.map-head", b"".join(lines[:40]))
        wanted = (b" _text\n", b" linux_banner\n", b" init_task\n", b" init_top_pgt\n", b" __per_cpu_start\n")
        put("system_map", "System.map-anchors", b"".join(l for l in lines if l.endswith(wanted)))
        put("system_map", "System.map-tail", b"".join(lines[-40:]))
    put("system_map", "kallsyms-modules", b"ffffffffc0a01000 t foo_init\t[foo]\nffffffffc0a02000 T bar [bar]\n"
        b"0000000000000000 A __per_cpu_start\n")

    # Profile recovery starts where the pipeline does: a banner and page tables that map it.
    for seed in sorted((CORPUS / "pipeline").glob("*")):
        put("profile_recovery", seed.name, seed.read_bytes())

    for seqs in (False, True):
        for percpu in (False, True):
            put("kallsyms", f"tables-{'seqs' if seqs else 'plain'}-{'percpu' if percpu else 'relative'}",
                kallsyms_seed(seqs, percpu))

    # ELF: vmlinux-shaped files with .BTF for our ELF reader, gcc's DWARF for libdw.
    btf = btf_seeds()
    put("vmlinux_elf", "vmlinux-types", vmlinux_seed(btf["types.btf"]))
    put("vmlinux_elf", "vmlinux-bitfields-extended-numbering", vmlinux_seed(btf["bitfields.btf"], True))
    put("vmlinux_elf", "vmlinux-no-banner", vmlinux_seed(btf["cycle.btf"], with_banner=False))
    for name, data in dwarf_seeds().items():
        put("dwarf", name, data)

    have_zstd = shutil.which("zstd") is not None
    if not have_zstd:
        print("no zstd command: profile_cache seeds and zstd stream seeds skipped", file=sys.stderr)

    # Profile cache entries: the tiny profile, and the shipped profile trimmed as for isf.
    isf_texts = {"tiny-linux": tiny.encode()}
    if shipped:
        isf_texts["shipped-trimmed"] = (CORPUS / "isf/shipped-trimmed.json").read_bytes()
    if have_zstd:
        for name, text in isf_texts.items():
            put("profile_cache", name + ".vmiprof", ProfileBuilder().load_isf(json.loads(text)).cache_entry())

    # ISF files as load_isf_file reads them: xz (CRC64, as save_isf_file writes; CRC32; two
    # concatenated streams) and zstd (level 19 with checksum, as save_isf_file writes; two frames).
    for name, text in isf_texts.items():
        put("isf_decompress", name + ".json.xz", xz(text))
    put("isf_decompress", "tiny-linux-crc32.json.xz", xz(tiny.encode(), lzma.CHECK_CRC32))
    half = len(tiny) // 2
    put("isf_decompress", "tiny-linux-two-streams.json.xz", xz(tiny[:half].encode()) + xz(tiny[half:].encode()))
    if have_zstd:
        for name, text in isf_texts.items():
            put("isf_decompress", name + ".json.zst", zstd(text, 19))
        put("isf_decompress", "tiny-linux-two-frames.json.zst", zstd(tiny[:half].encode(), 19) +
            zstd(tiny[half:].encode(), 19))

    # convert's raw streams: the tiny kernel (several 4 KiB chunks), a short image (one partial
    # chunk), two gzip members, two zstd frames, and ELF and LiME headers convert must refuse.
    kernel = tiny_kernel()
    put("convert_stream", "tiny-kernel.raw.gz", gz(kernel))
    put("convert_stream", "short.raw.gz", gz(kernel[:0x180]))
    put("convert_stream", "two-members.raw.gz", gz(kernel[:0x3000]) + gz(kernel[0x3000:]))
    put("convert_stream", "elf-header.gz", gz(b"\x7fELF\x02\x01\x01" + bytes(0x1000)))
    put("convert_stream", "lime-header.gz", gz(b"EMiL\x01\x00\x00\x00" + bytes(0x1000)))
    if have_zstd:
        put("convert_stream", "tiny-kernel.raw.zst", zstd(kernel))
        put("convert_stream", "short.raw.zst", zstd(kernel[:0x180]))
        put("convert_stream", "two-frames.raw.zst", zstd(kernel[:0x3000]) + zstd(kernel[0x3000:]))
    for k, v in list(pick(".gz", ".zst").items())[:6]:
        put("convert_stream", k, v)

    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"corpus: {sum(1 for p in CORPUS.rglob('*') if p.is_file())} files, {total} bytes")


if __name__ == "__main__":
    main()
