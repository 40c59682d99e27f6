#!/usr/bin/env bash
# Installs every Debian package that building, running and testing Lockstep needs.
# Idempotent and quiet when everything is already present; downloads nothing but Debian packages.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build make pkg-config ccache clang clang-format-14 libclang-rt-14-dev git
  # embedded store and the SQLite connector; the sqlite3 CLI drives the integration tests
  libsqlite3-dev sqlite3
  # PostgreSQL connector and hub store; the tests start a real server (initdb, pg_ctl and pgbench
  # come with postgresql-15, psql with postgresql-client-15)
  libpq-dev postgresql-15 postgresql-client-15
  # networking, TLS, wire format, compression, hashing, encryption at rest
  libboost1.81-dev libssl-dev libprotobuf-dev protobuf-compiler libzstd-dev libxxhash-dev
  libsodium-dev
  # the openssl CLI checks certificates from outside in the security tests
  openssl
  # configuration, command line, logging, JSON
  libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  # tests, property tests, benchmarks
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has no package lists yet; refresh them only when an install is needed.
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
