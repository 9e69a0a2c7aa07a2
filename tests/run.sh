#!/bin/sh
# tests/run.sh — runs every test suite and ends with one line
# "N passed, N failed" (what CI reads). Suites: c (tests/c binaries),
# lua (busted specs against the module and the CLI). Arguments choose
# suites (default: all). BUILD selects the build directory; the `cli`
# suite (used by `make asan`) runs only the specs that drive the binary,
# loading the regular build's module for their setup (a sanitized module
# cannot be loaded into a plain lua5.4).
BUILD=${BUILD:-build}
LUA=${LUA:-lua5.4}
BUSTED=${BUSTED:-busted}
suites=${*:-c lua}
passed=0
failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# count FILE: add the last "N passed, N failed" line of FILE to the totals;
# a suite that printed none counts as one failure.
count() {
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" | tail -n 1)
  if [ -z "$line" ]; then
    echo "tests/run.sh: $2 printed no summary line (crashed?)" >&2
    failed=$((failed + 1))
    return
  fi
  p=${line%% passed*}
  f=${line#*, }
  f=${f%% failed*}
  passed=$((passed + p))
  failed=$((failed + f))
}

for s in $suites; do
  case $s in
  c)
    for t in "$BUILD"/tests/test_*; do
      [ -x "$t" ] || continue
      echo "== $t"
      timeout 900 "$t" >"$log" 2>&1
      rc=$?
      cat "$log"
      count "$log" "$t"
      [ $rc -ne 0 ] && grep -qE '^[0-9]+ passed, 0 failed$' "$log" && failed=$((failed + 1))
    done
    ;;
  lua | cli)
    modbuild=$BUILD
    if [ "$s" = cli ]; then
      # The front doors that run the binary; setup code loads the regular
      # (unsanitized) module, which a plain lua5.4 can load.
      specs="tests/cli_spec.lua tests/cli_token_spec.lua tests/repl_spec.lua tests/docs_spec.lua tests/man_spec.lua"
      modbuild=build
    else
      specs=tests
    fi
    echo "== busted $specs"
    CHAMELEON_BIN=${CHAMELEON_BIN:-$BUILD/chameleon} BUILD=$BUILD \
      "$BUSTED" --lua="$LUA" --cpath="./$modbuild/lua/?.so" \
      -o tests/summary_handler.lua $specs >"$log" 2>&1 </dev/null
    cat "$log"
    count "$log" "busted"
    ;;
  *)
    echo "tests/run.sh: unknown suite '$s' (use c, lua or cli)" >&2
    exit 2
    ;;
  esac
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
