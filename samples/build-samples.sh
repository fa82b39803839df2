#!/usr/bin/env bash
# Builds real memory snapshots of a Linux guest (QEMU, TCG) plus the guest's own
# ground truth. Idempotent and non-interactive; see samples/README.md.
#
#   bash samples/build-samples.sh            # build what is missing, reuse the rest
#   VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh   # rebuild the samples
#
# Cache: ${VMI_SAMPLES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/samples}
#
# Besides the main samples (pinned kernel, indexed in samples.list) it builds
# recovery samples (indexed in recovery-samples.list): Debian 12 kernels for which
# the repository ships no profile, so a profile must be recovered from the snapshot,
# and a LiME sample (indexed in lime-samples.list): a real lime.ko capture taken in the
# pinned kernel, plus memory.raw of the same boot (see samples/README.md), and a rootkit sample
# (indexed in rootkit-samples.list): the pinned kernel with samples/rootkit/vmi_rootkit.ko loaded.
set -euo pipefail
# No `cmd | grep -q`: grep -q exits at the first match, the writer then dies of SIGPIPE, and
# pipefail turns that into a failure (it hid the 6.12 kernel's .BTF once). Use grep >/dev/null.
export LC_ALL=C

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${VMI_SAMPLES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/samples}"
FORCE="${VMI_SAMPLES_FORCE:-0}"

PIN_PKG=linux-image-6.1.0-56-amd64-unsigned
PIN_VER="${VMI_KERNEL_PIN_VERSION:-6.1.192-2}" # override only to test the fallback path
PIN_DEB="${PIN_PKG}_${PIN_VER}_amd64.deb"
PIN_REL="${PIN_PKG#linux-image-}" PIN_REL="${PIN_REL%-unsigned}" # 6.1.0-56-amd64
SHARED_KERNELS="$(cd "$REPO/.." && pwd)/shared/kernels"

# What a sample's truth holds. Bump it whenever workload.c or qemu_snapshot.py record something new:
# a cached sample whose sample.env has another TRUTH_VERSION is rebuilt (the samples' other checks
# look only at which files exist).
#   2: truth/guest.env gains BOOT_WALL_NS, BOOT_WALL_NS_ERROR, PROC_STAT_BTIME (boot wall time),
#      KCORE_TEXT_VADDR, KCORE_TEXT_PADDR, KCORE_DIRECT_MAP_BASE (/proc/kcore); sample.env gains
#      KDUMP_UNAVAILABLE and TRUTH_VERSION
#   3: the guest loads brd and cpuid (SAMPLE_MODULES) and its workload opens files, pipes, sockets
#      and anon inodes; truth/modules.txt, truth/module_params.tsv, truth/fds.tsv (each kernel
#      gets its own initramfs, with its own modules)
#   4: truth/args.tsv (each process's argument, environment, code and stack addresses from
#      /proc/PID/stat and its /proc/PID/cmdline, to read through its own page tables)
#   5: more sockets (vmi-wl-c: an ESTABLISHED TCP pair on 127.0.0.1:7777, an abstract unix datagram
#      socket, UDP6 on [::]:5354; vmi-wl-a: a netlink and a packet socket); truth/net.tsv (the
#      guest's /proc/net/{tcp,tcp6,udp,udp6,unix,netlink,packet} rows); guest.env gains NET_NS and
#      CPU_PTI; recover-6.1-cloud boots with pti=on (sample.env gains KERNEL_EXTRA_ARGS)
#   6: truth/args.tsv gains environ_hex (/proc/PID/environ); vmi-wl (c1) x's last argument and first
#      environment value start with bytes that are not UTF-8 (0xff, 0xfe)
#   7: truth/maps.tsv (/proc/PID/maps), truth/caps.tsv (/proc/PID/status Cap*), truth/mount_ns.tsv and
#      truth/mountinfo.tsv (each mount namespace's /proc/PID/mountinfo), truth/kmsg.txt (/dev/kmsg);
#      the workload maps files and anonymous memory (vmi-wl-b), an rwx page (c1), gives c1 its own
#      capabilities and mount namespace, bind-mounts /run/vmi on /mnt/vmi-bind and logs known lines
TRUTH_VERSION=7
# The guest.env facts a sample of this TRUTH_VERSION must have (checked after every boot).
TRUTH_FACTS=(BOOT_WALL_NS BOOT_WALL_NS_ERROR PROC_STAT_BTIME KCORE_TEXT_VADDR KCORE_TEXT_PADDR KCORE_DIRECT_MAP_BASE
  IOMEM_KERNEL_CODE KALLSYMS__text KALLSYMS_init_top_pgt NET_NS CPU_PTI)

RAM=512M
RAM_BYTES=$((512 * 1024 * 1024))
SMP=2
APPEND="console=ttyS0 loglevel=1 panic=-1"
# name | qemu -cpu | expected paging levels
SAMPLES=(
  "linux-6.1-la57|max|5"
  "linux-6.1-4level|max,la57=off|4"
)
# Recovery samples: name | package | pinned version | flavour | qemu -cpu | expected paging levels |
# fallback [| extra kernel arguments]. If apt no longer serves the pinned version the newest one of
# the same package is used (WARNING, PINNED=0); if the package is gone altogether (the archives drop
# old ABIs), the newest package whose name matches the fallback pattern (an ERE) is used instead
# (WARNING, PINNED=0), and only when there is none is the sample skipped (WARNING). Only memory.raw,
# memory.elf and the truth are saved (qemu_snapshot.py --formats basic). The optional 8th field is
# appended to APPEND for that sample's boot only (sample.env: KERNEL_EXTRA_ARGS); the field after
# the LAST '|' is taken for it, so an entry whose fallback ERE contains '|' must end in '|' (none).
# recover-6.1-cloud boots with pti=on: kernel page-table isolation, whatever the CPU (checked:
# the guest's cpuinfo must show the pti flag, CPU_PTI=1).
RECOVERY_SAMPLES=(
  "recover-6.1-cloud|linux-image-6.1.0-56-cloud-amd64-unsigned|6.1.192-2|cloud|max,la57=off|4|^linux-image-6[.]1[.]0-[0-9]+-cloud-amd64-unsigned$|pti=on"
  "recover-6.1-rt|linux-image-6.1.0-56-rt-amd64-unsigned|6.1.192-2|rt|max|5|^linux-image-6[.]1[.]0-[0-9]+-rt-amd64-unsigned$"
  "recover-6.1.0-55|linux-image-6.1.0-55-amd64-unsigned|6.1.192-1|amd64|max|5|^linux-image-6[.]1[.]0-(5[0-5]|[1-4][0-9])-amd64-unsigned$|"
  "recover-6.12|linux-image-6.12.115+deb12-amd64-unsigned|6.12.115-2~deb12u1|amd64|max|5|^linux-image-6[.]12[.][0-9]+[+]deb12-amd64-unsigned$"
)

# LiME sample: name | qemu -cpu | expected paging levels | vCPUs. lime.ko is built from Debian's
# lime-forensics-dkms against linux-headers-<pinned release>; if that is impossible the sample is
# skipped with a WARNING (lime-samples.list stays empty). One vCPU: lime.ko reads a running guest,
# and with a second vCPU ~1% of the pages change during the dump (measured 0.9-1.2% over 5 boots),
# with one ~0.34% (samples/README.md).
LIME_SAMPLE="lime-6.1-4level|max,la57=off|4|1"
LIME_NET_KO=kernel/drivers/net/ethernet/intel/e1000/e1000.ko # QEMU -device e1000

# Rootkit sample: name | qemu -cpu | expected paging levels. samples/rootkit/vmi_rootkit.c is built
# against linux-headers-<pinned release>; the workload loads it once its tree is up, to hide
# vmi-wl-a2 (see workload.c). If it cannot be built the sample is skipped with a WARNING
# (rootkit-samples.list stays empty and the rootkit tests fail, naming the list).
ROOTKIT_SAMPLE="rootkit-6.1-4level|max,la57=off|4"

