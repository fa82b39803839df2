#!/usr/bin/env python3
"""Writes the sample guest's initramfs: a gzip-compressed cpio "newc" archive.

Written directly (no cpio/mknod needed, so it works unprivileged) and
reproducibly (mtime 0, uid/gid 0, sorted entries, gzip mtime 0).

Contents:
  /bin/busybox + one symlink per applet (from `busybox --list-full`)
  /bin/vmi-workload     the static workload binary
  /init                 busybox sh script: mounts /proc,/sys,/dev, loads the --module files,
                        brings lo up, runs the workload
  /modules/<name>.ko    each --module file (kernel modules of the booted kernel)
  /dev/console, /dev/null, /dev/ttyS0 device nodes, empty /proc /sys /tmp /root

--module PATH[:ARGS] (repeatable; PATH ends in .ko, ARGS is everything after the first ':' that
follows it) puts PATH in as /modules/<basename>; /init runs
`/bin/busybox insmod /modules/<basename> ARGS || echo "@@VMI-INSMOD-FAILED <basename>"` for
each, in the order given, after the mounts and before the workload.

With --lime-ko and --net-ko (the LiME sample) it also holds /lime.ko and the NIC driver
/net.ko; /init loads net.ko and brings eth0 up as 10.0.2.15/24 (QEMU user networking) *before*
the workload starts, and passes /lime.ko to the workload (argv[3], see workload.c).

With --rootkit-ko (the rootkit sample) it holds /rootkit.ko (samples/rootkit/vmi_rootkit.c) and
passes it to the workload (argv[4]), which loads it once the process tree is up.

With --park MODULE.ko (the VMExit sample) it holds /park/MODULE.ko and the workload gets argv[5] =
"park" and argv[6] = /park/MODULE.ko: it parks known tasks in known system calls, records each user
thread's /proc/PID/task/TID/syscall, and after the first snapshot makes known changes for a second
one, loading that module among them (see workload.c).

usage: mkinitramfs.py --busybox PATH --workload PATH --out initrd.img [--settle N]
                      [--module PATH[:ARGS]]... [--lime-ko lime.ko --net-ko e1000.ko]
                      [--rootkit-ko vmi_rootkit.ko] [--park MODULE.ko]
"""
import argparse
import gzip
import os
import re
import shlex
import subprocess
import sys

INIT_SCRIPT = r"""#!/bin/busybox sh
# vmi-forensics sample guest init (pid 1). Only builtins and short-lived
# commands (mounts, insmod, ip) run before the workload; nothing else runs while it is up.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "@@VMI-INIT $(/bin/busybox cat /proc/sys/kernel/osrelease)"
@MODULES@/bin/busybox ip link set lo up || echo "@@VMI-NET-FAILED lo"
@NET@/bin/vmi-workload @SETTLE@@EXTRA@
echo "@@VMI-WORKLOAD-EXITED $?"
/bin/busybox poweroff -f
"""

NET_SETUP = r"""/bin/busybox insmod /net.ko || echo "@@VMI-NET-FAILED insmod"
/bin/busybox ip link set lo up
/bin/busybox ip link set eth0 up || echo "@@VMI-NET-FAILED eth0"
/bin/busybox ip addr add 10.0.2.15/24 dev eth0
"""

S_IFDIR, S_IFREG, S_IFLNK, S_IFCHR = 0o040000, 0o100000, 0o120000, 0o020000


def parse_module(spec):
    """PATH[:ARGS] -> (path, basename, args as a list); PATH ends in .ko (it may contain ':')."""
    m = re.fullmatch(r"(.+?\.ko)(?::(.*))?", spec, re.S)
    if not m:
        raise argparse.ArgumentTypeError(f"--module {spec!r}: expected PATH[:ARGS] with PATH ending in .ko")
    path, args = m.group(1), shlex.split(m.group(2) or "")
    return path, os.path.basename(path), args


def insmod_lines(modules):
    """/init's lines loading the parse_module() results, in order."""
    lines = []
    for _, name, args in modules:
        cmd = " ".join(shlex.quote(w) for w in ["/bin/busybox", "insmod", "/modules/" + name] + args)
        lines.append(f'{cmd} || echo "@@VMI-INSMOD-FAILED {name}"\n')
    return "".join(lines)


