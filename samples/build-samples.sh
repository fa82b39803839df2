#!/usr/bin/env bash
# Builds real memory snapshots of a Linux guest (QEMU, TCG) plus the guest's own
# ground truth. Idempotent and non-interactive; see samples/README.md.
#
#   bash samples/build-samples.sh            # build what is missing, reuse the rest
#   VMI_SAMPLES_FORCE=1 bash samples/build-samples.sh   # rebuild the samples
#
# Cache: ${VMI_SAMPLES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vmi-forensics/samples}
set -euo pipefail
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

RAM=512M
RAM_BYTES=$((512 * 1024 * 1024))
SMP=2
APPEND="console=ttyS0 loglevel=1 panic=-1"
# name | qemu -cpu | expected paging levels
SAMPLES=(
  "linux-6.1-la57|max|5"
  "linux-6.1-4level|max,la57=off|4"
)

T0=$SECONDS
step() { printf '[build-samples %4ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() { printf '[build-samples] ERROR: %s\n' "$*" >&2; exit 1; }

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
file_is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'INTERP'; }
file_is_static "$BUSYBOX" || { [ -x /bin/busybox ] && file_is_static /bin/busybox && BUSYBOX=/bin/busybox; } \
  || die "busybox is not static: install busybox-static"

mkdir -p "$CACHE/downloads" "$CACHE/kernels"
step "cache: $CACHE"

# ------------------------------------------------------------------ kernel
kernel_dir_ok() { # dir -> 0 if complete
  local d="$1"
  for f in vmlinuz vmlinux System.map.package config release version; do [ -s "$d/$f" ] || return 1; done
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
         && readelf -S -W "$out.tmp" 2>/dev/null | grep -q ' \.BTF '; then
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
  dir="$CACHE/kernels/$rel"
  rm -rf "$dir"
  mv "$x/k" "$dir"
  rm -rf "$x"
  echo "$dir"
}

pinned_sha() { # expected sha256 of the pinned .deb, from shared/kernels/SHA256SUMS
  [ -r "$SHARED_KERNELS/SHA256SUMS" ] && awk -v f="$PIN_DEB" '$2 == f || $2 == "*" f {print $1}' "$SHARED_KERNELS/SHA256SUMS"
}

