#!/usr/bin/env bash
# Measures each release function's cold init and peak RSS beside a Python boto3 handler doing
# the same init, against the local stack. Prints a Markdown table (README, Performance).
#   scripts/coldstart.sh [--runs N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_venv
echo "== cargo build --release (functions)"
cargo build --release --locked -p webhook-verify -p status-normalize -p refund-dual-check -p signin-trust-check -p health-report -p notify
cargo build --release --locked -p tests --bin coldstart
start_moto
create_stack
"$ROOT/target/release/coldstart" "$@"
