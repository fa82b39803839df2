#!/usr/bin/env python3
"""Takes a REAL LiME capture: lime.ko (Debian's lime-forensics-dkms source, built against
linux-headers-<release>) loaded inside the sample kernel, dumping over TCP to the host.

The guest boots the cached sample kernel (QEMU TCG, q35, 512 MiB, 2 vCPUs, KASLR on) with
its own initramfs: busybox, e1000.ko from the kernel package, lime.ko. /init brings eth0 up
on QEMU user networking and runs `insmod lime.ko "path=tcp:4444 format=lime"`; QEMU forwards
127.0.0.1:PORT to the guest's port 4444 and this script reads the dump from it. While lime.ko
runs, the guest's process list is init (pid 1), kernel threads and `insmod` (child of init),
which tests/test_lime.cpp checks when the capture exists.

Build the module first (root, Debian 12; the apt archive only):
  apt-get install --no-install-recommends linux-headers-6.1.0-56-amd64
  apt-get download lime-forensics-dkms && dpkg-deb -x lime-forensics-dkms_*.deb lime
  make -C /usr/src/linux-headers-6.1.0-56-amd64 M=$PWD/lime/usr/src/lime-forensics-* modules

usage: lime_capture.py --lime-ko lime.ko [--cache DIR] [--out DIR]
  (defaults: --cache $VMI_SAMPLES_DIR or ~/.cache/vmi-forensics/samples,
   --out CACHE/lime-6.1-4level; writes memory.lime, console.log, capture.env)
"""
import argparse
import gzip
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkinitramfs import Cpio, S_IFDIR, S_IFREG, S_IFCHR, S_IFLNK  # noqa: E402

INIT = r"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "@@LIME-INIT $(/bin/busybox cat /proc/sys/kernel/osrelease)"
/bin/busybox insmod /e1000.ko || echo "@@LIME-FAILED e1000"
/bin/busybox ip link set lo up
/bin/busybox ip link set eth0 up
/bin/busybox ip addr add 10.0.2.15/24 dev eth0
echo "@@LIME-READY"
/bin/busybox insmod /lime.ko "path=tcp:4444 format=lime"
echo "@@LIME-DONE $?"
/bin/busybox poweroff -f
"""

RELEASE = "6.1.0-56-amd64"
E1000 = f"./lib/modules/{RELEASE}/kernel/drivers/net/ethernet/intel/e1000/e1000.ko"


def log(msg):
    print(f"lime_capture: {msg}", file=sys.stderr, flush=True)


def build_initrd(busybox, lime_ko, e1000_ko, out):
    cpio = Cpio()
    for d in ["bin", "dev", "proc", "sys", "tmp"]:
        cpio.add(d, S_IFDIR | 0o755)
    with open(busybox, "rb") as f:
        cpio.add("bin/busybox", S_IFREG | 0o755, f.read())
    cpio.add("bin/sh", S_IFLNK | 0o777, b"busybox")
    cpio.add("dev/console", S_IFCHR | 0o600, rdev=(5, 1))
    cpio.add("dev/null", S_IFCHR | 0o666, rdev=(1, 3))
    for name, path in [("lime.ko", lime_ko), ("e1000.ko", e1000_ko)]:
        with open(path, "rb") as f:
            cpio.add(name, S_IFREG | 0o644, f.read())
    cpio.add("init", S_IFREG | 0o755, INIT.encode())
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(cpio.trailer())


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receive(port, out_path, proc, deadline):
    """Connects until lime.ko listens (slirp accepts and drops early connections), then reads to EOF."""
    while time.time() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s, open(out_path, "wb") as out:
                s.settimeout(120)
                total = 0
                while True:
                    data = s.recv(1 << 20)
                    if not data:
                        break
                    out.write(data)
                    total += len(data)
                if total >= 32:
                    return total
        except OSError:
            pass
        time.sleep(1)
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lime-ko", required=True)
    default_cache = os.environ.get("VMI_SAMPLES_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vmi-forensics/samples")
    ap.add_argument("--cache", default=default_cache)
    ap.add_argument("--out")
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("--timeout", type=int, default=900)
    a = ap.parse_args()
    out_dir = a.out or os.path.join(a.cache, "lime-6.1-4level")
    kernel = os.path.join(a.cache, "kernels", RELEASE, "vmlinuz")
    deb = [p for p in os.listdir(os.path.join(a.cache, "downloads")) if p.startswith(f"linux-image-{RELEASE}")]
    if not os.path.exists(kernel) or not deb:
        sys.exit("lime_capture: run samples/build-samples.sh first (needs the cached kernel and its package)")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # e1000.ko from the kernel package (data.tar inside the .deb)
        subprocess.run(f"dpkg-deb --fsys-tarfile '{os.path.join(a.cache, 'downloads', deb[0])}' | tar -x -C '{tmp}' '{E1000}'",
                       shell=True, check=True)
        initrd = os.path.join(tmp, "initrd.img")
        build_initrd(a.busybox, a.lime_ko, os.path.join(tmp, E1000), initrd)
        port = free_port()
        console = os.path.join(out_dir, "console.log")
        cmd = ["qemu-system-x86_64", "-machine", "q35,accel=tcg", "-cpu", "max,la57=off", "-m", "512M", "-smp", "2",
               "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 loglevel=1 panic=-1",
               "-nodefaults", "-display", "none", "-serial", f"file:{console}",
               "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:4444", "-device", "e1000,netdev=n0", "-no-reboot"]
        log(" ".join(cmd))
        partial = os.path.join(out_dir, "memory.lime.partial")
        start = time.time()
        proc = subprocess.Popen(cmd)
        try:
            total = receive(port, partial, proc, start + a.timeout)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    with open(console, errors="replace") as f:
        text = f.read()
    if total < 32 or "@@LIME-DONE 0" not in text:
        sys.exit(f"lime_capture: capture failed ({total} bytes received); see {console}")
    with open(partial, "rb") as f:
        if f.read(4) != b"EMiL":
            sys.exit("lime_capture: the received stream does not start with LiME's magic")
    os.replace(partial, os.path.join(out_dir, "memory.lime"))
    with open(os.path.join(out_dir, "capture.env"), "w") as f:
        f.write(f"RELEASE={RELEASE}\nBYTES={total}\nSECONDS={time.time() - start:.0f}\nTOOL=lime-forensics-dkms 1.9.1-5 format=lime path=tcp:4444\n")
    log(f"wrote {os.path.join(out_dir, 'memory.lime')}: {total} bytes in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