deb_matches_pin() { # deb -> 0 if it is the pinned package (sha256 when known)
  local deb="$1" want
  [ -s "$deb" ] || return 1
  [ "$(dpkg-deb -f "$deb" Package 2>/dev/null)" = "$PIN_PKG" ] || return 1
  [ "$(dpkg-deb -f "$deb" Version 2>/dev/null)" = "$PIN_VER" ] || return 1
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

KERNEL_DIR="" PINNED=0
if kernel_dir_ok "$CACHE/kernels/$PIN_REL" && [ "$(cat "$CACHE/kernels/$PIN_REL/version")" = "$PIN_VER" ]; then
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
      v="$(apt-cache policy "$p" | awk '/Candidate:/ {print $2}')"
      [ -n "$v" ] && [ "$v" != "(none)" ] || continue
      if [ -z "$bestver" ] || dpkg --compare-versions "$v" gt "$bestver"; then best="$p" bestver="$v"; fi
    done
    [ -n "$best" ] || die "no linux-image-6.1.*-amd64-unsigned package is available"
    fdeb="$CACHE/downloads/${best}_${bestver}_amd64.deb"
    rel="${best#linux-image-}"; rel="${rel%-unsigned}"
    if kernel_dir_ok "$CACHE/kernels/$rel" && [ "$(cat "$CACHE/kernels/$rel/version")" = "$bestver" ]; then
      KERNEL_DIR="$CACHE/kernels/$rel"
    else
      [ -s "$fdeb" ] || { step "kernel: apt-get download $best=$bestver"; apt_download "$best=$bestver" || die "apt-get download $best failed"; }
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

# ------------------------------------------------------------------ samples to (re)build
sample_ok() { # dir -> 0 if complete (and its kernel dir still exists)
  local d="$1" f kd
  for f in memory.raw memory.elf memory.kdump-zlib memory.savevm truth/processes.tsv truth/threads.tsv truth/version.txt truth/release.txt \
           truth/kallsyms sample.env; do
    [ -s "$d/$f" ] || return 1
  done
  [ "$(stat -c %s "$d/memory.raw")" = "$RAM_BYTES" ] || return 1
  # built with the kernel selected now (an unavailable pin would switch kernels)
  kd="$(sed -n 's/^KERNEL_DIR=//p' "$d/sample.env")"
  [ "$kd" = "$KERNEL_DIR" ] && grep -qx "KERNEL_PACKAGE_VERSION=$KVER" "$d/sample.env" && kernel_dir_ok "$kd"
}

todo=()
for spec in "${SAMPLES[@]}"; do
  IFS='|' read -r name _ _ <<<"$spec"
  if [ "$FORCE" != 1 ] && sample_ok "$CACHE/$name"; then
    step "sample $name: complete, reusing"
  else
    todo+=("$spec")
  fi
done

# ------------------------------------------------------------------ initramfs
if ((${#todo[@]})); then
  key="$(cat "$HERE/workload.c" "$HERE/mkinitramfs.py" "$BUSYBOX" | sha256sum | cut -c1-16)"
  IDIR="$CACHE/initramfs/$key"
  INITRD="$IDIR/initrd.img"
  if [ -s "$INITRD" ]; then
    step "initramfs: reusing $INITRD"
  else
    mkdir -p "$IDIR"
    step "workload: gcc -static -O2 -pthread workload.c"
    gcc -static -O2 -pthread -Wall -o "$IDIR/vmi-workload" "$HERE/workload.c"
    step "initramfs: busybox-static + /init + workload -> $INITRD"
    python3 "$HERE/mkinitramfs.py" --busybox "$BUSYBOX" --workload "$IDIR/vmi-workload" --out "$INITRD" \
      | sed 's/^/  /'
  fi
fi

# ------------------------------------------------------------------ snapshots
QEMU_VERSION="$(qemu-system-x86_64 --version | head -n1 | sed 's/^QEMU emulator version //')"
for spec in ${todo[@]+"${todo[@]}"}; do
  IFS='|' read -r name cpu levels <<<"$spec"
  out="$CACHE/$name"
  tmp="$CACHE/.$name.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  step "sample $name: booting $KREL in QEMU (-cpu $cpu, $RAM, $SMP vCPUs, TCG, KASLR on) and snapshotting"
  if ! python3 "$HERE/qemu_snapshot.py" --kernel "$KERNEL_DIR/vmlinuz" --initrd "$INITRD" --out "$tmp" \
    --cpu "$cpu" --mem "$RAM" --smp "$SMP" --append "$APPEND" | tee "$tmp/snapshot.log" | sed 's/^/  /'; then
    die "sample $name: snapshot failed (see $tmp/console.log)"
  fi
  tries="$(sed -n 's/^SNAPSHOT_TRIES=//p' "$tmp/snapshot.log")"
  la57="$(sed -n 's/^CPU_LA57=//p' "$tmp/truth/guest.env")"
  if [ "$la57" = 1 ]; then got=5; else got=4; fi
  [ "$got" = "$levels" ] || die "sample $name: expected $levels-level paging but guest cpuinfo la57=$la57"
  [ "$(tr -d '\n' <"$tmp/truth/release.txt")" = "$KREL" ] || die "sample $name: guest release differs from $KREL"
  awk -F'\t' '$1 == 2 && $9 == "kthreadd" {ok=1} END {exit !ok}' "$tmp/truth/processes.tsv" \
    || die "sample $name: kthreadd (pid 2) missing from truth"
  grep -q $'\tvmi-wl-root$' "$tmp/truth/processes.tsv" || die "sample $name: workload missing from truth"
  readelf -l -W "$tmp/memory.elf" | grep -q '^ *LOAD' || die "sample $name: memory.elf has no PT_LOAD"
  chmod 0644 "$tmp/memory.raw" "$tmp/memory.elf" "$tmp"/memory.kdump-* "$tmp/memory.savevm"
  {
    echo "KERNEL_RELEASE=$KREL"
    echo "KERNEL_PACKAGE_VERSION=$KVER"
    echo "PAGING_LEVELS=$got"
    echo "RAM_BYTES=$RAM_BYTES"
    echo "PINNED=$PINNED"
    echo "KERNEL_DIR=$KERNEL_DIR"
    echo "GUEST_CPU_LA57=$la57"
    echo "QEMU_CPU=$cpu"
    echo "QEMU_SMP=$SMP"
    echo "QEMU_VERSION='$QEMU_VERSION'"
    echo "SNAPSHOT_TRIES=$tries"
    echo "INITRAMFS_KEY=$key"
    echo "EXTRA_FORMATS='$(cd "$tmp" && ls memory.kdump-* memory.savevm 2>/dev/null | tr '\n' ' ' | sed 's/ $//')'"
  } >"$tmp/sample.env"
  rm -rf "$out"
  mv "$tmp" "$out"
  step "sample $name: done ($(($(wc -l <"$out/truth/processes.tsv") - 1)) processes, $(($(wc -l <"$out/truth/threads.tsv") - 1)) threads, la57=$la57)"
done

# ------------------------------------------------------------------ System.map
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
  if sample_ok "$CACHE/$name"; then
    built=0
    for t in ${todo[@]+"${todo[@]}"}; do [ "${t%%|*}" = "$name" ] && built=1; done
    if ((built)); then ensure_system_map "$CACHE/$name" check; else ensure_system_map "$CACHE/$name"; fi
  fi
done

# ------------------------------------------------------------------ index
: >"$CACHE/samples.list.tmp"
for spec in "${SAMPLES[@]}"; do
  IFS='|' read -r name _ _ <<<"$spec"
  sample_ok "$CACHE/$name" && echo "$name" >>"$CACHE/samples.list.tmp"
done
mv "$CACHE/samples.list.tmp" "$CACHE/samples.list"
step "samples.list: $(tr '\n' ' ' <"$CACHE/samples.list")"
step "done in $((SECONDS - T0))s"
