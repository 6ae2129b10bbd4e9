#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned tools, checks format, lints
# (clippy, cfn-lint), starts moto on loopback, creates the stack from infra/template.yaml,
# runs every unit and integration test, replays and briefly runs the fuzz targets, and stops
# everything it started. The report page's browser test needs Debian's chromium (installed here
# when missing; the test is skipped with a notice only when it cannot be).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

# A clean checkout gains nothing from incremental state; it only costs disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
echo "== disk before: $(df -h --output=avail . | tail -1 | tr -d ' ') free"

ensure_venv
echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cfn-lint infra/template.yaml"
cfn-lint infra/template.yaml

ensure_chromium
start_moto
create_stack
echo "== cargo build (function binaries for the integration tests)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked
# Every parser of outside input: replay the committed corpora, then fuzz each target briefly
# (skipped, with a notice, where no nightly toolchain is installed).
FUZZ_SECONDS=${FUZZ_SECONDS:-10} scripts/fuzz.sh
echo "== disk after: $(df -h --output=avail . | tail -1 | tr -d ' ') free, target $(du -sh target 2>/dev/null | cut -f1)"
echo "== all tests passed"
