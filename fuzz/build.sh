#!/usr/bin/env bash
# Builds the library and every libFuzzer target in fuzz/targets/ into build-fuzz/ (clang-14,
# -fsanitize=fuzzer,address,undefined). Needs nothing from CMake: the library's source list is
# read from lib/CMakeLists.txt so a new source file is picked up here too.
#
#   bash fuzz/build.sh            # all targets
#   bash fuzz/build.sh isf btf    # only these (names of fuzz/targets/*.cpp without .cpp)
#
# Incremental by modification time: an object is rebuilt when its source or any header under
# lib/ is newer. CXX, OUT and NICE may be overridden from the environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$ROOT/build-fuzz}"
CXX="${CXX:-clang++-14}"
NICE="${NICE:-nice -n 10}"
SAN="address,undefined"
# Capstone is loaded with dlopen by its soname, as lib/CMakeLists.txt derives it.
CAPSTONE_SONAME="libcapstone.so.$(pkg-config --modversion capstone | cut -d. -f1)"
CXXFLAGS=(-std=c++20 -O1 -g -fno-omit-frame-pointer -Wall -Wextra -Wno-unused-parameter
  "-I$ROOT/lib/include" "-I$ROOT/lib" "-DVMI_SOURCE_PROFILES_DIR=\"$ROOT/profiles\""
  "-DVMI_CAPSTONE_SONAME=\"$CAPSTONE_SONAME\"")
LIBS=(-lsimdjson -llzma -lzstd -lz -llzo2 -lsnappy -ldw -lelf -ldl -lpthread)

mkdir -p "$OUT/obj" "$OUT/bin"

# Library sources, in the order lib/CMakeLists.txt lists them.
mapfile -t SOURCES < <(sed -n '/^add_library(vmi SHARED/,/^)/p' "$ROOT/lib/CMakeLists.txt" | grep -E '^\s+\S+\.cpp' | tr -d ' ')
newest_header=$(find "$ROOT/lib" -name '*.hpp' -printf '%T@\n' | sort -n | tail -1)

stale() {  # stale OUTPUT INPUT...: true when OUTPUT is missing or older than an input or any header
  local out=$1; shift
  [[ -f $out ]] || return 0
  local t; t=$(stat -c %Y "$out")
  for f in "$@"; do [[ $(stat -c %Y "$f") -gt $t ]] && return 0; done
  [[ ${newest_header%.*} -gt $t ]]
}

objects=()
for src in "${SOURCES[@]}"; do
  obj="$OUT/obj/${src//\//_}.o"
  objects+=("$obj")
  if stale "$obj" "$ROOT/lib/$src"; then
    echo "CXX lib/$src"
    $NICE "$CXX" "${CXXFLAGS[@]}" -fsanitize=fuzzer-no-link,$SAN -c "$ROOT/lib/$src" -o "$obj"
  fi
done
archive="$OUT/libvmi-fuzz.a"
if stale "$archive" "${objects[@]}"; then
  rm -f "$archive"
  ar rcs "$archive" "${objects[@]}"
fi

targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  for t in "$ROOT"/fuzz/targets/*.cpp; do targets+=("$(basename "$t" .cpp)"); done
fi
failed=()
for t in "${targets[@]}"; do
  src="$ROOT/fuzz/targets/$t.cpp"
  bin="$OUT/bin/$t"
  if stale "$bin" "$src" "$archive" "$ROOT"/fuzz/targets/*.hpp; then
    echo "LINK fuzz/targets/$t.cpp"
    if ! $NICE "$CXX" "${CXXFLAGS[@]}" -fsanitize=fuzzer,$SAN "$src" "$archive" "${LIBS[@]}" -o "$bin"; then
      failed+=("$t")
    fi
  fi
done
if [[ ${#failed[@]} -gt 0 ]]; then
  echo "targets that did not build: ${failed[*]}" >&2
  exit 1
fi
# Windows detection reads ntoskrnl's CodeView record through the LIEF module, which the library
# loads from beside itself: for a statically linked fuzz target, beside the binary.
lief_module="$OUT/bin/libvmi-forensics-lief.so"
if stale "$lief_module" "$ROOT/lib/binary/lief_check.cpp"; then
  echo "CXX lib/binary/lief_check.cpp (module)"
  $NICE "$CXX" -std=c++20 -O1 -fPIC -shared "$ROOT/lib/binary/lief_check.cpp" -lLIEF \
    -o "$lief_module"
fi
# The source the binaries were built from, for run.sh's record of results.
git -C "$ROOT" describe --always --dirty >"$OUT/built-from" 2>/dev/null || echo unknown >"$OUT/built-from"
echo "built: $OUT/bin/{$(IFS=,; echo "${targets[*]}")}"