class Cpio:
    def __init__(self):
        self.buf = bytearray()
        self.ino = 1

    @staticmethod
    def _pad(n):
        return b"\0" * ((4 - n % 4) % 4)

    def add(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 2 if mode & S_IFDIR else 1, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(name_b), 0]
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.buf += hdr + name_b + self._pad(len(hdr) + len(name_b))
        self.buf += data + self._pad(len(data))

    def trailer(self):
        self.add("TRAILER!!!", 0)
        return bytes(self.buf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--busybox", required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--settle", type=int, default=3, help="seconds the workload waits before collecting")
    ap.add_argument("--lime-ko", help="lime.ko to put in as /lime.ko (needs --net-ko)")
    ap.add_argument("--net-ko", help="NIC driver module (e1000.ko) to put in as /net.ko")
    ap.add_argument("--rootkit-ko", help="the sample rootkit to put in as /rootkit.ko, loaded by the workload")
    ap.add_argument("--park", metavar="MODULE.ko",
                    help="the workload parks tasks in known system calls and, before its second snapshot, "
                         "loads MODULE.ko (put in as /park/MODULE.ko)")
    ap.add_argument("--module", action="append", default=[], type=parse_module, metavar="PATH[:ARGS]",
                    help="kernel module to put in as /modules/<basename> and load (insmod with ARGS) "
                         "before the workload; repeatable, loaded in this order")
    a = ap.parse_args()
    if bool(a.lime_ko) != bool(a.net_ko):
        ap.error("--lime-ko and --net-ko go together")
    names = [name for _, name, _ in a.module]
    if len(set(names)) != len(names):
        ap.error(f"--module: two modules with the same file name ({' '.join(names)})")

    listing = subprocess.run([a.busybox, "--list-full"], check=True, capture_output=True, text=True).stdout
    applets = sorted({line.strip() for line in listing.splitlines() if line.strip()})

    entries = {}  # path -> (mode, data, rdev)
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "dev", "proc", "sys", "tmp", "root", "etc"]:
        entries[d] = (S_IFDIR | 0o755, b"", (0, 0))
    entries["tmp"] = (S_IFDIR | 0o1777, b"", (0, 0))
    with open(a.busybox, "rb") as f:
        entries["bin/busybox"] = (S_IFREG | 0o755, f.read(), (0, 0))
    with open(a.workload, "rb") as f:
        entries["bin/vmi-workload"] = (S_IFREG | 0o755, f.read(), (0, 0))
    init = INIT_SCRIPT.replace("@SETTLE@", str(a.settle)).replace("@MODULES@", insmod_lines(a.module))
    # The workload's arguments beyond the first only when a mode needs them: the plain samples'
    # command line (which c1 rewrites, see workload.c) stays as it was.
    extra = ""
    if a.lime_ko or a.rootkit_ko or a.park:
        extra = " 4 " + ("/lime.ko" if a.lime_ko else "''") + (" /rootkit.ko" if a.rootkit_ko else "")
        park_ko = f"/park/{os.path.basename(a.park)}" if a.park else ""
        extra += (f" park {park_ko}" if a.rootkit_ko else f" '' park {park_ko}") if a.park else ""
    init = init.replace("@NET@", NET_SETUP if a.lime_ko else "").replace("@EXTRA@", extra)
    entries["init"] = (S_IFREG | 0o755, init.encode(), (0, 0))
    if a.module:
        entries["modules"] = (S_IFDIR | 0o755, b"", (0, 0))
    for path, name, _ in a.module:
        with open(path, "rb") as f:
            entries["modules/" + name] = (S_IFREG | 0o644, f.read(), (0, 0))
    if a.park:
        entries["park"] = (S_IFDIR | 0o755, b"", (0, 0))
    for name, path in (("lime.ko", a.lime_ko), ("net.ko", a.net_ko), ("rootkit.ko", a.rootkit_ko),
                       ("park/" + os.path.basename(a.park or ""), a.park)):
        if path:
            with open(path, "rb") as f:
                entries[name] = (S_IFREG | 0o644, f.read(), (0, 0))
    entries["dev/console"] = (S_IFCHR | 0o600, b"", (5, 1))
    entries["dev/null"] = (S_IFCHR | 0o666, b"", (1, 3))
    entries["dev/ttyS0"] = (S_IFCHR | 0o660, b"", (4, 64))
    entries["etc/passwd"] = (S_IFREG | 0o644, b"root:x:0:0:root:/root:/bin/sh\n", (0, 0))
    for path in applets:
        if path in entries or path == "bin/busybox":
            continue
        depth = path.count("/")
        target = "../" * depth + "bin/busybox" if depth else "bin/busybox"
        if path.startswith("bin/"):
            target = "busybox"
        entries[path] = (S_IFLNK | 0o777, target.encode(), (0, 0))

    c = Cpio()
    for path in sorted(entries):  # parents sort before children
        mode, data, rdev = entries[path]
        c.add(path, mode, data, rdev)
    raw = c.trailer()
    tmp = a.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(gzip.compress(raw, compresslevel=6, mtime=0))
    os.replace(tmp, a.out)
    print(f"initramfs: {len(entries)} entries, {len(raw)} bytes cpio -> {os.path.getsize(a.out)} bytes gzip")


if __name__ == "__main__":
    sys.exit(main())
