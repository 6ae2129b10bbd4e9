#!/usr/bin/env bash
# The demo, on a fresh machine: installs the pinned tools, starts moto on loopback, creates the
# stack from infra/template.yaml, serves the functions with `cargo lambda watch`, replays a
# day of callbacks through them and prints what a seller would look at. Everything it started
# stops when it ends.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_venv
echo "== cargo build (the functions, so cargo lambda watch starts them at once)"
cargo build --workspace --bins --locked
start_moto
create_stack
cargo run -q --locked -p tests --bin demo
