#!/usr/bin/env python3
"""Boots the sample guest in QEMU (TCG) and takes a race-free memory snapshot
together with the guest's own /proc view (ground truth). Standard library only.

Protocol (see workload.c): the guest prints collection 1 between
@@VMI-BEGIN 1 / @@VMI-END 1, then @@VMI-READY. On READY the host stops the VM
through the HMP monitor, saves `pmemsave 0 <ram>` (memory.raw) and
`dump-guest-memory` (memory.elf, ELF core), continues the VM and writes "GO" on
the console; the guest then prints collection 2 and @@VMI-DONE. If the two
collections differ (or a section is damaged) the whole boot is retried: in their processes,
threads, modules, module parameters, open files (for those, every field but the atime/mtime
of character devices: console I/O sets the console's, see comparable_files) or sockets.

Writes into --out (which should be a fresh directory):
  memory.raw, memory.elf, console.log,
  memory.kdump-zlib, memory.kdump-lzo, memory.kdump-snappy (kdump-compressed, flattened),
  memory.kdump-seekable (memory.kdump-zlib through `makedumpfile -R`), memory.savevm,
  truth/processes.tsv, truth/threads.tsv, truth/version.txt, truth/release.txt,
  truth/guest.env   (every K fact the guest printed, KEY=shell-quoted value)
  truth/kallsyms    (/proc/kallsyms of this boot, KASLR-slid, via isa-debugcon)
  truth/modules.txt (/proc/modules verbatim, from the M lines)
  truth/module_params.tsv (module, param, value: the MP lines)
  truth/fds.tsv     (every process's open files: the F lines, sorted by pid and fd)
  truth/args.tsv    (every process with arguments: /proc/PID/stat's arg, env, code and stack
                     addresses and /proc/PID/cmdline in hex: the A lines, sorted by pid)
  truth/net.tsv     (the guest's sockets: table, line = every line but the header of
                     /proc/net/{tcp,tcp6,udp,udp6,unix,netlink,packet}, verbatim: the N lines,
                     in the order printed)
  truth/maps.tsv    (pid, line: every line of every process's /proc/PID/maps, in order: V lines)
  truth/caps.tsv    (pid, CapInh, CapPrm, CapEff, CapBnd, CapAmb of /proc/PID/status: C lines)
  truth/mount_ns.tsv (pid, mnt namespace inode of /proc/PID/ns/mnt: NS lines)
  truth/mountinfo.tsv (mnt namespace inode, line: /proc/PID/mountinfo of one process of each
                     namespace, in order: MI lines)
  truth/kmsg.txt    (every /dev/kmsg record of collection 1, as the kernel formats it: L lines)
  truth/registers.txt (the monitor's `info registers -a`, every vCPU's registers, taken in the
                     same stop as the dumps)
  truth/syscalls.tsv (tid, pid, line: /proc/PID/task/TID/syscall of every user thread but the
                     collector's, the S lines; only from a workload in park mode, else empty)
With --second-snapshot (the workload must run in park mode) the guest then makes known changes
(workload.c make_changes), prints collection 3 and @@VMI-READY-B; the host stops the VM, saves
memory-b.raw (pmemsave), continues and writes GO; the guest prints collection 4, which must equal
3. Collection 3 is written as truth-b/ (processes.tsv, threads.tsv, guest.env with the DIFF_*
facts naming the changes, modules.txt, module_params.tsv, fds.tsv, args.tsv, net.tsv, maps.tsv,
caps.tsv, mount_ns.tsv, mountinfo.tsv, syscalls.tsv): the guest's view at the second snapshot.

Prints `SNAPSHOT_TRIES=<n>` on success (with --formats all first `KDUMP_UNAVAILABLE=<codecs>`:
the kdump codecs this QEMU said it cannot write, space separated). Exit status 0 on success.
With --formats basic only memory.raw and memory.elf are saved (no kdump files, no
migration stream); the truth, kallsyms included, is collected the same way.

With --formats lime (the initrd must come from `mkinitramfs.py --lime-ko lime.ko --net-ko
e1000.ko`) the guest gets an e1000 NIC on QEMU user networking with host port P forwarded to
the guest's 4444. On READY the VM is NOT stopped: the host answers GO at once; after collection 2
and kallsyms the workload runs `insmod lime.ko path=tcp:4444 format=lime timeout=0` and prints
@@VMI-LIME-START; the host reads the dump from 127.0.0.1:P into memory.lime until lime.ko closes
the connection, then stops the VM, saves memory.raw (pmemsave, after the dump), continues and
writes GO; the guest reaps insmod and prints collection 3 (with the LIME_INSMOD_* facts, merged
into truth/guest.env). Collection 3 must equal collection 1 (else the boot is retried), so the
truth plus the insmod process is the process set that existed while lime.ko read memory.
"""
import argparse
import os
import re
import select
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib

