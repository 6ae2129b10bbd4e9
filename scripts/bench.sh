#!/usr/bin/env bash
# Measures what the README's Performance section reports (not part of the test suite):
#   1. criterion: verify + parse per callback source, sign-in trust scoring
#   2. cold start and peak RSS of the release functions beside a Python boto3 handler
#   3. on the local stack (test profile: the figures are request counts and emulator-bound times,
#      the time waited on AWS is printed beside each): AWS requests per callback and per event,
#      status-normalize throughput for 10 000 events, the refund sweep over 10 000 orders with
#      300 due, the emergency release of 327 orders, the monthly health report.
#   4. order-sync on the local stack against the fake gateway: a PDD shop with 10 000 orders
#      changed in a day caught up from a cold checkpoint (list calls and AWS requests per changed
#      order, wall time), and a quiet 5-minute window.
#   5. soak (issue 12's proof at full size): the in-process sales day, 10 000 callbacks x 3
#      under injected faults, 50 concurrent, and the day on the local stack through the real SDK,
#      1 000 x 3, 20 concurrent; each prints lost / double-applied / events missing / DLQ left,
#      the faults injected and the time. SOAK_SEED picks the day (default 12).
#   scripts/bench.sh [criterion|coldstart|stack|sync|soak]...   (default: the first four)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$ROOT"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(criterion coldstart stack sync)
ensure_venv

for part in "${parts[@]}"; do
  case "$part" in
    criterion)
      echo "== criterion"
      cargo bench --locked -p domain --features testing --bench verify -- --noplot 2>&1 | grep -E "^[a-z0-9_/ -]+time:|^\S.*\s+time:" || true
      cargo bench --locked -p domain --bench trust -- --noplot 2>&1 | grep -E "time:" || true
      ;;
    coldstart)
      echo "== cold start (release binaries, mock Lambda Runtime API)"
      cargo build --release --locked -p webhook-verify -p status-normalize -p refund-dual-check -p signin-trust-check -p health-report -p notify -p order-sync
      cargo build --release --locked -p tests --bin coldstart
      start_moto
      create_stack
      "$ROOT/target/release/coldstart" --runs 10
      ;;
    stack)
      echo "== the local stack (ORDERHUB_BENCH=1)"
      start_moto
      create_stack
      ORDERHUB_BENCH=1 cargo test --locked -p tests --test aws -- --nocapture --test-threads 1 \
        normalize::throughput normalize::aws_requests webhook::every_source refund::reads_scale refund::the_emergency health:: 2>&1 \
        | grep -E "throughput:|per applied event|per duplicate|AWS requests per accepted|sweep over|ops release|monthly report|range .* over|full layout|test result" || true
      ;;
    sync)
      echo "== order-sync on the local stack (ORDERHUB_BENCH=1: 10 000 orders)"
      start_moto
      create_stack
      ORDERHUB_BENCH=1 cargo test --locked -p tests --test aws -- --nocapture --test-threads 1 \
        sync::a_cold_shop sync::pdd_and_taobao 2>&1 \
        | grep -E "cold catch-up|quiet 5-minute|test result" || true
      ;;
    soak)
      echo "== soak: in process, ${SOAK_CALLBACKS:=10000} callbacks x 3"
      SOAK_CALLBACKS=$SOAK_CALLBACKS cargo test --locked -p tests --test soak -- --nocapture 2>&1 \
        | grep -E "^soak|^  \[|test result" || true
      echo "== soak: on the local stack, ${SOAK_AWS_CALLBACKS:=1000} callbacks x 3"
      start_moto
      create_stack
      SOAK_AWS_CALLBACKS=$SOAK_AWS_CALLBACKS cargo test --locked -p tests --test aws_soak -- --nocapture 2>&1 \
        | grep -E "^soak|^  \[|test result" || true
      ;;
    *) echo "unknown part $part (criterion, coldstart, stack, sync, soak)" >&2; exit 2 ;;
  esac
done
