#!/bin/sh
# examples/demo.sh — the README's first command (via `make demo`). In a
# temporary directory: import the reference workflows into a meta-store,
# export WF-FIN-001, then run it on a few thousand generated invoices
# (examples/demo.lua: automated steps in the engine, the two human roles
# played by the script), print the summary and draw the workflow with token
# counts on each interaction. DEMO_INVOICES sets how many (default 3000).
set -e
BUILD=${BUILD:-build}
CHM="$(pwd)/$BUILD/chameleon"
OUT=${DEMO_OUT:-$(mktemp -d /tmp/chameleon-demo.XXXXXX)}
say() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }

say "the reference workflows, validated and stored in a meta-store ($OUT/library.db)"
"$CHM" init --meta "$OUT/library.db" >/dev/null
"$CHM" import --meta "$OUT/library.db" workflows/*.lua
"$CHM" export --meta "$OUT/library.db" WF-FIN-001 --json -o "$OUT/wf_fin_001.json"
echo "canonical JSON of WF-FIN-001: $OUT/wf_fin_001.json"

say "WF-FIN-001 (seed 004) on ${DEMO_INVOICES:-3000} generated invoices"
DEMO_TTY=0
[ -t 1 ] && DEMO_TTY=1
DEMO_TTY=$DEMO_TTY LUA_CPATH="./$BUILD/lua/?.so;;" lua5.4 examples/demo.lua "$OUT" "${DEMO_INVOICES:-3000}"

if command -v dot >/dev/null 2>&1; then
  dot -Tsvg "$OUT/wf_fin_001.dot" -o "$OUT/wf_fin_001.svg"
  echo "rendered:  $OUT/wf_fin_001.svg"
fi
say "explore it: $CHM repl $OUT/fin.db   (try .help, queues(), .roles)"
