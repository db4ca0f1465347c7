#!/usr/bin/env bash
# Build and run the quickstart example (examples/quickstart.cpp).
#
#   bash scripts/example.sh [data-dir]      # default data dir: ./rill-data
#
# Needs only a C++20 compiler and CMake (no Catch2): tests, benchmarks and tools are not built.
# Running it again reuses the data directory: the example reopens the log and resumes.
#
# Environment: CXX (compiler, default: CMake's choice), RILL_BUILD_TYPE (default Release).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data_dir=${1:-rill-data}
build_dir=$root/build/example

have() { command -v "$1" >/dev/null 2>&1; }

if ! have cmake; then
  echo "error: cmake not found (Debian/Ubuntu: apt-get install cmake g++)" >&2
  exit 1
fi
if [[ -z ${CXX:-} ]] && ! have c++ && ! have g++ && ! have clang++; then
  echo "error: no C++ compiler found (Debian/Ubuntu: apt-get install g++)" >&2
  exit 1
fi

generator_args=()
if have ninja; then
  generator_args=(-G Ninja)
fi
# A build tree made with another generator cannot be reused.
if [[ -f $build_dir/CMakeCache.txt ]]; then
  want=$([[ ${#generator_args[@]} -gt 0 ]] && echo Ninja || echo "Unix Makefiles")
  grep -qx "CMAKE_GENERATOR:INTERNAL=$want" "$build_dir/CMakeCache.txt" || rm -rf "$build_dir"
fi

cmake -S "$root" -B "$build_dir" "${generator_args[@]}" \
  -DCMAKE_BUILD_TYPE="${RILL_BUILD_TYPE:-Release}" \
  -DRILL_BUILD_EXAMPLES=ON \
  -DRILL_BUILD_TESTS=OFF \
  -DRILL_BUILD_BENCH=OFF \
  -DRILL_BUILD_TOOLS=OFF \
  -DRILL_WERROR=OFF
cmake --build "$build_dir" --target quickstart -j "$(nproc 2>/dev/null || echo 2)"

mkdir -p "$data_dir"
echo "==> $build_dir/examples/quickstart $data_dir"
exec "$build_dir/examples/quickstart" "$data_dir"
