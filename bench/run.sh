#!/bin/sh
# bench/run.sh — `make bench`: token moves per second of chm_run on a
# generated workflow against a plain C program doing the same SQLite writes
# with the same durability (the ceiling, bench/ceiling.c), per-move and
# batched commits, interleaved in rounds; checkout latency with 1,000 and
# 100,000 tokens waiting; guardian evaluation time per call; the statements
# one move runs. Prints the figures and the machine, writes them to
# $BUILD/bench/results.md, and into docs/PERFORMANCE.md (between its
# bench:begin / bench:end markers) when BENCH_UPDATE_DOC=1. Never asserts
# speed: it fails only when something does not work.
#
# Knobs (environment): BENCH_K roles in the chain (10), BENCH_TOKENS tokens
# (1000, so K x TOKENS moves per batched run), BENCH_PER_MOVE moves per
# per-move run (3000), BENCH_ROUNDS (5), BENCH_CHECKOUTS timed checkouts
# per queue (500), BENCH_GATE_CALLS (1000000), BENCH_SQL_FILL=1 (write the
# 100,000-token queue with SQL even when chm_genesis would be quick enough),
# TMPDIR (the disk measured).
set -eu

BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
K=${BENCH_K:-10}
T=${BENCH_TOKENS:-1000}
ROUNDS=${BENCH_ROUNDS:-5}
M=${BENCH_CHECKOUTS:-500}
G=${BENCH_GATE_CALLS:-1000000}
BIN=$BUILD/bench/chm_bench
CEIL=$BUILD/bench/ceiling
CLI=$BUILD/chameleon
OUT=$BUILD/bench/results.md
DOC=docs/PERFORMANCE.md

dir=$(mktemp -d "${TMPDIR:-/tmp}/chm_bench.XXXXXX")
trap 'rm -rf "$dir"' EXIT INT TERM
log=$dir/log
: >"$log"

# val KEY FILE -> the value of the last "KEY value" line
val() { awk -v k="$1" '$1 == k { v = $2 } END { print v }' "$2"; }

# median of the numbers on stdin
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# thousands separators: 12345.6 -> 12,346
commas() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); o = ""; while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) } print s o }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

say() { printf '%s\n' "$*"; }

# fresh NAME: a copy of the prepared instance at $dir/NAME.db (no WAL left)
fresh() { rm -f "$dir/$1.db" "$dir/$1.db-wal" "$dir/$1.db-shm"; cp "$dir/base.db" "$dir/$1.db"; }

# ---- the machine ----------------------------------------------------------
date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
uname_a=$(uname -a)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
ncpu=$(nproc 2>/dev/null || echo '?')
mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
virt=$( (lscpu 2>/dev/null | awk -F': *' '/^Hypervisor vendor/ { print $2 }') || true)
fs=$( (findmnt -no SOURCE,FSTYPE,OPTIONS -T "$dir" 2>/dev/null || df -PT "$dir" | awk 'NR == 2 { print $1, $2 }') | tr -s ' ')
dev=$(printf '%s' "$fs" | awk '{ print $1 }' | sed 's|/dev/||')
rot=$(cat "/sys/block/$dev/queue/rotational" 2>/dev/null || echo '?')
versions="SQLite $(pkg-config --modversion sqlite3), Lua $(pkg-config --modversion lua5.4), OpenSSL $(pkg-config --modversion libcrypto), $(${CC:-cc} --version | head -1)"
say "== machine"
say "date:    $date_utc"
say "uname:   $uname_a"
say "cpu:     $cpu, $ncpu CPUs${virt:+, under $virt}; memory $mem"
say "disk:    $dir on $fs (rotational: $rot)"
say "libs:    $versions"

# ---- the workflows --------------------------------------------------------
"$LUA" bench/gen_workflow.lua chain "$K" "$dir/chain.lua"
"$LUA" bench/gen_workflow.lua queue 0 "$dir/queue.lua"
"$LUA" bench/gen_workflow.lua queue 1 "$dir/gated.lua"
"$BIN" prepare "$dir/meta.db" "$dir/chain.lua" BENCH-CHAIN "$dir/base.db" "$T" >"$dir/prep"
"$CLI" import --meta "$dir/meta.db" "$dir/queue.lua" "$dir/gated.lua" >/dev/null
moves_per_run=$((K * T))
say
say "== throughput: BENCH-CHAIN, $K automated BETA roles, $T tokens = $moves_per_run moves per run, $ROUNDS rounds"

# ---- one move, statement by statement ------------------------------------
fresh trace
"$BIN" trace "$dir/trace.db" 2000 >"$dir/trace"
stmts=$(val stmts_per_step "$dir/trace")
say "statements per move (traced): $stmts — $(val select_per_step "$dir/trace") SELECT, $(val insert_per_step "$dir/trace") INSERT, $(val update_per_step "$dir/trace") UPDATE, $(val savepoint_per_step "$dir/trace") SAVEPOINT, $(val release_per_step "$dir/trace") RELEASE, $(val begin_per_step "$dir/trace") BEGIN, $(val commit_per_step "$dir/trace") COMMIT; the ceiling runs 8 (6 writes, 2 reads) plus BEGIN, the log head and COMMIT per transaction"