PROMPT = b"(qemu) "


def log(msg):
    print(f"  [qemu_snapshot] {msg}", flush=True)


class Failure(Exception):
    pass


def connect_unix(path, deadline, proc):
    while True:
        if proc.poll() is not None:
            raise Failure(f"qemu exited early with status {proc.returncode}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
                return s
            except OSError:
                s.close()
        if time.monotonic() > deadline:
            raise Failure(f"timed out connecting to {path}")
        time.sleep(0.05)


class Monitor:
    """Minimal HMP client over a unix socket."""

    def __init__(self, sock):
        self.sock = sock
        self.read_until_prompt(30)

    def read_until_prompt(self, timeout):
        buf = b""
        deadline = time.monotonic() + timeout
        while not buf.endswith(PROMPT):
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"monitor timeout; got {buf[-300:]!r}")
            r, _, _ = select.select([self.sock], [], [], left)
            if r:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise Failure("monitor closed")
                buf += chunk
        return buf

    def must(self, line, timeout=300):
        """Runs a command that prints nothing when it succeeds: any output is its error."""
        o = self.cmd(line, timeout)
        if o:
            raise Failure(f"{line.split()[0]}: {o}")

    def cmd(self, line, timeout=300):
        self.sock.sendall(line.encode() + b"\n")
        out = self.read_until_prompt(timeout)
        # readline echoes the typed line (with cursor escapes) up to the first CRLF;
        # the command's own output follows, then the next prompt
        out = out[: -len(PROMPT)]
        _, _, body = out.partition(b"\r\n")
        body = re.sub(rb"\x1b\[[0-9;]*[A-Za-z]", b"", body).replace(b"\r", b"")
        return body.decode(errors="replace").strip()


def hmp_quote(path):
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_sections(text):
    """Returns {n: (payload_lines, ok)} for every @@VMI-BEGIN n ... @@VMI-END n section."""
    sections = {}
    cur, payload = None, []
    for line in text.split("\n"):
        m = re.fullmatch(r"@@VMI-BEGIN (\d+)", line)
        if m:
            cur, payload = int(m.group(1)), []
            continue
        m = re.fullmatch(r"@@VMI-END (\d+) lines=(\d+) crc32=([0-9a-f]{8})", line)
        if m and cur == int(m.group(1)):
            data = "".join(l + "\n" for l in payload).encode()
            ok = len(payload) == int(m.group(2)) and zlib.crc32(data) == int(m.group(3), 16)
            sections[cur] = (payload, ok)
            cur = None
            continue
        if cur is not None:
            payload.append(line)
    return sections


ARG_COLUMNS = ["pid", "arg_start", "arg_end", "env_start", "env_end", "start_code", "end_code", "start_stack",
               "cmdline_hex", "environ_hex"]
FD_COLUMNS = ["pid", "fd", "link", "flags", "pos", "mnt_id", "ino", "dev", "mode", "size", "atime_ns", "mtime_ns",
              "ctime_ns"]


