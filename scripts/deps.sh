#!/bin/sh
# scripts/deps.sh — installs what Chameleon needs to build, test and run
# its demo on Debian 12, from Debian packages only. Idempotent; needs root
# (or sudo). lua5.4 is on the same line as lua-busted so busted does not
# drag in lua5.2 as its only interpreter.
set -e
PKGS="make gcc libc6-dev pkg-config lua5.4 liblua5.4-dev libsqlite3-dev sqlite3 lua-cjson \
uuid-dev zlib1g-dev lua-busted lua-check libssl-dev libreadline-dev graphviz valgrind"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q $missing
