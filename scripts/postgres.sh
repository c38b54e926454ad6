#!/usr/bin/env bash
# PostgreSQL for the tests (fleet mode's and the ledger's PostgreSQL cases), idempotently:
# prints a FLEET_TEST_DATABASE_URL on standard output, or nothing (saying why on standard
# error) when no server can be had; those tests are then skipped, the rest still run.
# scripts/test.sh runs it when the caller did not set FLEET_TEST_DATABASE_URL; the demo
# never does (one machine needs no PostgreSQL).
#
# 1. Not installed (no pg_lsclusters): install Debian's `postgresql` with apt, as
#    scripts/setup.sh installs its packages (sudo when not root). The package creates and
#    starts a cluster `main` (where systemd runs; below we start it where it does not).
# 2. Installed, no cluster: create `main` for the newest installed version.
# 3. Cluster down (a container without systemd, a stopped service): start it with
#    pg_ctlcluster (--skip-systemctl-redirect: no systemd in containers).
# 4. A role and a database of the tests' own, `fleet_test`, the role owning the database
#    and nothing else (no superuser, no CREATEDB). It logs in with a password over
#    127.0.0.1, which Debian's default pg_hba.conf already allows (scram-sha-256): no
#    authentication rule is added or loosened. The password is random, made once, and
#    kept in .venv/ (mode 600), so later runs reuse the role; a lost file just resets it.
#    Each test makes its own schema in that database and drops it (tests/conftest.py).
# The cluster: $FLEET_TEST_PG_CLUSTER (VERSION/NAME, e.g. 15/main) when set, else one that
# runs, else `main`, else the first pg_lsclusters lists.
#
# Exercised here: a cluster that is running (the machine's own), and one installed but
# stopped (a scratch cluster on another port). Not exercised here (machines of this
# project have PostgreSQL already): the apt install on a fresh machine, and creating
# `main` when no cluster exists; both are the plain Debian commands below.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "postgres: $*" >&2; }
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
# From / : the postgres user cannot enter the project's folder (psql would say so).
as_postgres() (
  cd /
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
)
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
  say "not root and no sudo: cannot set up PostgreSQL; its tests are skipped"
  exit 0
fi

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    say "PostgreSQL is not installed and this is not Debian/Ubuntu (no apt-get): install"
    say "it and set FLEET_TEST_DATABASE_URL to run its tests; they are skipped now"
    exit 0
  fi
  say "installing Debian's postgresql"
  if ! { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null; }; then
    say "apt could not install postgresql; its tests are skipped"
    exit 0
  fi
fi

# A running cluster first, else one named main, else any: never start a second cluster
# beside one that runs.
cluster="${FLEET_TEST_PG_CLUSTER:-}"
if [ -z "$cluster" ]; then
  cluster=$(pg_lsclusters -h | awk '$4 == "online" { print $1 "/" $2; exit }')
fi
if [ -z "$cluster" ]; then
  cluster=$(pg_lsclusters -h | sort -V -r | awk '$2 == "main" { print $1 "/" $2; exit }')
fi
if [ -z "$cluster" ]; then
  cluster=$(pg_lsclusters -h | awk 'NR == 1 { print $1 "/" $2 }')
fi
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  say "no cluster yet: creating $version/main"
  $sudo pg_createcluster "$version" main >/dev/null
  cluster="$version/main"
fi
version="${cluster%/*}"
name="${cluster#*/}"
status=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n { print $4 }')
port=$(pg_lsclusters -h | awk -v v="$version" -v n="$name" '$1 == v && $2 == n { print $3 }')
if [ -z "$port" ]; then
  say "no cluster $cluster (pg_lsclusters lists $(pg_lsclusters -h | awk '{ print $1 "/" $2 }' | xargs))"
  exit 0
fi
if [ "$status" != "online" ]; then
  say "starting cluster $cluster (port $port)"
  if ! $sudo pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start; then
    say "cluster $cluster did not start (see /var/log/postgresql/); its tests are skipped"
    exit 0
  fi
fi

# The tests' role and database, each created only when missing.
secret_file=".venv/.fleet-test-db-$version-$name"
psql_admin() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres "$@"; }
password=""
[ -f "$secret_file" ] && password=$(cat "$secret_file")
if [ -z "$password" ] ||
  ! PGPASSWORD="$password" PGCONNECT_TIMEOUT=5 psql -X -Atq -h 127.0.0.1 -p "$port" \
    -U fleet_test -d fleet_test -c 'select 1' >/dev/null 2>&1; then
  password=$(od -An -tx1 -N18 /dev/urandom | tr -d ' \n')
  mkdir -p .venv
  (umask 077 && printf '%s' "$password" >"$secret_file")
  if ! psql_admin -At -c "select 1 from pg_roles where rolname = 'fleet_test'" | grep -q 1; then
    psql_admin -c "create role fleet_test login"
  fi
  # the password travels on standard input, never on a command line others can read
  printf "alter role fleet_test password '%s';\n" "$password" | psql_admin
  if ! psql_admin -At -c "select 1 from pg_database where datname = 'fleet_test'" | grep -q 1; then
    psql_admin -c "create database fleet_test owner fleet_test"
  fi
fi
say "tests on PostgreSQL: postgresql://fleet_test@127.0.0.1:$port/fleet_test (cluster $cluster)"
echo "postgresql+psycopg://fleet_test:$password@127.0.0.1:$port/fleet_test"