# VMExit sample: name | qemu -cpu | expected paging levels. The workload runs in park mode (threads
# of vmi-wl-d blocked in read, accept, nanosleep, openat on a FIFO, futex and wait4) and the truth
# adds each user thread's /proc/PID/task/TID/syscall (truth/syscalls.tsv) and the monitor's
# `info registers -a` (truth/registers.txt), both from the stop the snapshot is taken in. Every
# format (raw, ELF, kdump, migration stream) is saved, for the vCPU state each carries.
VMEXIT_SAMPLE="vmexit-6.1-4level|max,la57=off|4"
# Then the workload makes known changes (kills vmi-wl-e, starts vmi-wl-f with e's pid, makes
# vmi-wl-d1 open and close a file and rewrite its command line, loads PARK_MODULE, unloads cpuid)
# and a second snapshot is saved as memory-b.raw with its truth in truth-b/, for `diff`.
# PARK_MODULE: path under lib/modules/<release>/ of the booted kernel's package; no dependencies.
PARK_MODULE="kernel/arch/x86/kernel/msr.ko"

# Kernel modules every sample's /init loads before the workload (mkinitramfs.py --module), for the
# modules plugin: path under lib/modules/<release>/ of the booted kernel's own package | insmod
# arguments. Kept in its kernel dir as modules/<name>.ko (the 6.12 package has .ko.xz: decompressed
# on the host, the guest gets a plain .ko). Neither has dependencies (depends= empty, checked).
SAMPLE_MODULES=(
  "kernel/drivers/block/brd.ko|rd_nr=2 rd_size=4096 max_part=1"
  "kernel/arch/x86/kernel/cpuid.ko|"
)