# ---- the ceiling writes what the engine writes ---------------------------
# A full run of each (100 moves per commit): the same tokens, log events and
# attribute versions, and a hash chain chm_verify accepts.
fresh e
"$BIN" run "$dir/e.db" 100 >/dev/null
fresh c
"$CEIL" "$dir/c.db" 100 >/dev/null
"$BIN" verify "$dir/e.db" >"$dir/ve"
"$BIN" verify "$dir/c.db" >"$dir/vc"
if cmp -s "$dir/ve" "$dir/vc"; then
  say "ceiling check: its store has the engine's rows (tokens, log events, attribute versions) and passes chm_verify"
else
  say "ceiling check FAILED: the stores differ"
  diff "$dir/ve" "$dir/vc" || true
  exit 1
fi

# ---- rounds: engine, ceiling (and the experiment) take turns -------------
# Each round: fresh copies of the instance; chm_bench duel runs the engine,
# the ceiling (a child process) and the engine with PRAGMA
# (a noise check: temp_store=MEMORY is now the engine default) in turns of CHUNK moves, so a slow stretch of the disk
# hits all three alike. Per-move commits: $PM moves each (1 commit per
# move); batched: all $moves_per_run moves (100 per commit).
PM=${BENCH_PER_MOVE:-3000}
[ "$PM" -le "$moves_per_run" ] || PM=$moves_per_run
say "per-move runs: $PM moves each in turns of 100; batched runs: $moves_per_run moves each in turns of 1000"
duel() { # BATCH CHUNK TOTAL TAG
  fresh e; fresh c; fresh x
  "$BIN" duel "$dir/e.db" "$dir/c.db" "$dir/x.db" "$1" "$2" "$3" "$CEIL" >"$dir/r"
  for k in engine_moves_per_s ceiling_moves_per_s experiment_moves_per_s ratio experiment_ratio; do
    say "$4.$k $(val $k "$dir/r")" >>"$log"
  done
}
r=1
while [ "$r" -le "$ROUNDS" ]; do
  duel 1 100 "$PM" m
  duel 100 1000 "$moves_per_run" b
  printf '  round %d/%d: per-move engine %s ceiling %s (%sx), batched engine %s ceiling %s (%sx) moves/s\n' "$r" "$ROUNDS" \
    "$(val m.engine_moves_per_s "$log")" "$(val m.ceiling_moves_per_s "$log")" "$(val m.ratio "$log")" \
    "$(val b.engine_moves_per_s "$log")" "$(val b.ceiling_moves_per_s "$log")" "$(val b.ratio "$log")"
  r=$((r + 1))
done

med() { awk -v k="$1" '$1 == k { print $2 }' "$log" | median; }
two() { awk -v x="$1" 'BEGIN { printf "%.2f", x }'; }
e1=$(med m.engine_moves_per_s); c1=$(med m.ceiling_moves_per_s); x1=$(med m.experiment_moves_per_s)
e100=$(med b.engine_moves_per_s); c100=$(med b.ceiling_moves_per_s); x100=$(med b.experiment_moves_per_s)
q1=$(two "$(med m.ratio)"); q100=$(two "$(med b.ratio)")
y1=$(two "$(med m.experiment_ratio)"); y100=$(two "$(med b.experiment_ratio)")
line1="per-move commits: engine $(commas "$e1") moves/s, ceiling $(commas "$c1") moves/s, ratio ${q1}x (target <= 1.25x)"
line2="batched commits (100 moves each): engine $(commas "$e100") moves/s, ceiling $(commas "$c100") moves/s, ratio ${q100}x (target <= 2x)"
line3="noise check, the engine on a second copy of the instance: per-move $(commas "$x1") moves/s (ratio ${y1}x), batched $(commas "$x100") moves/s (ratio ${y100}x)"

# ---- checkout latency -----------------------------------------------------
say
say "== checkout latency: BENCH-QUEUE, $M timed chm_checkout calls per queue, interleaved"
"$BIN" checkout "$dir" "$M" >"$dir/co"
grep '^queue ' "$dir/co" | sed 's/^/  /'
l1=$(val checkout_1k_median_us "$dir/co"); l2=$(val checkout_100k_median_us "$dir/co"); lg=$(val checkout_gated_1k_median_us "$dir/co")
m1=$(val checkout_1k_mean_us "$dir/co"); m2=$(val checkout_100k_mean_us "$dir/co"); mg=$(val checkout_gated_1k_mean_us "$dir/co")
line4="checkout latency: 1,000 waiting ${l1} us, 100,000 waiting ${l2} us (medians; means ${m1} / ${m2} us), ratio $(ratio "$l2" "$l1")x (means: $(ratio "$m2" "$m1")x) (target <= 1.5x)"

