# Shared by the scripts: the pinned Python venv, and moto's server on loopback.
# Source it; it changes nothing until a function is called.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STACK_DIR="$ROOT/.stack"

# Creates (or refreshes) .venv with the pinned tools: moto[server], cargo-lambda, cfn-lint,
# aws-sam-translator. Re-installs only when scripts/requirements.txt changed.
ensure_venv() {
  local want have
  want=$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)
  have=$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)
  if [ ! -x "$VENV/bin/python" ] || [ "$want" != "$have" ]; then
    echo "== setting up $VENV (pinned: scripts/requirements.txt)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
    echo "$want" > "$VENV/.requirements.sha256"
  fi
  export PATH="$VENV/bin:$PATH"
}

# Debian's headless Chromium and a font with Chinese glyphs, for the report page's browser test
# (tests/aws/browser.rs). Installed with apt-get when missing (as root, or with sudo without a
# password); when that is impossible the test is skipped and says why.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh 2>/dev/null)" ]; then
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      echo "== browser test: will be skipped (chromium is missing and installing it needs root)"
      return 0
    fi
  fi
  echo "== installing chromium and fonts-wqy-zenhei (Debian packages) for the browser test"
  if ! { "${sudo[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
      --no-install-recommends chromium fonts-wqy-zenhei >/dev/null; }; then
    echo "== browser test: will be skipped (apt-get could not install chromium)"
  fi
}

# A free TCP port on loopback (or $1 if given).
free_port() {
  if [ -n "${1:-}" ]; then echo "$1"; return; fi
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Runs "$@" until it succeeds or $1 seconds pass.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then return 1; fi
    sleep 0.1
  done
}

STARTED_PIDS=()
stop_started() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${STARTED_PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap stop_started EXIT

# Starts moto's server on loopback (port $MOTO_PORT, or a free one) and points the AWS SDKs
# at it with dummy credentials. Stopped when the calling script exits.
start_moto() {
  mkdir -p "$STACK_DIR"
  local port
  port=$(free_port "${MOTO_PORT:-}")
  # moto's server with DynamoDB's transaction isolation (see scripts/moto_server.py).
  "$VENV/bin/python" "$ROOT/scripts/moto_server.py" -H 127.0.0.1 -p "$port" > "$STACK_DIR/moto.log" 2>&1 &
  STARTED_PIDS+=($!)
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
  export AWS_REGION="${AWS_REGION:-cn-north-1}" AWS_DEFAULT_REGION="${AWS_REGION:-cn-north-1}"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_EC2_METADATA_DISABLED=true
  if ! wait_for 30 "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$AWS_ENDPOINT_URL/moto-api/data.json', timeout=1)"; then
    echo "moto did not start; see $STACK_DIR/moto.log" >&2
    return 1
  fi
  echo "== moto on $AWS_ENDPOINT_URL"
}

# Creates the resources of infra/template.yaml on the endpoint and exports the environment
# the template gives the functions (table names, queue URLs, bus, stage).
create_stack() {
  "$VENV/bin/python" "$ROOT/scripts/stack.py" --endpoint "$AWS_ENDPOINT_URL" --region "$AWS_REGION" \
    --stage "${ORDERHUB_STAGE:-local}" --env-out "$STACK_DIR/env"
  set -a
  # shellcheck disable=SC1091
  . "$STACK_DIR/env"
  set +a
}