T0=$SECONDS
step() { printf '[build-samples %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf '[build-samples] ERROR: %s\n' "$*" >&2; exit 1; }
err() { printf '[build-samples] ERROR: %s\n' "$*" >&2; }
warn() { printf '\n[build-samples] WARNING: %s\n\n' "$*" >&2; }

# ------------------------------------------------------------------ tools
need=(qemu-system-x86_64 busybox gcc python3 dpkg-deb xz readelf apt-get sha256sum)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc.a)
if ((${#missing[@]})); then
  step "missing tools (${missing[*]}); running scripts/install-deps.sh"
  bash "$REPO/scripts/install-deps.sh"
fi
BUSYBOX="$(command -v busybox)"
file_is_static() { ! readelf -l "$1" 2>/dev/null | grep 'INTERP' >/dev/null; }
file_is_static "$BUSYBOX" || { [ -x /bin/busybox ] && file_is_static /bin/busybox && BUSYBOX=/bin/busybox; } \
  || die "busybox is not static: install busybox-static"

mkdir -p "$CACHE/downloads" "$CACHE/kernels"
step "cache: $CACHE"

# ------------------------------------------------------------------ kernel
kernel_files_ok() { # dir -> 0 if it has what install_kernel_deb extracts, the modules aside
  local d="$1" f
  for f in vmlinuz vmlinux System.map.package config release version; do [ -s "$d/$f" ] || return 1; done
}
kernel_modules_ok() { # dir -> 0 if it has the SAMPLE_MODULES (modules/<name>.ko)
  local spec m
  for spec in "${SAMPLE_MODULES[@]}"; do
    m="${spec%%|*}"
    [ -s "$1/modules/${m##*/}" ] || return 1
  done
}
kernel_dir_ok() { # dir -> 0 if complete
  kernel_files_ok "$1" && kernel_modules_ok "$1"
}

# the SAMPLE_MODULES of an extracted package tree -> out-dir/<name>.ko, checked (vermagic is the
# release, no dependencies); messages on stderr, 1 on failure
sample_modules_from() { # root release out-dir
  local root="$1" rel="$2" out="$3" t spec ko m vm dep bad=""
  t="$(mktemp -d "$CACHE/kernels/.modules.XXXXXX")" && chmod 0755 "$t" || return 1
  for spec in "${SAMPLE_MODULES[@]}"; do
    ko="$root/lib/modules/$rel/${spec%%|*}" m="${spec%%|*}" m="${m##*/}"
    if [ -s "$ko" ]; then
      cp "$ko" "$t/$m" || bad="cp $ko failed"
    elif [ -s "$ko.xz" ]; then
      xz -dc "$ko.xz" >"$t/$m" || bad="xz -dc $ko.xz failed"
    else
      bad="no lib/modules/$rel/${spec%%|*} (or .xz) in the kernel package"
    fi
    if [ -z "$bad" ]; then
      vm="$(strings "$t/$m" | sed -n 's/^vermagic=//p')" dep="$(strings "$t/$m" | sed -n 's/^depends=//p')"
      [ "${vm%% *}" = "$rel" ] || bad="$m: vermagic '$vm' is not $rel"
      [ -z "$dep" ] || bad="$m depends on $dep (the initramfs has no other module)"
    fi
    [ -z "$bad" ] || break
  done
  if [ -n "$bad" ]; then
    err "$bad"
    rm -rf "$t"
    return 1
  fi
  rm -rf "$out"
  mv "$t" "$out"
}

# find the compression magic in the vmlinuz and decompress from there (like
# the kernel's scripts/extract-vmlinux), checking for an ELF with a .BTF section
extract_vmlinux() { # vmlinuz out
  local img="$1" out="$2" name magic tool off
  for spec in "xz|\xfd7zXZ\x00|xz -dc --single-stream" \
              "zstd|\x28\xb5\x2f\xfd|zstd -dcq" \
              "gzip|\x1f\x8b\x08|gzip -dcq" \
              "bzip2|BZh|bzip2 -dcq" \
              "lzma|\x5d\x00\x00\x00|xz -dc --format=lzma" \
              "lz4|\x02\x21\x4c\x18|lz4 -dcq"; do
    IFS='|' read -r name magic tool <<<"$spec"
    command -v "${tool%% *}" >/dev/null 2>&1 || continue
    for off in $(python3 -c '
import sys
data = open(sys.argv[1], "rb").read()
magic = sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1")
i = data.find(magic)
while i >= 0:
    print(i)
    i = data.find(magic, i + 1)
' "$img" "$magic"); do
      tail -c "+$((off + 1))" "$img" | $tool >"$out.tmp" 2>/dev/null || true
      if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' ')" = "7f454c46" ] \
         && readelf -S -W "$out.tmp" 2>/dev/null | grep ' \.BTF ' >/dev/null; then
        mv "$out.tmp" "$out"
        step "vmlinux: $name stream at offset $off of vmlinuz -> ELF with .BTF ($(stat -c %s "$out") bytes)"
        echo "$name" >"$(dirname "$out")/vmlinuz.compression"
        return 0
      fi
    done
  done
  rm -f "$out.tmp"
  return 1
}

install_kernel_deb() { # deb -> prints release dir on stdout
  local deb="$1" x rel ver dir
  x="$(mktemp -d "$CACHE/kernels/.extract.XXXXXX")"
  dpkg-deb -x "$deb" "$x/root"
  ver="$(dpkg-deb -f "$deb" Version)"
  rel="$(basename "$(ls "$x"/root/boot/vmlinuz-* | head -n1)")"
  rel="${rel#vmlinuz-}"
  [ -n "$rel" ] || die "no /boot/vmlinuz-* in $deb"
  mkdir -p "$x/k"
  cp "$x/root/boot/vmlinuz-$rel" "$x/k/vmlinuz"
  # Debian ships a one-line stub System.map ("The real System.map is in the
  # linux-image-<version>-dbg package"); keep it as System.map.package. A real
  # System.map is rebuilt from a booted guest's /proc/kallsyms (see below)
  # unless the package's map is real.
  cp "$x/root/boot/System.map-$rel" "$x/k/System.map.package"
  if [ "$(wc -l <"$x/k/System.map.package")" -gt 1000 ]; then
    cp "$x/k/System.map.package" "$x/k/System.map"
    echo "package $(basename "$deb")" >"$x/k/System.map.source"
  fi
  cp "$x/root/boot/config-$rel" "$x/k/config"
  echo "$rel" >"$x/k/release"
  echo "$ver" >"$x/k/version"
  basename "$deb" >"$x/k/package"
  extract_vmlinux "$x/k/vmlinuz" "$x/k/vmlinux" >&2 || die "could not extract an ELF vmlinux with .BTF from $deb"
  sample_modules_from "$x/root" "$rel" "$x/k/modules" >&2 || die "no usable sample modules in $deb"
  dir="$CACHE/kernels/$rel"
  rm -rf "$dir"
  mv "$x/k" "$dir"
  rm -rf "$x"
  echo "$dir"
}

pinned_sha() { # expected sha256 of the pinned .deb, from shared/kernels/SHA256SUMS
  [ -r "$SHARED_KERNELS/SHA256SUMS" ] && awk -v f="$PIN_DEB" '$2 == f || $2 == "*" f {print $1}' "$SHARED_KERNELS/SHA256SUMS"
}

deb_is() { # deb package version -> 0 if the .deb is that package version
  [ -s "$1" ] && [ "$(dpkg-deb -f "$1" Package 2>/dev/null)" = "$2" ] && [ "$(dpkg-deb -f "$1" Version 2>/dev/null)" = "$3" ]
}

deb_matches_pin() { # deb -> 0 if it is the pinned package (sha256 when known)
  local deb="$1" want
  deb_is "$deb" "$PIN_PKG" "$PIN_VER" || return 1
  want="$(pinned_sha || true)"
  [ -z "$want" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" = "$want" ]
}

apt_download() { # args -> downloads into $CACHE/downloads
  (cd "$CACHE/downloads" && apt-get download -qq -o APT::Sandbox::User=root "$@" >/dev/null 2>&1)
}

apt_updated=0
apt_refresh() {
  ((apt_updated)) && return 0
  apt_updated=1
  [ "$(id -u)" -eq 0 ] || return 0
  step "apt-get update"
  apt-get update -qq >/dev/null 2>&1 || true
}

apt_candidate() { # package -> the version apt would install now (empty if none)
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}'
}

kernel_dir_is() { # release version -> 0 if $CACHE/kernels/<release> is complete and holds that version
  local d="$CACHE/kernels/$1"
  kernel_files_ok "$d" && [ "$(cat "$d/version")" = "$2" ] || return 1
  kernel_modules_ok "$d" || add_kernel_modules "$d" # cached before the modules were part of it
}

fetch_deb() { # package version -> downloads ${package}_${version}_amd64.deb unless cached; 0 if present
  local deb="$CACHE/downloads/${1}_${2}_amd64.deb"
  deb_is "$deb" "$1" "$2" && return 0
  rm -f "$deb"
  step "kernel: apt-get download $1=$2"
  apt_download "$1=$2" || { apt_refresh; apt_download "$1=$2"; } || true
  deb_is "$deb" "$1" "$2" || { rm -f "$deb"; return 1; }
}

# Adds the SAMPLE_MODULES to a kernel dir cached without them, from its package in $CACHE/downloads
# (fetched again if absent; the pinned one may come from ../shared/kernels as below).
add_kernel_modules() { # kernel-dir -> 0 once it has them
  local d="$1" file pkg ver rel deb x spec pats=() rc=0
  [ -s "$d/package" ] || return 1
  file="$(cat "$d/package")" ver="$(cat "$d/version")" rel="$(cat "$d/release")"
  pkg="${file%%_*}"
  deb="$CACHE/downloads/${pkg}_${ver}_amd64.deb"
  if ! deb_is "$deb" "$pkg" "$ver" && ! fetch_deb "$pkg" "$ver"; then
    if [ "$file" = "$PIN_DEB" ] && [ -s "$SHARED_KERNELS/$file" ] \
      && (cd "$SHARED_KERNELS" && grep -F " $file" SHA256SUMS | sha256sum -c --quiet -); then
      cp "$SHARED_KERNELS/$file" "$deb.tmp" && mv "$deb.tmp" "$deb" || return 1
    else
      warn "$file is not available: cannot add the sample modules to $d"
      return 1
    fi
  fi
  step "kernel: adding the sample modules to $d from $(basename "$deb")"
  for spec in "${SAMPLE_MODULES[@]}"; do pats+=("./lib/modules/$rel/${spec%%|*}*"); done # * : .ko or .ko.xz
  x="$(mktemp -d "$CACHE/kernels/.extract.XXXXXX")" || return 1
  { dpkg-deb --fsys-tarfile "$deb" || true; } | tar -x -C "$x" --wildcards "${pats[@]}" 2>/dev/null || true
  sample_modules_from "$x" "$rel" "$d/modules" || rc=1
  rm -rf "$x"
  return "$rc"
}

# Kernel of a recovery sample: the pinned version of its package, else (loudly) the newest version
# of that package apt serves. Sets XK_DIR and XK_PINNED; returns 1 (after a WARNING) if there is none.
XK_DIR="" XK_PINNED=0
newest_package_matching() { # ERE -> "package version" of the highest candidate version, or nothing
  local best="" bestver="" p v
  for p in $(apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$1" | sort -u); do
    v="$(apt_candidate "$p")"
    [ -n "$v" ] || continue
    if [ -z "$bestver" ] || dpkg --compare-versions "$v" gt "$bestver"; then best="$p" bestver="$v"; fi
  done
  [ -n "$best" ] && echo "$best $bestver"
}

extra_kernel() { # package version fallback-pattern
  local pkg="$1" ver="$2" pattern="${3:-}" rel cand
  rel="${pkg#linux-image-}" rel="${rel%-unsigned}"
  XK_DIR="$CACHE/kernels/$rel" XK_PINNED=1
  if kernel_dir_is "$rel" "$ver"; then
    step "kernel: reusing pinned $pkg $ver"
    return 0
  fi
  if ! fetch_deb "$pkg" "$ver"; then
    warn "the pinned kernel $pkg $ver is NOT available from apt; falling back to the newest $pkg"
    XK_PINNED=0
    apt_refresh
    cand="$(apt_candidate "$pkg")"
    if [ -z "$cand" ] && [ -n "$pattern" ]; then
      read -r pkg cand <<<"$(newest_package_matching "$pattern")" || true
      [ -n "$cand" ] && warn "$1 is gone from apt; using $pkg $cand (the newest matching $pattern)"
      rel="${pkg#linux-image-}" rel="${rel%-unsigned}"
    fi
    if [ -z "$cand" ]; then
      warn "no version of $1 (or of a package matching ${pattern:-nothing}) is available; skipping its recovery sample"
      return 1
    fi
    ver="$cand"
    if kernel_dir_is "$rel" "$ver"; then
      XK_DIR="$CACHE/kernels/$rel"
      step "kernel: reusing UNPINNED $pkg $ver"
      return 0
    fi
    fetch_deb "$pkg" "$ver" || { warn "apt-get download $pkg=$ver failed; skipping its recovery sample"; return 1; }
  fi
  step "kernel: extracting ${pkg}_${ver}_amd64.deb"
  if ! XK_DIR="$(install_kernel_deb "$CACHE/downloads/${pkg}_${ver}_amd64.deb")" || ! kernel_dir_ok "$XK_DIR"; then
    warn "could not install $pkg $ver; skipping its recovery sample"
    return 1
  fi
  [ "$XK_PINNED" = 1 ] || step "kernel: using UNPINNED $pkg $ver"
}

KERNEL_DIR="" PINNED=0
if kernel_dir_is "$PIN_REL" "$PIN_VER"; then
  KERNEL_DIR="$CACHE/kernels/$PIN_REL" PINNED=1
  step "kernel: reusing pinned $PIN_PKG $PIN_VER"
else
  deb="$CACHE/downloads/$PIN_DEB"
  if ! deb_matches_pin "$deb"; then
    rm -f "$deb"
    step "kernel: apt-get download $PIN_PKG=$PIN_VER"
    apt_download "$PIN_PKG=$PIN_VER" || { apt_refresh; apt_download "$PIN_PKG=$PIN_VER"; } || true
    if ! deb_matches_pin "$deb"; then
      rm -f "$deb"
      if [ -s "$SHARED_KERNELS/$PIN_DEB" ]; then
        step "kernel: apt does not serve it; using $SHARED_KERNELS/$PIN_DEB"
        (cd "$SHARED_KERNELS" && grep -F " $PIN_DEB" SHA256SUMS | sha256sum -c --quiet -) \
          || die "$SHARED_KERNELS/$PIN_DEB does not match SHA256SUMS"
        cp "$SHARED_KERNELS/$PIN_DEB" "$deb.tmp" && mv "$deb.tmp" "$deb"
      fi
    fi
  fi
  if deb_matches_pin "$deb"; then
    step "kernel: extracting $PIN_DEB"
    KERNEL_DIR="$(install_kernel_deb "$deb")" PINNED=1
  else
    printf '\n[build-samples] WARNING: the pinned kernel %s %s is NOT available (apt, %s);\n' "$PIN_PKG" "$PIN_VER" "$SHARED_KERNELS" >&2
    printf '[build-samples] WARNING: falling back to the newest linux-image-6.1.*-amd64-unsigned the archive serves.\n\n' >&2
    apt_refresh
    best="" bestver=""
    for p in $(apt-cache pkgnames linux-image-6.1 2>/dev/null | grep -E '^linux-image-6\.1\.[0-9]+-[0-9]+-amd64-unsigned$' | sort -u); do
      v="$(apt_candidate "$p")"
      [ -n "$v" ] || continue
      if [ -z "$bestver" ] || dpkg --compare-versions "$v" gt "$bestver"; then best="$p" bestver="$v"; fi
    done
    [ -n "$best" ] || die "no linux-image-6.1.*-amd64-unsigned package is available"
    fdeb="$CACHE/downloads/${best}_${bestver}_amd64.deb"
    rel="${best#linux-image-}"; rel="${rel%-unsigned}"
    if kernel_dir_is "$rel" "$bestver"; then
      KERNEL_DIR="$CACHE/kernels/$rel"
    else
      fetch_deb "$best" "$bestver" || die "apt-get download $best=$bestver failed"
      KERNEL_DIR="$(install_kernel_deb "$fdeb")"
    fi
    PINNED=0
    step "kernel: using UNPINNED $(cat "$KERNEL_DIR/release") ($(cat "$KERNEL_DIR/version"))"
  fi
fi
kernel_dir_ok "$KERNEL_DIR" || die "kernel dir $KERNEL_DIR is incomplete"
KREL="$(cat "$KERNEL_DIR/release")"
KVER="$(cat "$KERNEL_DIR/version")"
step "kernel: $KREL ($KVER) in $KERNEL_DIR, vmlinuz compression $(cat "$KERNEL_DIR/vmlinuz.compression" 2>/dev/null || echo '?')"

# ------------------------------------------------------------------ debug vmlinux (DWARF)
# The sample kernel's vmlinux with DWARF, from linux-image-<release>-dbg (858 MB .deb, of which
# only the vmlinux is extracted; tar stops at it), for the DWARF importer's tests. Kept as
# $KERNEL_DIR/vmlinux.dbg; the .deb is deleted afterwards.
if [ -s "$KERNEL_DIR/vmlinux.dbg" ]; then
  step "debug vmlinux: reusing $KERNEL_DIR/vmlinux.dbg"
else
  dbg_pkg="linux-image-$KREL-dbg"
  if fetch_deb "$dbg_pkg" "$KVER"; then
    dbg_deb="$CACHE/downloads/${dbg_pkg}_${KVER}_amd64.deb"
    step "debug vmlinux: extracting ./usr/lib/debug/boot/vmlinux-$KREL from $(basename "$dbg_deb")"
    dbg_tmp="$(mktemp -d "$CACHE/kernels/.dbg.XXXXXX")"
    # tar stops reading at the member (--occurrence); dpkg-deb then sees a closed pipe.
    { dpkg-deb --fsys-tarfile "$dbg_deb" 2>/dev/null || true; } |
      tar -x -C "$dbg_tmp" --occurrence=1 "./usr/lib/debug/boot/vmlinux-$KREL" || true
    if readelf -S -W "$dbg_tmp/usr/lib/debug/boot/vmlinux-$KREL" 2>/dev/null | grep ' \.debug_info ' >/dev/null; then
      mv "$dbg_tmp/usr/lib/debug/boot/vmlinux-$KREL" "$KERNEL_DIR/vmlinux.dbg"
    else
      warn "no DWARF vmlinux in $(basename "$dbg_deb"); the DWARF tests will fail"
    fi
    rm -rf "$dbg_tmp" "$dbg_deb"
  else
    warn "$dbg_pkg=$KVER is not available from apt; the DWARF tests will fail"
  fi
fi

# ------------------------------------------------------------------ samples to (re)build
BASIC_FILES=(memory.raw memory.elf truth/processes.tsv truth/threads.tsv truth/version.txt truth/release.txt truth/kallsyms
  truth/guest.env truth/modules.txt truth/module_params.tsv truth/fds.tsv truth/args.tsv truth/net.tsv
  truth/maps.tsv truth/caps.tsv truth/mount_ns.tsv truth/mountinfo.tsv truth/kmsg.txt sample.env)
# sample_ok dir kernel-dir package-version pinned all|basic|lime [extra kernel arguments]
#   -> 0 if complete (and its kernel dir still exists)
sample_ok() {
  local d="$1" kdir="$2" kver="$3" pinned="$4" kargs="${6:-}" f kd files=("${BASIC_FILES[@]}")
  [ "$5" = all ] && files+=(memory.kdump-zlib memory.savevm)
  [ "$5" = lime ] && files=("${files[@]/memory.elf/memory.lime}")
  for f in "${files[@]}"; do
    [ -s "$d/$f" ] || return 1
  done
  [ "$(stat -c %s "$d/memory.raw")" = "$RAM_BYTES" ] || return 1
  # built with the kernel selected now (an unavailable pin would switch kernels)
  kd="$(sed -n 's/^KERNEL_DIR=//p' "$d/sample.env")"
  [ "$kd" = "$kdir" ] && grep -qx "KERNEL_PACKAGE_VERSION=$kver" "$d/sample.env" && grep -qx "PINNED=$pinned" "$d/sample.env" \
    && grep -qx "TRUTH_VERSION=$TRUTH_VERSION" "$d/sample.env" && kernel_dir_ok "$kd" || return 1
  # booted with the extra kernel arguments wanted now (a sample whose arguments changed is stale)
  grep -qxF "KERNEL_EXTRA_ARGS='$kargs'" "$d/sample.env"
}

todo=()
for spec in "${SAMPLES[@]}"; do
  IFS='|' read -r name _ _ <<<"$spec"
  if [ "$FORCE" != 1 ] && sample_ok "$CACHE/$name" "$KERNEL_DIR" "$KVER" "$PINNED" all; then
    step "sample $name: complete, reusing"
  else
    todo+=("$spec")
  fi
done

# recovery samples: pick (download, extract) their kernels; rtodo: name|flavour|cpu|levels|kdir|pinned|kargs
rtodo=() rdone=()
for spec in "${RECOVERY_SAMPLES[@]}"; do
  IFS='|' read -r name pkg ver flavour cpu levels fallback <<<"$spec"
  kargs=""
  if [[ "$fallback" == *"|"* ]]; then # an 8th field: after the last '|' (the ERE may hold '|')
    kargs="${fallback##*|}" fallback="${fallback%|*}"
  fi
  t=$SECONDS
  extra_kernel "$pkg" "$ver" "$fallback" || continue
  xver="$(cat "$XK_DIR/version")"
  ((SECONDS - t < 2)) || step "sample $name: kernel $(cat "$XK_DIR/release") ($xver) ready in $((SECONDS - t))s"
  if [ "$FORCE" != 1 ] && sample_ok "$CACHE/$name" "$XK_DIR" "$xver" "$XK_PINNED" basic "$kargs"; then
    step "sample $name: complete, reusing"
    rdone+=("$name")
  else
    rtodo+=("$name|$flavour|$cpu|$levels|$XK_DIR|$XK_PINNED|$kargs")
  fi
done

# ------------------------------------------------------------------ lime.ko (LiME sample)
# Built non-interactively for the kernel in use: linux-headers-$KREL at exactly $KVER (apt-get
# install, root), lime-forensics-dkms (apt-get download, extracted), `make -C <headers> M=<src>
# modules`; e1000.ko comes from the kernel package. Cached in $CACHE/lime/<release>_<version>/.
# Sets LIME_DIR; returns 1 after a WARNING when any of it is unavailable.
# linux-headers-$KREL at exactly $KVER, installed with apt-get unless it is; who -> 1 after a
# WARNING naming the sample it is for
ensure_headers() { # who
  local hdr="linux-headers-$KREL"
  if [ "$(dpkg-query -W -f='${Status} ${Version}' "$hdr" 2>/dev/null || true)" != "install ok installed $KVER" ]; then
    if [ "$(id -u)" -ne 0 ]; then
      warn "$hdr $KVER is not installed and this is not root; skipping the $1 sample"; return 1
    fi
    step "$1: apt-get install $hdr=$KVER"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$hdr=$KVER" make gcc </dev/null >/dev/null 2>&1; then
      apt_refresh
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$hdr=$KVER" make gcc </dev/null >/dev/null 2>&1 \
        || { warn "apt-get install $hdr=$KVER failed (the headers must match the kernel package); skipping the $1 sample"; return 1; }
    fi
  fi
  [ -d "/usr/src/$hdr" ] || { warn "/usr/src/$hdr is missing; skipping the $1 sample"; return 1; }
}

LIME_DIR=""
ensure_lime_ko() {
  local d="$CACHE/lime/${KREL}_${KVER}" hdr="linux-headers-$KREL" x src deb kdeb vm t=$SECONDS
  if [ -s "$d/lime.ko" ] && [ -s "$d/e1000.ko" ] && [ -s "$d/lime.version" ]; then
    LIME_DIR="$d"
    step "lime.ko: reusing $d/lime.ko ($(cat "$d/lime.version"))"
    return 0
  fi
  ensure_headers LiME || return 1
  deb="$(ls "$CACHE"/downloads/lime-forensics-dkms_*_all.deb 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$deb" ]; then
    step "lime.ko: apt-get download lime-forensics-dkms"
    apt_download lime-forensics-dkms || { apt_refresh; apt_download lime-forensics-dkms; } || true
    deb="$(ls "$CACHE"/downloads/lime-forensics-dkms_*_all.deb 2>/dev/null | sort -V | tail -n1 || true)"
    [ -n "$deb" ] || { warn "apt-get download lime-forensics-dkms failed; skipping the LiME sample"; return 1; }
  fi
  kdeb="$CACHE/downloads/$(cat "$KERNEL_DIR/package")"
  if [ ! -s "$kdeb" ]; then
    fetch_deb "$(dpkg-deb -f "$kdeb" Package 2>/dev/null || sed 's/_.*//' "$KERNEL_DIR/package")" "$KVER" \
      || { warn "kernel package $(cat "$KERNEL_DIR/package") unavailable (for e1000.ko); skipping the LiME sample"; return 1; }
  fi
  mkdir -p "$CACHE/lime"
  x="$(mktemp -d "$CACHE/lime/.build.XXXXXX")"
  dpkg-deb -x "$deb" "$x/dkms"
  src="$(ls -d "$x"/dkms/usr/src/lime-forensics-* | head -n1)"
  step "lime.ko: make -C /usr/src/$hdr M=$src modules ($(basename "$deb"))"
  if ! nice -n 5 make -C "/usr/src/$hdr" M="$src" modules >"$x/build.log" 2>&1 || [ ! -s "$src/lime.ko" ]; then
    tail -n 20 "$x/build.log" >&2
    warn "building lime.ko against $hdr failed (log: $x/build.log); skipping the LiME sample"; return 1
  fi
  vm="$(strings "$src/lime.ko" | sed -n 's/^vermagic=//p' | head -n1 | sed 's/ *$//')"
  [ "${vm%% *}" = "$KREL" ] || { warn "lime.ko vermagic '$vm' does not match $KREL; skipping the LiME sample"; return 1; }
  if ! dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$x" "./lib/modules/$KREL/$LIME_NET_KO" 2>/dev/null; then
    warn "no $LIME_NET_KO in $(basename "$kdeb"); skipping the LiME sample"; return 1
  fi
  mkdir -p "$x/out"
  cp "$src/lime.ko" "$x/out/lime.ko"
  cp "$x/lib/modules/$KREL/$LIME_NET_KO" "$x/out/e1000.ko"
  cp "$x/build.log" "$x/out/build.log"
  echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) built against $hdr $KVER (vermagic $vm)" >"$x/out/lime.version"
  rm -rf "$d"
  mv "$x/out" "$d"
  rm -rf "$x"
  LIME_DIR="$d"
  step "lime.ko: built in $((SECONDS - t))s: $(cat "$d/lime.version")"
}

ltodo=() lime_ok=0
IFS='|' read -r lname _ _ lsmp <<<"$LIME_SAMPLE"
if [ "$FORCE" != 1 ] && sample_ok "$CACHE/$lname" "$KERNEL_DIR" "$KVER" "$PINNED" lime \
  && grep -qx "QEMU_SMP=$lsmp" "$CACHE/$lname/sample.env"; then
  step "sample $lname: complete, reusing"
  lime_ok=1
elif ensure_lime_ko; then
  ltodo+=("$LIME_SAMPLE")
fi

# ------------------------------------------------------------------ vmi_rootkit.ko (rootkit sample)
# Built from samples/rootkit/ (copied: kbuild writes beside the sources) against linux-headers-$KREL
# at $KVER; cached in $CACHE/rootkit/<release>_<version>_<source hash>/. Sets ROOTKIT_KO; returns 1
# after a WARNING when it cannot be built.
ROOTKIT_KO=""
rootkit_key() { cat "$HERE/rootkit/vmi_rootkit.c" "$HERE/rootkit/Makefile" | sha256sum | cut -c1-16; }
ensure_rootkit_ko() {
  local d="$CACHE/rootkit/${KREL}_${KVER}_$(rootkit_key)" x vm t=$SECONDS
  if [ -s "$d/vmi_rootkit.ko" ]; then
    ROOTKIT_KO="$d/vmi_rootkit.ko"
    step "vmi_rootkit.ko: reusing $ROOTKIT_KO"
    return 0
  fi
  ensure_headers rootkit || return 1
  mkdir -p "$CACHE/rootkit"
  x="$(mktemp -d "$CACHE/rootkit/.build.XXXXXX")"
  cp "$HERE/rootkit/vmi_rootkit.c" "$HERE/rootkit/Makefile" "$x/"
  step "vmi_rootkit.ko: make -C /usr/src/linux-headers-$KREL M=$x modules"
  if ! nice -n 5 make -C "/usr/src/linux-headers-$KREL" M="$x" modules >"$x/build.log" 2>&1 || [ ! -s "$x/vmi_rootkit.ko" ]; then
    tail -n 20 "$x/build.log" >&2
    warn "building vmi_rootkit.ko against linux-headers-$KREL failed (log: $x/build.log); skipping the rootkit sample"; return 1
  fi
  vm="$(strings "$x/vmi_rootkit.ko" | sed -n 's/^vermagic=//p' | head -n1 | sed 's/ *$//')"
  [ "${vm%% *}" = "$KREL" ] || { warn "vmi_rootkit.ko vermagic '$vm' does not match $KREL; skipping the rootkit sample"; return 1; }
  rm -rf "$d"
  mkdir -p "$d"
  cp "$x/vmi_rootkit.ko" "$x/build.log" "$d/"
  rm -rf "$x"
  ROOTKIT_KO="$d/vmi_rootkit.ko"
  step "vmi_rootkit.ko: built in $((SECONDS - t))s (vermagic $vm)"
}

# The rootkit's own record of what it did (its printk lines in truth/kmsg.txt) and the process it
# hid (truth/guest.env); the rootkit tests read both.
rootkit_truth_ok() { # sample-tmp-or-dir
  local d="$1" pid
  pid="$(sed -n 's/^ROOTKIT_HIDDEN_PID=//p' "$d/truth/guest.env")"
  [ -n "$pid" ] || { err "rootkit sample: no ROOTKIT_HIDDEN_PID in truth/guest.env"; return 1; }
  grep -q "vmi_rootkit: hid pid $pid task " "$d/truth/kmsg.txt" || { err "rootkit sample: the rootkit did not log hiding pid $pid"; return 1; }
  grep -q 'vmi_rootkit: sys_call_table .* slot 62 now ' "$d/truth/kmsg.txt" || { err "rootkit sample: the rootkit did not log its sys_call_table hook"; return 1; }
  grep -q 'vmi_rootkit: tcp4_seq_ops .* show now ' "$d/truth/kmsg.txt" || { err "rootkit sample: the rootkit did not log its tcp4_seq_ops hook"; return 1; }
  grep -q 'vmi_rootkit: keyboard notifier .* calls ' "$d/truth/kmsg.txt" || { err "rootkit sample: the rootkit did not log its keyboard notifier"; return 1; }
  grep -q 'vmi_rootkit: module .* hides itself' "$d/truth/kmsg.txt" || { err "rootkit sample: the rootkit did not log hiding itself"; return 1; }
  ! grep -q '^vmi_rootkit ' "$d/truth/modules.txt" || { err "rootkit sample: vmi_rootkit is still in /proc/modules"; return 1; }
}
# The parked calls the truth must show (comm: system call number), and the registers of both vCPUs.
vmexit_key() { { cat "$HERE/workload.c" "$HERE/qemu_snapshot.py"; echo "$PARK_MODULE"; } | sha256sum | cut -c1-16; }
vmexit_truth_ok() { # sample-tmp-or-dir
  local d="$1" spec comm nr tid m
  [ -s "$d/truth/registers.txt" ] && grep -q '^CPU#1' "$d/truth/registers.txt" \
    || { err "vmexit sample: truth/registers.txt lacks CPU#1 (info registers -a)"; return 1; }
  [ -s "$d/memory-b.raw" ] && [ -s "$d/truth-b/processes.tsv" ] \
    || { err "vmexit sample: no second snapshot (memory-b.raw, truth-b/)"; return 1; }
  m="${PARK_MODULE##*/}" m="${m%.ko}"
  grep -q "^$m " "$d/truth-b/modules.txt" && ! grep -q '^cpuid ' "$d/truth-b/modules.txt" \
    || { err "vmexit sample: truth-b/modules.txt does not show $m loaded and cpuid unloaded"; return 1; }
  grep -q $'\tvmi-wl-f$' "$d/truth-b/processes.tsv" && ! grep -q $'\tvmi-wl-e$' "$d/truth-b/processes.tsv" \
    || { err "vmexit sample: truth-b/processes.tsv does not show vmi-wl-e replaced by vmi-wl-f"; return 1; }
  for spec in vmi-wl-d:61 d-read:0 d-accept:43 d-nanosleep:35 d-fifo:257 d-futex:202; do
    comm="${spec%%:*}" nr="${spec#*:}"
    tid="$(awk -F'\t' -v c="$comm" 'NR > 1 && $3 == c {print $1}' "$d/truth/threads.tsv")"
    [ -n "$tid" ] || { err "vmexit sample: no thread $comm in truth/threads.tsv"; return 1; }
    awk -F'\t' -v t="$tid" -v n="$nr" '$1 == t && $3 ~ ("^" n " ") {ok=1} END {exit !ok}' "$d/truth/syscalls.tsv" \
      || { err "vmexit sample: $comm ($tid) is not in system call $nr (truth/syscalls.tsv)"; return 1; }
  done
}
# A sample of the pinned kernel with its own workload mode (the VMExit and rootkit samples) is
# reused when it is complete, its sample.env has the mode's key line and the mode's truth check
# passes.
mode_sample_reusable() { # name formats key-line truth-check
  [ "$FORCE" != 1 ] && sample_ok "$CACHE/$1" "$KERNEL_DIR" "$KVER" "$PINNED" "$2" \
    && grep -qx "$3" "$CACHE/$1/sample.env" && "$4" "$CACHE/$1" && step "sample $1: complete, reusing"
}
IFS='|' read -r vxname _ _ <<<"$VMEXIT_SAMPLE"
vxtodo=() vmexit_ok=0
if mode_sample_reusable "$vxname" all "VMEXIT_KEY=$(vmexit_key)" vmexit_truth_ok; then
  vmexit_ok=1
else
  vxtodo+=("$VMEXIT_SAMPLE")
fi
IFS='|' read -r rkname _ _ <<<"$ROOTKIT_SAMPLE"
rktodo=() rootkit_ok=0
if mode_sample_reusable "$rkname" basic "ROOTKIT_MODULE_KEY=$(rootkit_key)" rootkit_truth_ok; then
  rootkit_ok=1
elif ensure_rootkit_ko; then
  rktodo+=("$ROOTKIT_SAMPLE")
fi

# ------------------------------------------------------------------ initramfs
# One per kernel (it holds that kernel's SAMPLE_MODULES), and the LiME sample's. The key hashes
# workload.c, mkinitramfs.py, busybox, the given files (modules, lime.ko, e1000.ko) and the
# SAMPLE_MODULES specs (their insmod arguments).
# make_initrd dir [mkinitramfs options]: the workload binary and initrd.img in dir, unless there
initramfs_key() {
  { cat "$HERE/workload.c" "$HERE/mkinitramfs.py" "$BUSYBOX" "$@"; printf '%s\n' "${SAMPLE_MODULES[@]}"; } | sha256sum | cut -c1-16
}
make_initrd() {
  local dir="$1"
  shift
  if [ -s "$dir/initrd.img" ]; then
    step "initramfs: reusing $dir/initrd.img"
    return 0
  fi
  mkdir -p "$dir"
  step "workload: gcc -static -O2 -pthread workload.c"
  gcc -static -O2 -pthread -Wall -o "$dir/vmi-workload" "$HERE/workload.c"
  step "initramfs: busybox-static + /init + workload $* -> $dir/initrd.img"
  python3 "$HERE/mkinitramfs.py" --busybox "$BUSYBOX" --workload "$dir/vmi-workload" --out "$dir/initrd.img" "$@" \
    | sed 's/^/  /'
}
INITRD=""
kernel_initrd() { # kernel-dir [lime|rootkit|park] -> sets INITRD: the initramfs with that kernel's modules (built unless cached)
  local kdir="$1" spec m args files=() opts=() prefix=""
  for spec in "${SAMPLE_MODULES[@]}"; do
    m="${spec%%|*}" m="$kdir/modules/${m##*/}" args="${spec#*|}"
    files+=("$m")
    opts+=(--module "$m${args:+:$args}")
  done
  if [ "${2:-}" = lime ]; then
    # the LiME sample's: + /lime.ko, /net.ko (e1000) and the network setup in /init
    files+=("$LIME_DIR/lime.ko" "$LIME_DIR/e1000.ko")
    opts+=(--lime-ko "$LIME_DIR/lime.ko" --net-ko "$LIME_DIR/e1000.ko")
    prefix=lime-
  elif [ "${2:-}" = rootkit ]; then
    files+=("$ROOTKIT_KO") # the rootkit sample's: + /rootkit.ko, loaded by the workload
    opts+=(--rootkit-ko "$ROOTKIT_KO")
    prefix=rootkit-
  elif [ "${2:-}" = park ]; then
    # the VMExit sample's: the workload parks tasks in known calls and loads PARK_MODULE later
    files+=("$kdir/park/${PARK_MODULE##*/}")
    opts+=(--park "$kdir/park/${PARK_MODULE##*/}")
    prefix=park-
  fi
  INITRD="$CACHE/initramfs/$prefix$(initramfs_key "${files[@]}")/initrd.img"
  make_initrd "$(dirname "$INITRD")" "${opts[@]}"
}

# ------------------------------------------------------------------ snapshots
QEMU_VERSION="$(qemu-system-x86_64 --version | head -n1 | sed 's/^QEMU emulator version //')"

# Boots kernel-dir's vmlinuz with the initramfs, snapshots it (qemu_snapshot.py), checks the truth
# and installs the sample as $CACHE/<name>. Extra KEY=value lines for sample.env are read from
# stdin; extra kernel arguments are appended to APPEND for this boot only. Returns 1 (after an
# ERROR line) on failure; the half-built sample stays in $CACHE/.<name>.tmp.
build_sample() { # name cpu levels kernel-dir pinned all|basic|lime [initrd [vcpus [extra kernel arguments]]]
  local name="$1" cpu="$2" levels="$3" kdir="$4" pinned="$5" formats="$6" initrd="${7:-$INITRD}" smp="${8:-$SMP}" ikey
  local kargs="${9:-}" out="$CACHE/$name" tmp="$CACHE/.$name.tmp" krel kver tries la57 got t=$SECONDS extra spec m
  extra="$(cat)"
  krel="$(cat "$kdir/release")" kver="$(cat "$kdir/version")"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  step "sample $name: booting $krel in QEMU (-cpu $cpu, $RAM, $smp vCPUs, TCG, KASLR on, formats $formats${kargs:+, kernel arguments + $kargs}) and snapshotting"
  ikey="$(basename "$(dirname "$initrd")")"
  if ! python3 "$HERE/qemu_snapshot.py" --kernel "$kdir/vmlinuz" --initrd "$initrd" --out "$tmp" \
    --cpu "$cpu" --mem "$RAM" --smp "$smp" --append "$APPEND${kargs:+ $kargs}" --formats "$formats" \
    ${SECOND_SNAPSHOT:+--second-snapshot} | tee "$tmp/snapshot.log" | sed 's/^/  /'; then
    err "sample $name: snapshot failed (see $tmp/console.log)"; return 1
  fi
  tries="$(sed -n 's/^SNAPSHOT_TRIES=//p' "$tmp/snapshot.log")"
  la57="$(sed -n 's/^CPU_LA57=//p' "$tmp/truth/guest.env")"
  if [ "$la57" = 1 ]; then got=5; else got=4; fi
  [ "$got" = "$levels" ] || { err "sample $name: expected $levels-level paging but guest cpuinfo la57=$la57"; return 1; }
  [ "$(tr -d '\n' <"$tmp/truth/release.txt")" = "$krel" ] || { err "sample $name: guest release differs from $krel"; return 1; }
  awk -F'\t' '$1 == 2 && $9 == "kthreadd" {ok=1} END {exit !ok}' "$tmp/truth/processes.tsv" \
    || { err "sample $name: kthreadd (pid 2) missing from truth"; return 1; }
  grep -q $'\tvmi-wl-root$' "$tmp/truth/processes.tsv" || { err "sample $name: workload missing from truth"; return 1; }
  for f in "${TRUTH_FACTS[@]}"; do
    grep -q "^$f=" "$tmp/truth/guest.env" || { err "sample $name: the guest recorded no $f (truth/guest.env)"; return 1; }
  done
  for spec in "${SAMPLE_MODULES[@]}"; do
    m="${spec%%|*}" m="${m##*/}" m="${m%.ko}"
    grep -q "^$m " "$tmp/truth/modules.txt" \
      || { err "sample $name: module $m is not loaded in the guest (truth/modules.txt; see @@VMI-INSMOD-FAILED in console.log)"; return 1; }
  done
  grep -q ' (deleted)' "$tmp/truth/fds.tsv" || { err "sample $name: no open deleted file in truth/fds.tsv"; return 1; }
  [ "$(wc -l < "$tmp/truth/args.tsv")" -gt 1 ] || { err "sample $name: no process arguments in truth/args.tsv"; return 1; }
  grep -q $'^tcp\t.* 0100007F:1E61 00000000:0000 0A ' "$tmp/truth/net.tsv" \
    || { err "sample $name: no TCP listener on 127.0.0.1:7777 in truth/net.tsv"; return 1; }
  grep -q ' /etc/passwd$' "$tmp/truth/maps.tsv" || { err "sample $name: vmi-wl-b's /etc/passwd mapping is not in truth/maps.tsv"; return 1; }
  grep -q ' /mnt/vmi-private ' "$tmp/truth/mountinfo.tsv" \
    || { err "sample $name: c1's private tmpfs is not in truth/mountinfo.tsv"; return 1; }
  [ "$(grep -c ';vmi-wl: ' "$tmp/truth/kmsg.txt")" = 3 ] || { err "sample $name: the workload's kernel log lines are not in truth/kmsg.txt"; return 1; }
  case " $kargs " in
    *" pti=on "*)
      [ "$(sed -n 's/^CPU_PTI=//p' "$tmp/truth/guest.env")" = 1 ] \
        || { err "sample $name: booted with pti=on but the guest's cpuinfo has no pti flag (CPU_PTI in truth/guest.env)"; return 1; } ;;
  esac
  if [ "$formats" = lime ]; then
    [ "$(head -c 4 "$tmp/memory.lime")" = EMiL ] || { err "sample $name: memory.lime lacks LiME's magic"; return 1; }
    grep -q '^LIME_INSMOD_PID=' "$tmp/truth/guest.env" || { err "sample $name: no LIME_INSMOD_PID in the truth"; return 1; }
  else
    readelf -l -W "$tmp/memory.elf" | grep '^ *LOAD' >/dev/null || { err "sample $name: memory.elf has no PT_LOAD"; return 1; }
  fi
  chmod 0644 "$tmp"/memory[.-]*
  {
    echo "KERNEL_RELEASE=$krel"
    echo "KERNEL_PACKAGE_VERSION=$kver"
    echo "PAGING_LEVELS=$got"
    echo "RAM_BYTES=$RAM_BYTES"
    echo "PINNED=$pinned"
    echo "KERNEL_DIR=$kdir"
    echo "GUEST_CPU_LA57=$la57"
    echo "QEMU_CPU=$cpu"
    echo "QEMU_SMP=$smp"
    echo "QEMU_VERSION='$QEMU_VERSION'"
    echo "SNAPSHOT_TRIES=$tries"
    echo "INITRAMFS_KEY=$ikey"
    echo "EXTRA_FORMATS='$(cd "$tmp" && ls memory.kdump-* memory.savevm 2>/dev/null | tr '\n' ' ' | sed 's/ $//')'"
    [ "$formats" != all ] || echo "KDUMP_UNAVAILABLE='$(sed -n 's/^KDUMP_UNAVAILABLE=//p' "$tmp/snapshot.log")'"
    echo "TRUTH_VERSION=$TRUTH_VERSION"
    echo "KERNEL_EXTRA_ARGS='$kargs'"
    [ -z "$extra" ] || printf '%s\n' "$extra"
  } >"$tmp/sample.env"
  rm -rf "$out"
  mv "$tmp" "$out"
  step "sample $name: done in $((SECONDS - t))s ($(($(wc -l <"$out/truth/processes.tsv") - 1)) processes, $(($(wc -l <"$out/truth/threads.tsv") - 1)) threads, la57=$la57)"
}

if ((${#todo[@]})); then kernel_initrd "$KERNEL_DIR"; fi
for spec in ${todo[@]+"${todo[@]}"}; do
  IFS='|' read -r name cpu levels <<<"$spec"
  build_sample "$name" "$cpu" "$levels" "$KERNEL_DIR" "$PINNED" all "$INITRD" </dev/null || die "sample $name failed"
done

for spec in ${rtodo[@]+"${rtodo[@]}"}; do
  IFS='|' read -r name flavour cpu levels kdir pinned kargs <<<"$spec"
  kernel_initrd "$kdir"
  if build_sample "$name" "$cpu" "$levels" "$kdir" "$pinned" basic "$INITRD" "" "$kargs" <<<"KERNEL_FLAVOUR=$flavour
PROFILE_SHIPPED=0"; then
    rdone+=("$name")
  else
    warn "recovery sample $name could not be built; it is left out of recovery-samples.list"
  fi
done

for spec in ${ltodo[@]+"${ltodo[@]}"}; do
  IFS='|' read -r name cpu levels smp <<<"$spec"
  kernel_initrd "$KERNEL_DIR" lime
  LIME_INITRD="$INITRD"
  if build_sample "$name" "$cpu" "$levels" "$KERNEL_DIR" "$PINNED" lime "$LIME_INITRD" "$smp" <<<"LIME_MODULE='$(cat "$LIME_DIR/lime.version")'
LIME_ARGS='path=tcp:4444 format=lime timeout=0'
QEMU_NIC=e1000"; then
    lime_ok=1
  else
    warn "LiME sample $name could not be built; it is left out of lime-samples.list"
  fi
done

for spec in ${rktodo[@]+"${rktodo[@]}"}; do
  IFS='|' read -r name cpu levels <<<"$spec"
  kernel_initrd "$KERNEL_DIR" rootkit
  if build_sample "$name" "$cpu" "$levels" "$KERNEL_DIR" "$PINNED" basic "$INITRD" <<<"ROOTKIT_MODULE_KEY=$(rootkit_key)" \
    && rootkit_truth_ok "$CACHE/$name"; then
    rootkit_ok=1
  else
    warn "rootkit sample $name could not be built; it is left out of rootkit-samples.list"
  fi
done

# PARK_MODULE -> kernel-dir/park/<name>.ko, from the kernel's package (fetched again if absent)
park_module() { # kernel-dir -> 0 once it is there
  local kd="$1" ko="$1/park/${PARK_MODULE##*/}" kdeb x vm dep ko_src
  [ -s "$ko" ] && return 0
  kdeb="$CACHE/downloads/$(cat "$kd/package")"
  [ -s "$kdeb" ] || fetch_deb "$(sed 's/_.*//' "$kd/package")" "$(cat "$kd/version")" || return 1
  x="$(mktemp -d "$CACHE/kernels/.park.XXXXXX")" || return 1
  { dpkg-deb --fsys-tarfile "$kdeb" || true; } | tar -x -C "$x" --wildcards "./lib/modules/$(cat "$kd/release")/$PARK_MODULE*" 2>/dev/null || true
  ko_src="$(ls "$x"/lib/modules/*/"$PARK_MODULE"* 2>/dev/null | head -n1)"
  mkdir -p "$kd/park"
  case "$ko_src" in
    *.xz) xz -dc "$ko_src" >"$ko.tmp" ;;
    ?*) cp "$ko_src" "$ko.tmp" ;;
    *) rm -rf "$x"; err "no $PARK_MODULE in $(basename "$kdeb")"; return 1 ;;
  esac
  rm -rf "$x"
  vm="$(strings "$ko.tmp" | sed -n 's/^vermagic=//p')" dep="$(strings "$ko.tmp" | sed -n 's/^depends=//p')"
  [ "${vm%% *}" = "$(cat "$kd/release")" ] && [ -z "$dep" ] \
    || { rm -f "$ko.tmp"; err "$PARK_MODULE: vermagic '$vm', depends '$dep'"; return 1; }
  mv "$ko.tmp" "$ko"
}
for spec in ${vxtodo[@]+"${vxtodo[@]}"}; do
  IFS='|' read -r name cpu levels <<<"$spec"
  if park_module "$KERNEL_DIR" && kernel_initrd "$KERNEL_DIR" park \
    && SECOND_SNAPSHOT=1 build_sample "$name" "$cpu" "$levels" "$KERNEL_DIR" "$PINNED" all "$INITRD" <<<"VMEXIT_KEY=$(vmexit_key)" \
    && vmexit_truth_ok "$CACHE/$name"; then
    vmexit_ok=1
  else
    warn "VMExit sample $name could not be built; it is left out of vmexit-samples.list"
  fi
done

# ------------------------------------------------------------------ System.map (main samples only)
ensure_system_map() { # sample dir [check]
  local d="$1" kd
  kd="$(sed -n 's/^KERNEL_DIR=//p' "$d/sample.env")"
  if [ ! -s "$kd/System.map" ]; then
    step "System.map: rebuilding $kd/System.map from $(basename "$d")'s /proc/kallsyms (Debian ships a stub)"
    python3 "$HERE/systemmap.py" --kallsyms "$d/truth/kallsyms" --vmlinux "$kd/vmlinux" --out "$kd/System.map" | sed 's/^/  /'
    echo "kallsyms of sample $(basename "$d"), un-slid by systemmap.py" >"$kd/System.map.source"
  elif [ "${2:-}" = check ] && grep -q '^kallsyms' "$kd/System.map.source" 2>/dev/null; then
    python3 "$HERE/systemmap.py" --kallsyms "$d/truth/kallsyms" --vmlinux "$kd/vmlinux" --check "$kd/System.map" \
      | sed "s/^/  $(basename "$d"): /" || die "System.map is not consistent with sample $(basename "$d")"
  fi
}
for spec in "${SAMPLES[@]}"; do
  IFS='|' read -r name _ _ <<<"$spec"
  if sample_ok "$CACHE/$name" "$KERNEL_DIR" "$KVER" "$PINNED" all; then
    built=0
    for t in ${todo[@]+"${todo[@]}"}; do [ "${t%%|*}" = "$name" ] && built=1; done
    if ((built)); then ensure_system_map "$CACHE/$name" check; else ensure_system_map "$CACHE/$name"; fi
  fi
done

# ------------------------------------------------------------------ index
write_list() { # list-file sample names...
  local list="$1" n
  shift
  : >"$list.tmp"
  for n in "$@"; do echo "$n" >>"$list.tmp"; done
  mv "$list.tmp" "$list"
  step "$(basename "$list"): $(tr '\n' ' ' <"$list")"
}
main_ok=()
for spec in "${SAMPLES[@]}"; do
  IFS='|' read -r name _ _ <<<"$spec"
  if sample_ok "$CACHE/$name" "$KERNEL_DIR" "$KVER" "$PINNED" all; then main_ok+=("$name"); fi
done
write_list "$CACHE/samples.list" ${main_ok[@]+"${main_ok[@]}"}
rlist=()
for spec in "${RECOVERY_SAMPLES[@]}"; do # in the declared order
  IFS='|' read -r name _ <<<"$spec"
  for n in ${rdone[@]+"${rdone[@]}"}; do [ "$n" = "$name" ] && rlist+=("$name"); done
done
write_list "$CACHE/recovery-samples.list" ${rlist[@]+"${rlist[@]}"}
llist=()
((lime_ok)) && llist+=("$lname")
write_list "$CACHE/lime-samples.list" ${llist[@]+"${llist[@]}"}
rklist=()
((rootkit_ok)) && rklist+=("$rkname")
write_list "$CACHE/rootkit-samples.list" ${rklist[@]+"${rklist[@]}"}
vxlist=()
((vmexit_ok)) && vxlist+=("$vxname")
write_list "$CACHE/vmexit-samples.list" ${vxlist[@]+"${vxlist[@]}"}
step "done in $((SECONDS - T0))s"