# ---- guardian evaluation --------------------------------------------------
say
say "== guardian evaluation: judge.gate on the worker's inbound component, $G calls"
"$BIN" guard "$dir" "$G" >"$dir/gd"
gl=$(val gate_criteria_loop_us "$dir/gd"); gd=$(val gate_criteria_door_us "$dir/gd")
el=$(val gate_empty_loop_us "$dir/gd"); ed=$(val gate_empty_door_us "$dir/gd")
gco=$(awk -v a="$lg" -v b="$l1" 'BEGIN { printf "%.1f", a - b }')
line5="guardian evaluation (one CRITERIA_GATE): ${gl} us per judge.gate call (target < 1 us); ${gd} us with one sandbox door per call as the engine makes it; a component without guardians ${el} / ${ed} us"
line6="through chm_checkout: gated ${lg} us vs ungated ${l1} us at 1,000 waiting (median): +${gco} us for the gate, its GUARDIAN log row and hash"

say
say "== summary ($date_utc)"
for l in "$line1" "$line2" "$line3" "$line4" "$line5" "$line6"; do say "$l"; done
say "slowest statements of one move (runs per move, us per move):"
sed -n '/^statements by time/,$p' "$dir/trace" | sed -n '2,9p'

# ---- results.md (and docs/PERFORMANCE.md on request) ----------------------
mkdir -p "$(dirname "$OUT")"
{
  say "<!-- bench:begin (written by bench/run.sh; BENCH_UPDATE_DOC=1 make bench) -->"
  say "Measured $date_utc by \`make bench\`: K = $K roles, $T tokens; $ROUNDS rounds, each the engine, the ceiling and the engine again (noise check) taking turns ($PM moves each with a commit per move, $moves_per_run with 100 per commit); medians of the rounds (a ratio is the median of the rounds' ratios)."
  say
  say "| | engine | ceiling | ratio | target |"
  say "|---|---:|---:|---:|---:|"
  say "| moves/s, one commit per move | $(commas "$e1") | $(commas "$c1") | ${q1}x | <= 1.25x |"
  say "| moves/s, 100 moves per commit | $(commas "$e100") | $(commas "$c100") | ${q100}x | <= 2x |"
  say "| moves/s, one commit per move, the engine on a second copy (noise check) | $(commas "$x1") | $(commas "$c1") | ${y1}x | |"
  say "| moves/s, 100 per commit, the engine on a second copy (noise check) | $(commas "$x100") | $(commas "$c100") | ${y100}x | |"
  say
  say "| checkout latency (median of $M) | 1,000 waiting | 100,000 waiting | ratio | target |"
  say "|---|---:|---:|---:|---:|"
  say "| \`chm_checkout\`, no guardian | ${l1} µs | ${l2} µs | $(ratio "$l2" "$l1")x | <= 1.5x |"
  say "| mean | ${m1} µs | ${m2} µs | $(ratio "$m2" "$m1")x | |"
  say "| behind one CRITERIA_GATE | ${lg} µs | | | |"
  say
  say "| guardian evaluation | µs per call | target |"
  say "|---|---:|---:|"
  say "| \`judge.gate\`, one CRITERIA_GATE, calls in one door | ${gl} | < 1 |"
  say "| the same, one sandbox door per call (as the engine calls it) | ${gd} | |"
  say "| \`judge.gate\`, component without guardians, one door / door per call | ${el} / ${ed} | |"
  say "| through \`chm_checkout\` (gated minus ungated, median) | ${gco} | |"
  say
  say "One move ran $stmts SQL statements (traced): $(val select_per_step "$dir/trace") SELECT, $(val insert_per_step "$dir/trace") INSERT, $(val update_per_step "$dir/trace") UPDATE, $(val savepoint_per_step "$dir/trace") SAVEPOINT, $(val release_per_step "$dir/trace") RELEASE, BEGIN and COMMIT."
  say
  say "Machine: $cpu, $ncpu CPUs${virt:+ (under $virt)}, $mem; \`$uname_a\`; temp dir on \`$fs\` (rotational: $rot); $versions."
  say "<!-- bench:end -->"
} >"$OUT"
say
say "results: $OUT"
if [ "${BENCH_UPDATE_DOC:-0}" = 1 ] && [ -f "$DOC" ]; then
  awk -v f="$OUT" '
    /<!-- bench:begin/ { while ((getline l < f) > 0) print l; skip = 1; next }
    /<!-- bench:end -->/ { skip = 0; next }
    !skip { print }' "$DOC" >"$dir/doc" && cp "$dir/doc" "$DOC"
  say "updated: $DOC"
fi
