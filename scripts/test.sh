#!/usr/bin/env bash
# Build rill with every compiler (warnings are errors) and run all its tests.
#
#   bash scripts/test.sh            # from the repository root (or ./scripts/test.sh)
#
# Build trees: build/gcc, build/clang. Missing tools (cmake, ninja, g++, clang, Catch2, and
# CLI11 + nlohmann-json for the rill tool) are installed with apt-get when run as root;
# otherwise the script says what to install.
#
# Environment:
#   RILL_COMPILERS   compilers to use, default "g++ clang++"
#   RILL_BUILD_TYPE  CMake build type, default RelWithDebInfo
#   RILL_CTEST_JOBS  tests run in parallel, default 2 (concurrency tests always run alone)
#   RILL_CMAKE_ARGS  extra arguments for the configure step
#   RILL_CTEST_ARGS  arguments for ctest, e.g. "-L unit" or "-R log_test"; default "-LE stress"
#                    (the long `stress` runs are left out unless asked for: "-L stress")
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

compilers=${RILL_COMPILERS:-"g++ clang++"}
build_type=${RILL_BUILD_TYPE:-RelWithDebInfo}
ctest_jobs=${RILL_CTEST_JOBS:-2}
jobs=$(nproc 2>/dev/null || echo 2)

log() { printf '\n==> %s\n' "$*"; }
have() { command -v "$1" >/dev/null 2>&1; }

catch2_present() {
  local dir
  local dirs=(/usr/include /usr/local/include)
  # Also look where CMake would look for a Catch2 installed under a custom prefix.
  local IFS=:
  for dir in ${CMAKE_PREFIX_PATH:-}; do dirs+=("$dir/include"); done
  unset IFS
  for dir in "${dirs[@]}"; do
    if [[ -f $dir/catch2/catch.hpp || -f $dir/catch2/catch_test_macros.hpp ]]; then
      return 0
    fi
  done
  return 1
}

# --- prerequisites ------------------------------------------------------------------------------
required_pkgs=()
have cmake || required_pkgs+=(cmake)
for cxx in $compilers; do
  if ! have "$cxx"; then
    case $cxx in
      g++) required_pkgs+=(g++) ;;
      clang++) required_pkgs+=(clang) ;;
      *) echo "error: compiler '$cxx' not found (set RILL_COMPILERS)" >&2; exit 1 ;;
    esac
  fi
done
catch2_present || required_pkgs+=(catch2)
optional_pkgs=()
have ninja || optional_pkgs+=(ninja-build)
# The rill tool (tools/) and its tests build only with CLI11 and nlohmann-json.
[[ -f /usr/include/CLI/CLI.hpp ]] || optional_pkgs+=(libcli11-dev)
[[ -f /usr/include/nlohmann/json.hpp ]] || optional_pkgs+=(nlohmann-json3-dev)

if ((${#required_pkgs[@]} + ${#optional_pkgs[@]} > 0)); then
  if [[ $(id -u) -eq 0 ]] && have apt-get; then
    log "installing: ${required_pkgs[*]} ${optional_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y "${required_pkgs[@]}" "${optional_pkgs[@]}"
  elif ((${#required_pkgs[@]} > 0)); then
    {
      echo "error: missing prerequisites: ${required_pkgs[*]}"
      echo "  install them, e.g.: sudo apt-get install ${required_pkgs[*]} ${optional_pkgs[*]}"
      echo "  (or run this script as root and it will install them)"
    } >&2
    exit 1
  fi
fi

if have ninja; then
  generator=Ninja
else
  generator="Unix Makefiles"
fi

# Optimisation, per compiler, for RelWithDebInfo (unless RILL_KEEP_OPT_FLAGS is set):
# - g++: -O1 -g1. RelWithDebInfo's -O2 -g doubles the compile time of every test; -O1 still runs
#   the optimised code paths and gcc's flow-based warnings (-Wmaybe-uninitialized and the like),
#   and -g1 keeps line tables for backtraces.
# - clang++: -O0 -g0. clang's warnings do not depend on optimisation, and -O0 compiles the tests
#   about three times faster. Optimised code is tested by the g++ build here and by .ci/run's
#   sanitizer builds (-O1).
# Benchmarks are built with these flags too (RILL_BENCH_OPTIMIZE=OFF): this script only checks
# that they compile.
opt_flags_for() {
  case $1 in
    clang++*) echo "-O0 -g0" ;;
    *) echo "-O1 -g1" ;;
  esac
}

launcher_args=()
if have ccache; then
  launcher_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

# --- one build tree per compiler ----------------------------------------------------------------
summary=()
failed=0

for cxx in $compilers; do
  case $cxx in
    g++) name=gcc ;;
    clang++) name=clang ;;
    *) name=$(basename "$cxx" | tr -c 'A-Za-z0-9._\n-' '_') ;;
  esac
  dir=build/$name

  # A build tree made with another generator cannot be reused.
  if [[ -f $dir/CMakeCache.txt ]] &&
     ! grep -qx "CMAKE_GENERATOR:INTERNAL=$generator" "$dir/CMakeCache.txt"; then
    rm -rf "$dir"
  fi

  opt_args=()
  if [[ $build_type == RelWithDebInfo && -z ${RILL_KEEP_OPT_FLAGS:-} ]]; then
    opt_args+=("-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(opt_flags_for "$cxx")")
  fi

  t0=$SECONDS
  status=PASS
  step=""

  log "[$cxx] configure $dir ($generator, $build_type)"
  # shellcheck disable=SC2086  # RILL_CMAKE_ARGS is split on purpose
  if ! cmake -S . -B "$dir" -G "$generator" \
      -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_BUILD_TYPE="$build_type" \
      "${opt_args[@]}" \
      -DRILL_BENCH_OPTIMIZE=OFF \
      -DRILL_WERROR=ON \
      -DRILL_BUILD_TESTS=ON \
      "${launcher_args[@]}" \
      ${RILL_CMAKE_ARGS:-}; then
    status=FAIL step=configure
  fi

  t1=$SECONDS
  if [[ $status == PASS ]]; then
    log "[$cxx] build (-j$jobs)"
    cmake --build "$dir" -j "$jobs" || { status=FAIL step=build; }
  fi

  t2=$SECONDS
  tests_line=""
  if [[ $status == PASS ]]; then
    log "[$cxx] test (ctest -j$ctest_jobs)"
    ctest_log=$dir/ctest-summary.log
    # shellcheck disable=SC2086
    if ! (cd "$dir" && ctest --output-on-failure -j "$ctest_jobs" ${RILL_CTEST_ARGS:--LE stress}) \
        | tee "$ctest_log"; then
      status=FAIL step=tests
    fi
    tests_line=$(grep -E 'tests passed|No tests were found' "$ctest_log" | tail -n 1 || true)
  fi
  t3=$SECONDS

  line=$(printf '%-8s %s  configure %ss, build %ss, tests %ss' \
         "$cxx" "$status${step:+ ($step)}" $((t1 - t0)) $((t2 - t1)) $((t3 - t2)))
  [[ -n $tests_line ]] && line+="  [$tests_line]"
  summary+=("$line")
  [[ $status == PASS ]] || failed=1
done

echo
echo "==> rill test summary"
for line in "${summary[@]}"; do
  echo "  $line"
done
exit "$failed"
