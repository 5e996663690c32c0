#!/usr/bin/env bash
# Installs Herald's build and test dependencies from Debian 12 packages, only when some are missing.
set -euo pipefail
packages=(
  build-essential cmake pkg-config
  libuv1-dev libhiredis-dev nlohmann-json3-dev libssl-dev prometheus-cpp-dev googletest libgtest-dev
  python3 python3-websockets python3-jwt python3-cryptography openssl curl
  redis-server haproxy docker-compose
  prometheus python3-yaml chromium fonts-liberation nodejs
  clang-14 libclang-rt-14-dev
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
