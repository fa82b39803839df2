#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ from real material and small fixtures.

   python3 fuzz/make_corpus.py [--samples DIR] [--scratch DIR]

Real material: the sample snapshots ($VMI_SAMPLES_DIR or ~/.cache/vmi-forensics/samples,
linux-6.1-la57), the shipped ISF profile, the sample kernel's System.map. Fixtures: the files
the test suite writes under build/tests/scratch (LiME, kdump, savevm, crash dump, VMware,
container), and hand-made BTF blobs, page tables and a tiny kernel image matching the profile
in fuzz/targets/fuzz_support.hpp. Every seed is under 64 KiB. Re-running rewrites the files it
owns and leaves any others (e.g. ones a fuzzer added) alone.
"""
import argparse
import base64
import json
import lzma
import os
import struct
import sys
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

    total = sum(p.stat().st_size for p in CORPUS.rglob("*") if p.is_file())
    print(f"corpus: {sum(1 for p in CORPUS.rglob('*') if p.is_file())} files, {total} bytes")


if __name__ == "__main__":
    main()
