#!/usr/bin/env python3
"""Rebuilds a System.map (link-time addresses) from a booted guest's /proc/kallsyms.

Debian's linux-image package ships only a stub System.map ("The real
System.map is in the linux-image-<version>-dbg package"). The guest's
/proc/kallsyms has every symbol (CONFIG_KALLSYMS_ALL=y) at its KASLR-slid
address; subtracting the slide (kallsyms _text minus the link address of
vmlinux's .text) gives the link-time map. Per-CPU symbols (absolute, below the
kernel map) are kept as they are. Checks: the rebuilt linux_banner address
points at "Linux version " in vmlinux, and _text equals .text's address.

usage: systemmap.py --kallsyms truth/kallsyms --vmlinux vmlinux --out System.map
       systemmap.py --kallsyms truth/kallsyms --vmlinux vmlinux --check System.map
Standard library only.
"""
import argparse
import os
import struct
import sys

KERNEL_MAP = 0xFFFFFFFF80000000


def elf_sections(path):
    with open(path, "rb") as f:
        data = f.read(64)
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise SystemExit(f"{path}: not an ELF64 file")
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
        f.seek(shoff)
        raw = f.read(shentsize * shnum)
        secs = [struct.unpack_from("<IIQQQQIIQQ", raw, i * shentsize) for i in range(shnum)]
        f.seek(secs[shstrndx][4])
        names = f.read(secs[shstrndx][5])
    out = {}
    for name_off, _type, _flags, addr, offset, size, *_ in secs:
        name = names[name_off:names.index(b"\0", name_off)].decode()
        out[name] = (addr, offset, size)
    return out


def read_vaddr(path, sections, vaddr, n):
    for name, (addr, offset, size) in sections.items():
        if addr and addr <= vaddr < addr + size and name != ".bss":
            with open(path, "rb") as f:
                f.seek(offset + vaddr - addr)
                return f.read(n)
    return None


def rebuild(kallsyms, vmlinux):
    syms = []
    for line in open(kallsyms, encoding="utf-8", errors="replace"):
        parts = line.split()
        if len(parts) < 3 or len(parts) > 3:  # skip module symbols ("[mod]")
            continue
        syms.append((int(parts[0], 16), parts[1], parts[2]))
    by_name = {}
    for a, t, n in syms:
        by_name.setdefault(n, a)
    if "_text" not in by_name:
        raise SystemExit("no _text in kallsyms")
    secs = elf_sections(vmlinux)
    text_link = secs[".text"][0]
    slide = by_name["_text"] - text_link
    out = []
    for a, t, n in syms:
        if a >= KERNEL_MAP:
            a -= slide
        out.append((a, t, n))
    out.sort(key=lambda s: s[0])
    banner = [a for a, t, n in out if n == "linux_banner"]
    if not banner or not (read_vaddr(vmlinux, secs, banner[0], 14) or b"").startswith(b"Linux version "):
        raise SystemExit("rebuilt linux_banner does not point at 'Linux version ' in vmlinux")
    return out, slide


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kallsyms", required=True)
    ap.add_argument("--vmlinux", required=True)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--out")
    g.add_argument("--check")
    a = ap.parse_args()
    syms, slide = rebuild(a.kallsyms, a.vmlinux)
    text = "".join(f"{addr:016x} {t} {n}\n" for addr, t, n in syms)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)
        print(f"System.map: {len(syms)} symbols, KASLR slide of that boot 0x{slide:x}")
        return 0
    with open(a.check) as f:
        have = set(f.read().splitlines())
    want = set(text.splitlines())
    if have != want:
        diff = sorted(have ^ want)[:5]
        print(f"System.map differs from this boot's un-slid kallsyms ({len(have ^ want)} lines), e.g. {diff}")
        return 1
    print(f"System.map matches this boot's un-slid kallsyms (slide 0x{slide:x})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
