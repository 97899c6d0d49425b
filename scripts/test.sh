#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs the whole test suite. Extra arguments go to pytest.
#
# The Redis cache tests need a redis-server, the inspector's browser tests Chromium and its
# driver: when missing and we are root with apt-get, Debian's packages are installed. A
# redis-server is started on a free loopback port for the run (no persistence) and its URL
# exported as RAGZIP_TEST_REDIS_URL. Without them, those tests skip.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

# apt_install WHAT PROBE PACKAGE...: installs the packages when command PROBE is missing (as root).
apt_install() {
  local what=$1 probe=$2
  shift 2
  if ! command -v "$probe" >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] \
    && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "$@" >/dev/null 2>&1 \
      || (apt-get update -qq >/dev/null && apt-get install -y -qq "$@" >/dev/null) \
      || echo "scripts/test.sh: could not install $*; the $what tests will skip"
  fi
}
apt_install Redis redis-server redis-server
apt_install browser chromedriver chromium chromium-driver
REDIS_PID=""
stop_redis() {
  if [ -n "$REDIS_PID" ]; then
    kill "$REDIS_PID" 2>/dev/null
    wait "$REDIS_PID" 2>/dev/null
  fi
}
trap stop_redis EXIT
if [ -z "${RAGZIP_TEST_REDIS_URL:-}" ] && command -v redis-server >/dev/null 2>&1; then
  PORT=$(.venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >/dev/null 2>&1 &
  REDIS_PID=$!
  for _ in $(seq 100); do
    if [ "$(redis-cli -p "$PORT" ping 2>/dev/null)" = "PONG" ]; then
      export RAGZIP_TEST_REDIS_URL="redis://127.0.0.1:$PORT/0"
      echo "scripts/test.sh: redis-server on $RAGZIP_TEST_REDIS_URL"
      break
    fi
    sleep 0.1
  done
  [ -n "${RAGZIP_TEST_REDIS_URL:-}" ] || echo "scripts/test.sh: redis-server did not start"
fi

.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests (exit 5)"
  exit 0
fi
exit "$rc"
