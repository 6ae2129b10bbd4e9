#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned tools, checks format, lints
# (clippy, cfn-lint), starts moto on loopback, creates the stack from infra/template.yaml,
# runs every unit and integration test, and stops everything it started.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cfn-lint infra/template.yaml"
cfn-lint infra/template.yaml

start_moto
create_stack
echo "== cargo build (function binaries for the integration tests)"
cargo build --workspace --bins --locked
echo "== cargo test"
cargo test --workspace --locked
echo "== all tests passed"