CAP_COLUMNS = ["pid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]


def split_collection(payload):
    """-> procs, threads, facts, files, kmsg; files = (modules, params, fds, args, net, maps, caps,
    mount_ns, mountinfo, syscalls): the /proc/modules lines, the [module, param, value], the FD_COLUMNS rows
    (sorted by pid and fd), the ARG_COLUMNS rows (sorted by pid), the [table, line] socket rows
    (in the order printed), the [pid, line] maps rows, the CAP_COLUMNS rows, the [pid, ns] rows and
    the [ns, line] mountinfo rows (each in the order printed), the [tid, pid, line] syscall rows (by
    tid); kmsg: the /dev/kmsg lines."""
    procs, threads, facts, modules, params, fds, args, net = [], [], {}, [], [], [], [], []
    maps, caps, mount_ns, mountinfo, kmsg, syscalls = [], [], [], [], [], []
    for line in payload:
        f = line.split("\t")
        if f[0] == "P" and len(f) >= 10:
            procs.append(f[1:9] + ["\t".join(f[9:])])
        elif f[0] == "T" and len(f) >= 4:
            threads.append(f[1:3] + ["\t".join(f[3:])])
        elif f[0] == "K" and len(f) >= 3:
            facts[f[1]] = "\t".join(f[2:])
        elif f[0] == "M" and len(f) >= 2:
            modules.append("\t".join(f[1:]))
        elif f[0] == "MP" and len(f) >= 4:
            params.append(f[1:3] + ["\t".join(f[3:])])
        elif f[0] == "A" and len(f) == 1 + len(ARG_COLUMNS):
            args.append(f[1:])
        elif f[0] == "F" and len(f) >= 1 + len(FD_COLUMNS):
            fds.append(f[1:3] + ["\t".join(f[3:-10])] + f[-10:])  # the link may hold a tab
        elif f[0] == "N" and len(f) >= 3:
            net.append([f[1], "\t".join(f[2:])])  # the /proc/net line verbatim (a unix path may hold a tab)
        elif f[0] == "V" and len(f) >= 3:
            maps.append([f[1], "\t".join(f[2:])])
        elif f[0] == "C" and len(f) == 1 + len(CAP_COLUMNS):
            caps.append(f[1:])
        elif f[0] == "NS" and len(f) == 3:
            mount_ns.append(f[1:])
        elif f[0] == "MI" and len(f) >= 3:
            mountinfo.append([f[1], "\t".join(f[2:])])
        elif f[0] == "L" and len(f) >= 2:
            kmsg.append("\t".join(f[1:]))
        elif f[0] == "S" and len(f) == 4:
            syscalls.append(f[1:])
        else:
            raise Failure(f"unexpected truth line {line!r}")
    procs.sort(key=lambda r: int(r[0]))
    threads.sort(key=lambda r: int(r[0]))
    fds.sort(key=lambda r: (int(r[0]), int(r[1])))
    args.sort(key=lambda r: int(r[0]))
    syscalls.sort(key=lambda r: int(r[0]))
    return procs, threads, facts, (modules, params, fds, args, net, maps, caps, mount_ns, mountinfo, syscalls), kmsg


S_IFMT, S_IFCHR = 0o170000, 0o020000


def comparable_files(files):
    """files without what legitimately changes between collections 1 and 2: the atime/mtime of
    character devices. Console I/O (printing collection 1, reading GO) sets the console's
    (tty_update_time(), whole seconds, at most every 8 s), so in the truth they may also differ
    from the memory."""
    modules, params, fds, *rest = files
    def mask(r):
        if r[8] != "?" and int(r[8], 8) & S_IFMT == S_IFCHR:
            return r[:10] + ["-", "-"] + r[12:]
        return r
    return (modules, params, [mask(r) for r in fds], *rest)


# Extra snapshot formats written while the VM is still stopped (same moment as memory.raw):
# kdump-compressed in each codec this QEMU has (QEMU 7.2 writes makedumpfile's *flattened*
# format), the same zlib dump reassembled into the seekable format by `makedumpfile -R`, and
# the migration stream (what `savevm`/`virsh save` carry).
KDUMP_CODECS = (("zlib", "-z"), ("lzo", "-l"), ("snappy", "-s"))
# The codecs this QEMU said it cannot write, in the last save_extra_formats(); printed on success
# as KDUMP_UNAVAILABLE=... (build-samples.sh puts it in sample.env, the kdump test reads it).
KDUMP_UNAVAILABLE = []


def save_extra_formats(mon, out):
    t0 = time.monotonic()
    KDUMP_UNAVAILABLE.clear()
    for codec, flag in KDUMP_CODECS:
        path = os.path.join(out, f"memory.kdump-{codec}")
        o = mon.cmd(f"dump-guest-memory {flag} {hmp_quote(path)}", 600)
        if o:
            if "not available" in o.lower() or "unsupported" in o.lower() or "not supported" in o.lower():
                log(f"note: this QEMU cannot write kdump-{codec} ({o}); skipped")
                if codec == "zlib":
                    raise Failure(f"dump-guest-memory {flag}: {o} (every QEMU with kdump support has zlib)")
                KDUMP_UNAVAILABLE.append(codec)
                continue
            raise Failure(f"dump-guest-memory {flag}: {o}")
    flat = os.path.join(out, "memory.kdump-zlib")
    mkd = shutil.which("makedumpfile")
    if mkd and os.path.exists(flat):
        seekable = os.path.join(out, "memory.kdump-seekable")
        with open(flat, "rb") as src:
            r = subprocess.run([mkd, "-R", seekable], stdin=src, capture_output=True)
        if r.returncode != 0:
            raise Failure(f"makedumpfile -R: {r.stderr.decode(errors='replace').strip()}")
    else:
        log("note: makedumpfile not installed; memory.kdump-seekable skipped")
    savevm = os.path.join(out, "memory.savevm")
    mon.must("migrate -d " + hmp_quote("exec:cat > " + shlex.quote(savevm)), 60)
    deadline = time.monotonic() + 300
    while True:
        info = mon.cmd("info migrate", 30)
        m = re.search(r"Migration status: (\S+)", info)
        status = m.group(1) if m else "?"
        if status == "completed":
            break
        if status in ("failed", "cancelled", "?") or time.monotonic() > deadline:
            raise Failure(f"migrate to {savevm}: status {status}: {info[-300:]}")
        time.sleep(0.2)
    sizes = ", ".join(f"{f} {os.path.getsize(os.path.join(out, f))} B" for f in sorted(os.listdir(out))
                      if f.startswith("memory.kdump-") or f == "memory.savevm")
    log(f"extra formats saved in {time.monotonic() - t0:.1f}s ({sizes})")


LIME_MAGIC = b"EMiL"  # 0x4C694D45 little-endian


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LimeReceiver(threading.Thread):
    """Reads lime.ko's TCP stream (through QEMU's hostfwd) into a file until lime.ko closes it.
    Until lime.ko listens, slirp accepts the connection and drops it at once: retried."""

    def __init__(self, port, path, deadline):
        super().__init__(daemon=True)
        self.port, self.path, self.deadline = port, path, deadline
        self.total, self.error = 0, None

    def run(self):
        while time.monotonic() < self.deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock, open(self.path, "wb") as f:
                    sock.settimeout(120)
                    total = 0
                    while True:
                        data = sock.recv(1 << 20)
                        if not data:
                            break
                        f.write(data)
                        total += len(data)
                    if total >= 32:
                        self.total = total
                        return
            except OSError:
                pass
            time.sleep(0.5)
        self.error = "no LiME stream before the deadline"


def run_once(a, out, attempt):
    tmp = tempfile.mkdtemp(prefix="vmi-qemu-")
    ser_path, mon_path = os.path.join(tmp, "serial.sock"), os.path.join(tmp, "monitor.sock")
    console_path = os.path.join(out, "console.log")
    raw_path, elf_path = os.path.join(out, "memory.raw"), os.path.join(out, "memory.elf")
    lime_path = os.path.join(out, "memory.lime")
    raw_b_path = os.path.join(out, "memory-b.raw")
    dbg_path = os.path.join(out, "debugcon.bin")
    extra = [os.path.join(out, f"memory.kdump-{c}") for c, _ in KDUMP_CODECS]
    extra += [os.path.join(out, "memory.kdump-seekable"), os.path.join(out, "memory.savevm")]
    for p in [raw_path, elf_path, dbg_path, lime_path, raw_b_path] + extra:
        if os.path.exists(p):
            os.unlink(p)
    cmd = [a.qemu, "-machine", "q35,accel=tcg", "-cpu", a.cpu, "-m", a.mem, "-smp", str(a.smp),
           "-kernel", a.kernel, "-initrd", a.initrd, "-append", a.append,
           "-display", "none", "-nodefaults", "-no-reboot",
           "-chardev", f"socket,id=ser0,path={ser_path},server=on,wait=on", "-serial", "chardev:ser0",
           "-monitor", f"unix:{mon_path},server=on,wait=off",
           # binary side channel for the (large) /proc/kallsyms dump, see workload.c
           "-chardev", f"file,id=dbgcon,path={dbg_path}", "-device", "isa-debugcon,iobase=0xe9,chardev=dbgcon"]
    lime = None  # LimeReceiver once the guest has started lime.ko
    if a.formats == "lime":
        port = free_port()
        cmd += ["-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:4444", "-device", "e1000,netdev=n0"]
    log(f"try {attempt}: {' '.join(shlex.quote(c) for c in cmd)}")
    qlog = open(os.path.join(out, "qemu.log"), "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=qlog, stderr=qlog)
    ser = mon = None
    console = open(console_path, "wb")
    t0 = time.monotonic()
    try:
        deadline = t0 + 60
        ser = connect_unix(ser_path, deadline, proc)
        mon = Monitor(connect_unix(mon_path, deadline, proc))
        buf, text = b"", ""
        snap_done = False
        deadline = t0 + a.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"guest timed out after {a.timeout}s (see {console_path})")
            r, _, _ = select.select([ser], [], [], min(left, 0.05 if lime else 1.0))
            if proc.poll() is not None:
                raise Failure(f"qemu exited with status {proc.returncode} (see {console_path})")
            if lime is not None and not snap_done and not lime.is_alive():
                # lime.ko has closed the connection: stop the VM now and save memory.raw
                t_end = time.monotonic()
                if lime.error:
                    raise Failure(f"LiME: {lime.error}")
                mon.must("stop", 60)
                t_stop = time.monotonic()
                with open(lime_path, "rb") as f:
                    if f.read(4) != LIME_MAGIC:
                        raise Failure("the LiME stream does not start with LiME's magic")
                log(f"LiME: {lime.total} B in {t_end - t_lime:.1f}s; VM stopped {1000 * (t_stop - t_end):.0f} ms after the end")
                mon.must(f"pmemsave 0 {a.ram_bytes} {hmp_quote(raw_path)}", 600)
                mon.must("cont", 60)
                ser.sendall(b"GO\n")
                snap_done = True
            if not r:
                continue
            chunk = ser.recv(65536)
            if not chunk:
                raise Failure("serial connection closed")
            console.write(chunk)
            console.flush()
            buf += chunk
            *lines, rest = buf.split(b"\n")
            buf = rest
            for raw in lines:
                line = raw.decode("utf-8", errors="replace").rstrip("\r")
                text += line + "\n"
                if line.startswith("@@VMI-INIT"):
                    log(f"guest init up after {time.monotonic() - t0:.1f}s: {line}")
                elif line.startswith(("@@VMI-INSMOD-FAILED", "@@VMI-NET-FAILED", "vmi-workload: ")):
                    log(f"guest: {line}")  # build-samples.sh fails the sample if a module is missing
                elif "Kernel panic" in line:
                    raise Failure(f"guest kernel panic: {line}")
                elif line == "@@VMI-WORKLOAD-EXITED" or line.startswith("@@VMI-WORKLOAD-EXITED"):
                    raise Failure(f"workload exited: {line}")
                elif line == "@@VMI-READY" and a.formats == "lime":
                    log(f"READY after {time.monotonic() - t0:.1f}s; not stopping (LiME dumps later)")
                    ser.sendall(b"GO\n")
                elif line.startswith("@@VMI-LIME-START") and a.formats == "lime" and lime is None:
                    log(f"guest started lime.ko: {line}")
                    t_lime = time.monotonic()
                    lime = LimeReceiver(port, lime_path, t_lime + a.timeout)
                    lime.start()
                elif line == "@@VMI-READY" and not snap_done:
                    t_ready = time.monotonic()
                    mon.must("stop", 60)
                    t_stop = time.monotonic()
                    status = mon.cmd("info status", 30)
                    if "paused" not in status:
                        raise Failure(f"VM not paused after stop: {status}")
                    log(f"READY after {t_ready - t0:.1f}s; VM stopped {1000 * (t_stop - t_ready):.0f} ms later")
                    regs = mon.cmd("info registers -a", 60)
                    if "RIP=" not in regs:
                        raise Failure(f"info registers -a: {regs[-300:]}")
                    with open(os.path.join(out, "registers.txt"), "w") as f:
                        f.write(regs.replace("\r", "") + ("" if regs.endswith("\n") else "\n"))
                    mon.must(f"pmemsave 0 {a.ram_bytes} {hmp_quote(raw_path)}", 600)
                    mon.must(f"dump-guest-memory {hmp_quote(elf_path)}", 600)
                    log(f"memory saved in {time.monotonic() - t_stop:.1f}s "
                        f"(raw {os.path.getsize(raw_path)} B, elf {os.path.getsize(elf_path)} B)")
                    if a.formats == "all":
                        save_extra_formats(mon, out)
                    mon.must("cont", 60)
                    # after a completed migration the VM is "postmigrate"; cont must resume it
                    status = mon.cmd("info status", 30)
                    if "running" not in status:
                        raise Failure(f"VM not running after cont: {status}")
                    ser.sendall(b"GO\n")
                    snap_done = True
                elif line == "@@VMI-READY-B" and a.second_snapshot and snap_done:
                    mon.must("stop", 60)
                    mon.must(f"pmemsave 0 {a.ram_bytes} {hmp_quote(raw_b_path)}", 600)
                    mon.must("cont", 60)
                    log(f"second snapshot saved ({os.path.getsize(raw_b_path)} B)")
                    ser.sendall(b"GO\n")
                elif line == "@@VMI-DONE":
                    if not snap_done:
                        raise Failure("guest finished before the snapshot was taken")
                    return text
    finally:
        try:
            if mon is not None and proc.poll() is None:
                mon.sock.sendall(b"quit\n")
                proc.wait(timeout=30)
        except Exception:
            pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for s in (ser, mon.sock if mon else None):
            if s is not None:
                s.close()
        console.close()
        qlog.close()
        shutil.rmtree(tmp, ignore_errors=True)


def write_tsv(path, header, rows):
    with open(path, "w") as f:
        f.write("\t".join(header) + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")


def write_view(truth, procs, threads, files):
    """The guest's view of one collection as truth files in `truth` (see the module docstring)."""
    write_tsv(os.path.join(truth, "processes.tsv"),
              ["pid", "ppid", "threads", "uid", "gid", "euid", "egid", "start_ticks", "comm"], procs)
    write_tsv(os.path.join(truth, "threads.tsv"), ["tid", "tgid", "comm"], threads)
    modules, params, fds, args, net, maps, caps, mount_ns, mountinfo, syscalls = files
    with open(os.path.join(truth, "modules.txt"), "w") as f:
        f.write("".join(m + "\n" for m in modules))
    write_tsv(os.path.join(truth, "module_params.tsv"), ["module", "param", "value"], params)
    write_tsv(os.path.join(truth, "fds.tsv"), FD_COLUMNS, fds)
    write_tsv(os.path.join(truth, "args.tsv"), ARG_COLUMNS, args)
    write_tsv(os.path.join(truth, "net.tsv"), ["table", "line"], net)
    write_tsv(os.path.join(truth, "maps.tsv"), ["pid", "line"], maps)
    write_tsv(os.path.join(truth, "caps.tsv"), CAP_COLUMNS, caps)
    write_tsv(os.path.join(truth, "mount_ns.tsv"), ["pid", "ns"], mount_ns)
    write_tsv(os.path.join(truth, "mountinfo.tsv"), ["ns", "line"], mountinfo)
    write_tsv(os.path.join(truth, "syscalls.tsv"), ["tid", "pid", "line"], syscalls)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--cpu", default="max")
    ap.add_argument("--mem", default="512M")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--append", default="console=ttyS0 loglevel=1 panic=-1")
    ap.add_argument("--qemu", default="qemu-system-x86_64")
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--timeout", type=int, default=480, help="seconds per boot")
    ap.add_argument("--second-snapshot", action="store_true",
                    help="a workload in park mode changes known things; save memory-b.raw and truth-b/ after")
    ap.add_argument("--formats", choices=("all", "basic", "lime"), default="all",
                    help="all: raw, ELF, kdump-*, savevm; basic: only memory.raw and memory.elf; "
                         "lime: memory.lime by lime.ko in the guest, then memory.raw")
    a = ap.parse_args()
    m = re.fullmatch(r"(\d+)([MG]?)", a.mem)
    if not m:
        sys.exit("--mem must look like 512M or 1G")
    a.ram_bytes = int(m.group(1)) << {"": 20, "M": 20, "G": 30}[m.group(2)]
    out = os.path.abspath(a.out)
    a.kernel, a.initrd = os.path.abspath(a.kernel), os.path.abspath(a.initrd)
    os.makedirs(os.path.join(out, "truth"), exist_ok=True)

    for attempt in range(1, a.tries + 1):
        try:
            text = run_once(a, out, attempt)
            secs = parse_sections(text)
            for n in ((1, 2, 3) if a.formats == "lime" else (1, 2, 3, 4) if a.second_snapshot else (1, 2)):
                if n not in secs:
                    raise Failure(f"collection {n} missing")
                if not secs[n][1]:
                    raise Failure(f"collection {n} damaged on the console (line count / crc32 mismatch)")
            m = re.search(r"^@@VMI-KALLSYMS bytes=(\d+) crc32=([0-9a-f]{8})$", text, re.M)
            if not m:
                raise Failure("no @@VMI-KALLSYMS line (kallsyms dump failed?)")
            with open(os.path.join(out, "debugcon.bin"), "rb") as f:
                kallsyms = f.read()
            if len(kallsyms) != int(m.group(1)) or zlib.crc32(kallsyms) != int(m.group(2), 16):
                raise Failure("kallsyms dump damaged (size/crc32 mismatch)")
            p1, t1, facts, files1, kmsg = split_collection(secs[1][0])
            p2, t2, _, files2, _ = split_collection(secs[2][0])
            if not any("vmi-wl: kernel log line one" in l for l in kmsg):
                raise Failure("the workload's known lines are not among collection 1's /dev/kmsg records")
            if p1 != p2 or t1 != t2:
                d = sorted(set(map(tuple, p1)) ^ set(map(tuple, p2))) + sorted(set(map(tuple, t1)) ^ set(map(tuple, t2)))
                raise Failure(f"process/thread set changed across the snapshot: {d[:10]}")
            c1, c2 = comparable_files(files1), comparable_files(files2)
            if c1 != c2:
                d = [sorted(set(map(str, x)) ^ set(map(str, y))) for x, y in zip(c1, c2)]
                raise Failure(f"modules/parameters/open files/sockets/maps/capabilities/mounts changed across the snapshot: {[r for rows in d for r in rows][:10]}")
            if a.formats == "lime":
                p3, t3, facts3, _, _ = split_collection(secs[3][0])
                if p1 != p3 or t1 != t3:
                    d = sorted(set(map(tuple, p1)) ^ set(map(tuple, p3))) + sorted(set(map(tuple, t1)) ^ set(map(tuple, t3)))
                    raise Failure(f"process/thread set changed across the LiME dump: {d[:10]}")
                lime_facts = {k: v for k, v in facts3.items() if k.startswith("LIME_")}
                if lime_facts.get("LIME_INSMOD_STATUS") != "0" or lime_facts.get("LIME_INSMOD_COMM") != "insmod":
                    raise Failure(f"insmod lime.ko failed: {lime_facts}")
                if lime_facts.get("LIME_INSMOD_PPID") != facts.get("COLLECTOR_PID"):
                    raise Failure(f"insmod is not the collector's child: {lime_facts}")
                facts.update(lime_facts)
            if a.second_snapshot:
                p3, t3, facts_b, files3, _ = split_collection(secs[3][0])
                p4, t4, _, files4, _ = split_collection(secs[4][0])
                if p3 != p4 or t3 != t4 or comparable_files(files3) != comparable_files(files4):
                    raise Failure("the guest's view changed across the second snapshot")
                if not os.path.exists(os.path.join(out, "memory-b.raw")) or \
                        os.path.getsize(os.path.join(out, "memory-b.raw")) != a.ram_bytes:
                    raise Failure("memory-b.raw is missing or has the wrong size")
            if os.path.getsize(os.path.join(out, "memory.raw")) != a.ram_bytes:
                raise Failure("memory.raw has the wrong size")
        except Failure as e:
            log(f"try {attempt} failed: {e}")
            continue
        truth = os.path.join(out, "truth")
        write_view(truth, p1, t1, files1)
        if a.second_snapshot:
            truth_b = os.path.join(out, "truth-b")
            os.makedirs(truth_b, exist_ok=True)
            write_view(truth_b, p3, t3, files3)
            with open(os.path.join(truth_b, "guest.env"), "w") as f:
                for k in sorted(facts_b):
                    f.write(f"{k}={shlex.quote(facts_b[k])}\n")
        if os.path.exists(os.path.join(out, "registers.txt")):
            os.replace(os.path.join(out, "registers.txt"), os.path.join(truth, "registers.txt"))
        with open(os.path.join(truth, "kmsg.txt"), "w") as f:
            f.write("".join(l + "\n" for l in kmsg))
        with open(os.path.join(truth, "version.txt"), "w") as f:
            f.write(facts["PROC_VERSION"] + "\n")
        with open(os.path.join(truth, "release.txt"), "w") as f:
            f.write(facts["UNAME_R"] + "\n")
        os.replace(os.path.join(out, "debugcon.bin"), os.path.join(truth, "kallsyms"))
        with open(os.path.join(truth, "guest.env"), "w") as f:
            for k in sorted(facts):
                f.write(f"{k}={shlex.quote(facts[k])}\n")
        modules, _, fds, _, net, *_ = files1
        log(f"truth: {len(p1)} processes, {len(t1)} threads, {len(modules)} modules, {len(fds)} open files, "
            f"{len(net)} sockets, release {facts['UNAME_R']}, la57={facts.get('CPU_LA57')}, pti={facts.get('CPU_PTI')}, _text={facts.get('KALLSYMS__text')}")
        if a.formats == "all":
            print(f"KDUMP_UNAVAILABLE={' '.join(KDUMP_UNAVAILABLE)}", flush=True)
        print(f"SNAPSHOT_TRIES={attempt}", flush=True)
        return 0
    log(f"giving up after {a.tries} tries")
    return 1


if __name__ == "__main__":
    sys.exit(main())
