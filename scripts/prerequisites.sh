#!/usr/bin/env bash
# Makes sure what the test suite needs is on this machine, so that `npm install && npm test`
# passes on a fresh one. Run by `npm test` (as "pretest") and by .ci/run: the one install path.
#
#   - slapd and ldap-utils (the throwaway directory of the tests) and chromium (the browser
#     test drives Debian's /usr/bin/chromium; a browser is never downloaded): installed with
#     apt-get when root or with passwordless sudo, else the exact command is printed.
#   - PostgreSQL and Redis reachable: the local ones are started when root (or sudo) can,
#     else how to start them is printed.
#   - the Temporal CLI: found, or built with Go once per machine (scripts/temporal-cli.ts).
#
# Quick when everything is there (about a second): it only looks.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[prerequisites] %s\n' "$*"; }
problems=()

# Root, or sudo that will not stop to ask for a password, may install and start things.
if [ "$(id -u)" = 0 ]; then
  SUDO=""; can_admin=true
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"; can_admin=true
else
  SUDO=""; can_admin=false
fi
# What to tell a person to type: with sudo unless they are root.
as_admin() { if [ "$(id -u)" = 0 ]; then printf '%s' "$*"; else printf 'sudo %s' "$*"; fi; }

wait_for() { # wait_for <what> <command...>: up to 30 s
  local what="$1"; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  say "$what did not come up within 30 s"
  return 1
}

# --- Debian packages ------------------------------------------------------------------------
missing=()
if [ ! -x /usr/sbin/slapd ]; then missing+=(slapd); fi
if ! command -v ldapsearch >/dev/null; then missing+=(ldap-utils); fi
if [ ! -x /usr/bin/chromium ]; then missing+=(chromium); fi

if [ ${#missing[@]} -gt 0 ]; then
  # With no_configuration the slapd package creates no directory, so its init script finds no
  # config and starts no daemon on :389; the tests run their own slapd on a spare port.
  preseed='echo "slapd slapd/no_configuration boolean true" | debconf-set-selections'
  install="apt-get install -y -qq --no-install-recommends ${missing[*]}"
  if $can_admin && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} with apt-get"
    started=$SECONDS
    # dpkg talks a lot even with -qq: its output is kept aside and shown only on failure.
    apt_log="$(mktemp)"
    if ! {
      { [[ " ${missing[*]} " != *" slapd "* ]] || echo "slapd slapd/no_configuration boolean true" | $SUDO debconf-set-selections; } &&
        $SUDO apt-get update -qq &&
        $SUDO env DEBIAN_FRONTEND=noninteractive $install
    } >"$apt_log" 2>&1; then
      tail -n 30 "$apt_log"
      rm -f "$apt_log"
      say "installing ${missing[*]} failed (output above)"
      exit 1
    fi
    rm -f "$apt_log"
    # Belt and braces: if a system slapd started anyway, stop it by its own pid file.
    for pidfile in /run/slapd/slapd.pid /var/run/slapd/slapd.pid; do
      if [ -s "$pidfile" ]; then $SUDO kill "$(cat "$pidfile")" 2>/dev/null || true; fi
    done
    say "installed ${missing[*]} in $((SECONDS - started)) s"
  elif command -v apt-get >/dev/null; then
    problems+=("missing ${missing[*]}; install with:
    $(as_admin sh -c "'$preseed && apt-get update -qq && DEBIAN_FRONTEND=noninteractive $install'")")
  else
    problems+=("missing ${missing[*]}: the tests expect Debian's packages (/usr/sbin/slapd with its modules in /usr/lib/ldap and schemas in /etc/ldap/schema, ldapsearch, /usr/bin/chromium)")
  fi
fi

# --- PostgreSQL -----------------------------------------------------------------------------
# The same defaults as the tests (test/global-setup.ts). Only the local servers are started,
# and only when no URL points elsewhere.
pg_ready() { pg_isready -q -d "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"; }
if ! command -v pg_isready >/dev/null; then
  problems+=("PostgreSQL client tools not found; install with: $(as_admin apt-get install -y postgresql)")
elif ! pg_ready; then
  if [ -z "${DATABASE_URL:-}" ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    start_pg="pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main start"
    if $can_admin; then
      say "PostgreSQL is not running on 127.0.0.1:5432; starting it: $start_pg"
      $SUDO $start_pg
      wait_for "PostgreSQL" pg_ready
    else
      problems+=("PostgreSQL is not running on 127.0.0.1:5432; start it with: $(as_admin "$start_pg")")
    fi
  elif [ -n "${DATABASE_URL:-}" ]; then
    problems+=("PostgreSQL at DATABASE_URL is not reachable; start it, or unset DATABASE_URL to use 127.0.0.1:5432")
  else
    problems+=("PostgreSQL is not running on 127.0.0.1:5432; install and start it: $(as_admin apt-get install -y postgresql)")
  fi
fi

# --- Redis ----------------------------------------------------------------------------------
redis_ready() { redis-cli --no-auth-warning -u "${REDIS_URL:-redis://127.0.0.1:6379}" ping 2>/dev/null | grep -q PONG; }
if ! command -v redis-cli >/dev/null; then
  problems+=("Redis not found; install with: $(as_admin apt-get install -y redis-server)")
elif ! redis_ready; then
  # No snapshot and no append-only file: the tests' keys are throwaway.
  start_redis='redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log'
  if [ -n "${REDIS_URL:-}" ]; then
    problems+=("Redis at REDIS_URL is not reachable; start it, or unset REDIS_URL to use 127.0.0.1:6379")
  elif $can_admin && command -v redis-server >/dev/null; then
    say "Redis is not running on 127.0.0.1:6379; starting it: $start_redis"
    $SUDO mkdir -p /var/lib/redis /var/log/redis
    $SUDO redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log
    wait_for "Redis" redis_ready
  else
    problems+=("Redis is not running on 127.0.0.1:6379; start it with:
    $(as_admin mkdir -p /var/lib/redis /var/log/redis) && $(as_admin "$start_redis")")
  fi
fi

if [ ${#problems[@]} -gt 0 ]; then
  for problem in "${problems[@]}"; do say "$problem"; done
  say "the tests cannot run until these are fixed"
  exit 1
fi

# --- Temporal CLI ---------------------------------------------------------------------------
# The tests' global setup finds the CLI the same way (TEMPORAL_CLI_PATH, PATH, then the cache);
# this step builds it ahead, with progress, so the first test run does not sit silent for
# minutes. Without Go the tests fall back to the download built into @temporalio/testing.
if [ ! -x node_modules/.bin/tsx ]; then
  say "node_modules is missing; run npm install (or npm ci) first"
  exit 1
fi
if temporal_cli="$(node_modules/.bin/tsx scripts/temporal-cli.ts)"; then
  say "ready: slapd, ldap-utils, chromium, PostgreSQL, Redis, Temporal CLI ($temporal_cli)"
else
  say "ready: slapd, ldap-utils, chromium, PostgreSQL, Redis; no local Temporal CLI, so the tests will use the download built into @temporalio/testing"
fi
