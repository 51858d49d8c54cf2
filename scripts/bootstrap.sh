#!/usr/bin/env bash
# Installs and starts what the platform needs on one machine, then the Python environment.
# Idempotent and bounded: safe to run before every `make up` / `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
TOOLS=.local/tools
log() { printf 'bootstrap: %s\n' "$*"; }

wait_for() {  # wait_for <seconds> <description> <command...>
  local seconds=$1 what=$2; shift 2
  for _ in $(seq 1 $((seconds * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  log "$what not ready after ${seconds}s"; return 1
}

# --- Debian packages (only when missing, and only as root) -----------------------------------
need=()
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v rabbitmq-server >/dev/null || need+=(rabbitmq-server)
python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
command -v prometheus >/dev/null || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    log "missing ${need[*]}: install them (apt-get install ${need[*]}) or run as root"; exit 1
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
  if [[ " ${need[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null; then
    # The package starts a system-wide Prometheus on :9090; `make up` runs its own there.
    timeout 30 systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true
  fi
fi

# --- Infrastructure: start what is not running ---------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start
  wait_for 30 PostgreSQL pg_isready -h 127.0.0.1 -p 5432
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for 15 Redis redis-cli -h 127.0.0.1 -p 6379 ping
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
  log "starting RabbitMQ"
  rabbitmq-server -detached
  wait_for 60 RabbitMQ bash -c '(exec 3<>/dev/tcp/127.0.0.1/5672)'
fi

# The test suite's and the benchmarks' own RabbitMQ vhosts, so their workers never consume the
# local stack's events.
if command -v rabbitmqctl >/dev/null && [ "$(id -u)" -eq 0 ]; then
  vhosts=$(rabbitmqctl -q list_vhosts 2>/dev/null || true)
  for vhost in payplane_test payplane_bench; do
    if ! grep -qx "$vhost" <<<"$vhosts"; then
      log "creating RabbitMQ vhost $vhost"
      rabbitmqctl -q add_vhost "$vhost"
      rabbitmqctl -q set_permissions -p "$vhost" guest '.*' '.*' '.*'
    fi
  done
fi

# The platform's database role (password auth works under trust and scram alike).
if ! PGPASSWORD=payplane psql -h 127.0.0.1 -U payplane -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
  log "creating PostgreSQL role payplane"
  sql="DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='payplane') THEN
       CREATE ROLE payplane LOGIN CREATEDB PASSWORD 'payplane'; END IF; END\$\$;"
  if [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- psql -q -d postgres -c "$sql"
  else
    psql -h 127.0.0.1 -U postgres -d postgres -q -c "$sql"
  fi
fi

# --- Python: uv (pinned) in a tools venv, then the locked workspace ------------------------
if [ ! -x "$TOOLS/bin/uv" ] || [ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  log "installing uv $UV_VERSION"
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
# Bytecode is compiled at install time, and our own sources right after: where the environment
# sets PYTHONDONTWRITEBYTECODE (CI does), every process start would otherwise compile all its
# imports from source, and `make up` starts eleven at once on two cores. Both steps skip what
# is already compiled, and Python ignores a .pyc whose source has changed since.
UV_PYTHON_DOWNLOADS=never "$TOOLS/bin/uv" sync --frozen --all-packages --python python3 -q \
  --compile-bytecode
.venv/bin/python -m compileall -q -j 0 libs services tools operator benchmarks >/dev/null
