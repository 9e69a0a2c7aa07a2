#!/bin/sh
# examples/demo.sh — the README's first command (via `make demo`): in a
# temporary directory, create a meta-store, import the reference
# workflows, show and export WF-FIN-001 (JSON and a Graphviz picture),
# instantiate it, delete the meta-store and prove the instance still
# opens, lists its graph and re-validates on its own (the air gap).
set -e
BUILD=${BUILD:-build}
CHM="$(pwd)/$BUILD/chameleon"
ROOT=$(pwd)
OUT=${DEMO_OUT:-$(mktemp -d /tmp/chameleon-demo.XXXXXX)}
cd "$OUT"
say() { if [ -t 1 ]; then printf '\n\033[1m== %s\033[0m\n' "$*"; else printf '\n== %s\n' "$*"; fi; }

say "meta-store in $OUT"
"$CHM" init --meta meta.db
say "import the reference workflows (children sort before their parents: wf_child_*)"
for f in "$ROOT"/workflows/*.lua; do
  "$CHM" import --meta meta.db "$f"
done
say "list"
"$CHM" list --meta meta.db
say "show WF-FIN-001"
"$CHM" show --meta meta.db WF-FIN-001
say "export WF-FIN-001 as JSON and DOT"
"$CHM" export --meta meta.db WF-FIN-001 --json -o wf_fin_001.json
"$CHM" export --meta meta.db WF-FIN-001 --dot -o wf_fin_001.dot
if command -v dot >/dev/null 2>&1; then
  dot -Tsvg wf_fin_001.dot -o wf_fin_001.svg && echo "picture: $OUT/wf_fin_001.svg"
fi
say "instantiate WF-FIN-001 into its own store"
"$CHM" instantiate --meta meta.db WF-FIN-001 --out fin.instance.db --name demo-fin
say "air gap: delete the meta-store, the instance still stands alone"
rm -f meta.db meta.db-wal meta.db-shm
"$CHM" describe fin.instance.db
"$CHM" check fin.instance.db
say "done: files are in $OUT"
