#!/usr/bin/env bash
# Fuzzes every parser of outside input (the cargo-fuzz targets in fuzz/, libFuzzer, nightly only).
#   scripts/fuzz.sh                   replay each target's seed corpus (fuzz/corpus/<target>)
#   FUZZ_SECONDS=60 scripts/fuzz.sh   replay, then fuzz each target for 60 s
#   FUZZ_RUNS=10000000 scripts/fuzz.sh replay, then fuzz each target for that many executions
#   FUZZ_JOBS=2                       fuzz that many targets at once (default 1)
#   FUZZ_TARGETS="open_app parse_app" limit to these targets
# Skips, with exit 0, when no nightly toolchain is installed. Installs the pinned cargo-fuzz when
# it is missing. New inputs the fuzzer finds go to fuzz/target/corpus/<target> (not committed);
# a crash is written to fuzz/artifacts/<target>/ and fails the script: replay it with
#   cargo +nightly fuzz run --sanitizer none <target> fuzz/artifacts/<target>/<crash-file>
# and keep it as a regression input: fuzz/corpus/<target>/regress-<what>.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# The newest release that builds with the installed nightly (1.97, 2026-05).
CARGO_FUZZ_VERSION=0.13.1
# No sanitizer: every crate of ours forbids unsafe code, so AddressSanitizer would find nothing
# the panics and overflow checks do not (debug assertions stay on), and would slow both the build
# and every run. 16 codegen units: a cold build of the 14 targets is markedly faster on 2 cores.
BUILD_FLAGS=(--sanitizer none --codegen-units 16)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-0}
RUNS_PER_TARGET=${FUZZ_RUNS:-0}
JOBS=${FUZZ_JOBS:-1}

if ! command -v rustup >/dev/null 2>&1 || ! rustup toolchain list | grep -q '^nightly'; then
  echo "== fuzz: skipped, no nightly toolchain (cargo-fuzz needs one: rustup toolchain install nightly)"
  exit 0
fi
if ! cargo +nightly fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
started=$SECONDS
echo "== cargo fuzz build (all targets)"
cargo +nightly fuzz build "${BUILD_FLAGS[@]}"
echo "== built in $((SECONDS - started)) s"

failed=()
# Runs one target (its output only when it fails); a failure is counted, not fatal, so every
# target gets its turn.
run() {
  local target=$1; shift
  local log
  log=$(mktemp)
  if cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" "$@" >"$log" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1 | sed "s/^/   $target: /" || true
  else
    cat "$log"
    echo "== fuzz: $target FAILED (the input is under fuzz/artifacts/$target/)" >&2
    failed+=("$target")
  fi
  rm -f "$log"
}

phase=$SECONDS
echo "== replay: every target's corpus"
for target in $targets; do
  run "$target" "fuzz/corpus/$target" -- -runs=0
done
echo "== replayed in $((SECONDS - phase)) s"

if [ "$SECONDS_PER_TARGET" -gt 0 ] || [ "$RUNS_PER_TARGET" -gt 0 ]; then
  phase=$SECONDS
  if [ "$RUNS_PER_TARGET" -gt 0 ]; then
    limit=(-runs="$RUNS_PER_TARGET")
    echo "== fuzz: ${RUNS_PER_TARGET} executions per target, ${JOBS} at a time"
  else
    limit=(-max_total_time="$SECONDS_PER_TARGET")
    echo "== fuzz: ${SECONDS_PER_TARGET} s per target, ${JOBS} at a time"
  fi
  running=0
  for target in $targets; do
    # New inputs go to the first directory; the committed seeds are only read.
    mkdir -p "fuzz/target/corpus/$target"
    if [ "$JOBS" -gt 1 ]; then
      (run "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- "${limit[@]}" -dict=fuzz/orderhub.dict
       [ ${#failed[@]} -eq 0 ]) &
      running=$((running + 1))
      if [ "$running" -ge "$JOBS" ]; then
        wait -n || failed+=("(a parallel target)")
        running=$((running - 1))
      fi
    else
      run "$target" "fuzz/target/corpus/$target" "fuzz/corpus/$target" -- "${limit[@]}" -dict=fuzz/orderhub.dict
    fi
  done
  while [ "$running" -gt 0 ]; do
    wait -n || failed+=("(a parallel target)")
    running=$((running - 1))
  done
  echo "== fuzzed in $((SECONDS - phase)) s"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "== fuzz: FAILED: ${failed[*]} ($((SECONDS - started)) s)" >&2
  exit 1
fi
echo "== fuzz: all targets passed ($((SECONDS - started)) s)"
