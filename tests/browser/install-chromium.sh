#!/usr/bin/env bash
# `make setup`: Debian's Chromium for the browser test, and a CJK font so
# its screenshots show Chinese, installed where missing. Tests run as root;
# anyone else gets a warning, not a failure, since only the browser test
# needs them (it says so itself when they are absent).
set -u
packages=()
command -v chromium >/dev/null || packages+=(chromium)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || packages+=(fonts-wqy-zenhei)
[ ${#packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "make setup: warning: ${packages[*]} missing (needed by the browser test); install them as root" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists: update once and retry.
apt-get install -y -q "${packages[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${packages[@]}" >/dev/null; } ||
    { echo "make setup: installing ${packages[*]} failed" >&2; exit 1; }
echo "make setup: installed ${packages[*]}"
