-- tests/docs_spec.lua — every code example of README.md, docs/cli.md,
-- docs/json.md and docs/definition-format.md (and the sh blocks of
-- docs/lua-api.md) runs as a test (the jq habit: the manual's examples are
-- tests); every fenced block of README.md and docs/*.md is accounted for —
-- run or checked here, checked by the spec named in ELSEWHERE, or skipped
-- with a reason — so a new unchecked block fails (see "Every block");
-- and every command of `chameleon help` that reports something prints
-- JSON that parses under --json. Run from the repository root:
--   busted --lua=lua5.4 -o tests/summary_handler.lua tests/docs_spec.lua
--
-- Conventions of the docs (docs/cli.md, "The examples on this page", says
-- the same for readers):
--   * Every fenced block names its language: sh, lua, json, jsonc or text.
--     A bare ``` is an error here, so the convention stays visible.
--   * ```sh blocks of one document run in order, each with `sh -e` in one
--     fresh directory per document that holds what a clone has: workflows/,
--     tests/fixtures/ and build/ (symlinks), with `chameleon` on PATH, a
--     `make` on PATH that builds the repository itself, and
--     the Lua module on LUA_CPATH; CHAMELEON_META and CHAMELEON_NOW start
--     unset. Variables carry over from one block to the next of the same
--     document (they are exported and saved after each block), files too.
--   * A block exits 0 unless it has a line `# exit: N`: then it must exit
--     N, so the failing command is its last one.
--   * ```lua blocks run with lua5.4 in the same directory and environment
--     (`require "chameleon"` works), each as its own process.
--   * A ```text block that follows an sh or lua block with only blank
--     lines between them is that block's expected output: stdout and
--     stderr together, compared line by line after normalising both sides:
--       - trailing blanks of each line and trailing empty lines are dropped;
--       - a UUID (8-4-4-4-12 hex digits) reads `<uuid>`;
--       - an ISO 8601 UTC time (2027-01-15T08:00:00Z, with or without
--         milliseconds) reads `<time>`;
--       - 12 hex digits followed by `…` (an abbreviated hash) read `<hash>…`;
--       - the absolute path of the run directory reads `.`.
--     In the expected text, a line `...` stands for any number of lines,
--     and a line ending in ` ...` for any line that starts with the text
--     before it. Other ```text blocks (synopses, trees) are not run.
--   * ```json blocks must parse; ```jsonc blocks must parse once `//`
--     comments are removed. One whose value has "format":
--     "chameleon.workflow/1" is a whole definition: it must import, and
--     its export must equal it (it is written in canonical form).
--   * `<!-- test: skip REASON -->` on the line before a block leaves it
--     out (README's set-up commands, which install packages as root);
--     REASON must say why.
--   * ```text blocks of docs/cli.md that are not outputs are synopses:
--     each line names a command of `chameleon help` and only options its
--     `chameleon help COMMAND` lists.
local chm = require("chameleon")
local json = chm.json

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

local ROOT = assert(io.popen("pwd")):read("l")
local BIN = os.getenv("CHAMELEON_BIN") or ((os.getenv("BUILD") or "build") .. "/chameleon")
if BIN:sub(1, 1) ~= "/" then BIN = ROOT .. "/" .. BIN end

-- The directory of the Lua module this process loaded (build/lua).
local MODDIR = assert(package.searchpath("chameleon", package.cpath)):match("^(.*)/[^/]*$")
if MODDIR:sub(1, 1) ~= "/" then MODDIR = ROOT .. "/" .. MODDIR:gsub("^%./", "") end

local DOCS = { "README.md", "docs/cli.md", "docs/json.md", "docs/definition-format.md",
               "docs/lua-api.md" }
-- Documents of which this spec runs only some languages; the others are
-- checked by the spec ELSEWHERE names.
local ONLY = { ["docs/lua-api.md"] = { sh = true, text = true } }
local LANGS = { sh = true, lua = true, json = true, jsonc = true, text = true }

-- Shell-quote one word.
local function q(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function mktemp()
  return assert(io.popen("mktemp -d")):read("l")
end

-- exec(cmd) -> exit status of a shell command (128 + N for signal N).
local function exec(cmd)
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  return code
end

-- ---------------------------------------------------------------------------
-- Markdown: fenced blocks, their directives and outputs
-- ---------------------------------------------------------------------------

-- blocks(path) -> { {lang, text, line, skip, output = block|nil}, ... }:
-- the fenced blocks of a document in order (line: the opening fence).
local function blocks(path)
  local text = assert(slurp(ROOT .. "/" .. path), "cannot read " .. path)
  local lines = {}
  for l in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local out, i = {}, 1
  while i <= #lines do
    local indent, lang = lines[i]:match("^(%s*)```(%S*)%s*$")
    if lang then
      local b = { lang = lang, line = i, body = {} }
      local prev = i - 1
      while prev > 0 and lines[prev]:match("^%s*$") do prev = prev - 1 end
      b.skip = prev > 0 and lines[prev]:match("^<!%-%- test: skip (.-) %-%->$") or nil
      b.after_fence = prev > 0 and out[#out] and out[#out].close == prev
      i = i + 1
      while i <= #lines and not lines[i]:match("^%s*```%s*$") do
        b.body[#b.body + 1] = lines[i]:sub(#indent + 1)
        i = i + 1
      end
      assert(i <= #lines, string.format("%s:%d: unterminated code block", path, b.line))
      b.close = i
      b.text = table.concat(b.body, "\n") .. "\n"
      out[#out + 1] = b
    end
    i = i + 1
  end
  -- A text block right after an sh or lua block is its output.
  for k = 2, #out do
    local b, p = out[k], out[k - 1]
    if b.lang == "text" and b.after_fence and (p.lang == "sh" or p.lang == "lua") then
      p.output, b.is_output = b, true
    end
  end
  return out
end

-- ---------------------------------------------------------------------------
-- Output comparison
-- ---------------------------------------------------------------------------

local function split_lines(s)
  local t = {}
  for l in (s .. "\n"):gmatch("(.-)\n") do t[#t + 1] = (l:gsub("%s+$", "")) end
  while #t > 0 and t[#t] == "" do t[#t] = nil end
  return t
end

local HEX = "%x%x%x%x"
local UUID = HEX .. HEX .. "%-" .. HEX .. "%-" .. HEX .. "%-" .. HEX .. "%-" .. HEX .. HEX .. HEX
local TIME = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[%.%d]*Z"
local HASH = HEX .. HEX .. HEX .. "…"

local function normalise(s, dir)
  if dir then
    s = s:gsub(dir:gsub("%p", "%%%0"), ".")
  end
  s = s:gsub(UUID, "<uuid>"):gsub(TIME, "<time>"):gsub(HASH, "<hash>…")
  return split_lines(s)
end

-- matches(want, got): want may hold "..." lines (any lines) and lines
-- ending in " ..." (a prefix).
local function matches(want, got)
  local function line_ok(w, g)
    if w == g then return true end
    local prefix = w:match("^(.-) %.%.%.$")
    return prefix ~= nil and prefix ~= "" and g:sub(1, #prefix) == prefix
  end
  local function from(i, j)
    if i > #want then return j > #got end
    if want[i]:match("^%s*%.%.%.$") then
      for k = j, #got + 1 do
        if from(i + 1, k) then return true end
      end
      return false
    end
    return j <= #got and line_ok(want[i], got[j]) and from(i + 1, j + 1)
  end
  return from(1, 1)
end

-- ---------------------------------------------------------------------------
-- Running blocks
-- ---------------------------------------------------------------------------

-- A session: one run directory per document, plus an aux directory (out
-- of sight of `ls`) with the bin dir, the saved variables and scratch.
local function new_session()
  local s = { dir = mktemp(), aux = mktemp() }
  assert(exec(table.concat({
    "mkdir -p", q(s.dir .. "/tests"), q(s.aux .. "/bin"), "&&",
    "ln -s", q(ROOT .. "/workflows"), q(s.dir .. "/workflows"), "&&",
    "ln -s", q(ROOT .. "/tests/fixtures"), q(s.dir .. "/tests/fixtures"), "&&",
    "ln -s", q(MODDIR:match("^(.*)/[^/]*$")), q(s.dir .. "/build"), "&&",
    "ln -s", q(BIN), q(s.aux .. "/bin/chameleon") }, " ")) == 0)
  -- `make` in a block builds the repository (whose build/ is linked here).
  local real_make = assert(io.popen("command -v make")):read("l")
  spit(s.aux .. "/bin/make", "#!/bin/sh\nexec " .. q(real_make) .. " --no-print-directory -C " ..
    q(ROOT) .. ' "$@"\n')
  assert(exec("chmod +x " .. q(s.aux .. "/bin/make")) == 0)
  -- The launcher of lua blocks: load under the document's name so that
  -- error messages point at the document's lines.
  spit(s.aux .. "/launch.lua", [[
local path, name = ...
local f = assert(io.open(path, "rb"))
local src = f:read("a")
f:close()
assert(load(src, "@" .. name))()
]])
  return s
end

local function end_session(s)
  if s then exec("rm -rf " .. q(s.dir) .. " " .. q(s.aux)) end
end

-- The prelude of every sh block: restore the variables of the previous
-- blocks, export every assignment, save them all on exit.
local PRELUDE = [[
set -a
if [ -f "$DOCS_STATE" ]; then . "$DOCS_STATE"; fi
trap 'docs_rc=$?; export -p > "$DOCS_STATE"; exit $docs_rc' EXIT
set -e
]]

-- run_sh(s, text) -> exit status, output (stdout and stderr together).
local function run_sh(s, text)
  spit(s.aux .. "/block.sh", PRELUDE .. text)
  local code = exec(table.concat({
    "cd", q(s.dir), "&&",
    "env -u CHAMELEON_META -u CHAMELEON_NOW -u CHAMELEON_BIN",
    "PATH=" .. q(s.aux .. "/bin:" .. os.getenv("PATH")),
    "LUA_CPATH=" .. q(MODDIR .. "/?.so;;"),
    "CHAMELEON_HISTORY=" .. q(s.aux .. "/history"),
    "DOCS_STATE=" .. q(s.aux .. "/state"),
    "sh", q(s.aux .. "/block.sh"),
    ">", q(s.aux .. "/out"), "2>&1 </dev/null" }, " "))
  return code, slurp(s.aux .. "/out") or ""
end

local function run_lua(s, doc, b)
  -- Pad so that line numbers in messages are the document's.
  spit(s.aux .. "/block.lua", string.rep("\n", b.line) .. b.text)
  return run_sh(s, string.format("lua5.4 %s %s %s\n", q(s.aux .. "/launch.lua"),
    q(s.aux .. "/block.lua"), q(doc)))
end

-- check_output(doc, b, out, dir): compare with the text block after b.
local function check_output(doc, b, out, dir)
  if not b.output then return end
  local want, got = normalise(b.output.text), normalise(out, dir)
  if not matches(want, got) then
    error(string.format("%s:%d: the output differs from the text block at line %d\n" ..
      "--- expected (normalised)\n%s\n--- got (normalised)\n%s\n--- got (raw)\n%s",
      doc, b.line, b.output.line, table.concat(want, "\n"), table.concat(got, "\n"), out), 0)
  end
end

-- strip_comments(text): jsonc -> json (// comments outside strings).
local function strip_comments(text)
  local out, i, in_str = {}, 1, false
  while i <= #text do
    local c = text:sub(i, i)
    if in_str then
      out[#out + 1] = c
      if c == "\\" then
        out[#out + 1] = text:sub(i + 1, i + 1)
        i = i + 1
      elseif c == '"' then
        in_str = false
      end
    elseif c == '"' then
      in_str = true
      out[#out + 1] = c
    elseif text:sub(i, i + 1) == "//" then
      i = (text:find("\n", i, true) or #text + 1) - 1
    else
      out[#out + 1] = c
    end
    i = i + 1
  end
  return table.concat(out)
end

-- check_definition(s, doc, b, value): import a whole definition with the
-- CLI and check that its export is the block itself.
local function check_definition(s, doc, b, value)
  local meta, file = s.aux .. "/def-meta.db", s.aux .. "/def-" .. b.line .. ".json"
  spit(file, json.encode(value, true))
  local function cli(args)
    return run_sh(s, q(BIN) .. " " .. args .. "\n")
  end
  local code, out = cli("init --meta " .. q(meta))
  assert(code == 0, out)
  code, out = cli("import --meta " .. q(meta) .. " " .. q(file))
  assert(code == 0, string.format("%s:%d: the definition does not import:\n%s", doc, b.line, out))
  code, out = cli("export --meta " .. q(meta) .. " " .. q(value.name))
  assert(code == 0, out)
  assert.are.same(value, json.decode(out),
    string.format("%s:%d: the export differs from the example (is it canonical?)", doc, b.line))
end

-- ---------------------------------------------------------------------------
-- The documents
-- ---------------------------------------------------------------------------

for _, doc in ipairs(DOCS) do
  describe(doc, function()
    local s
    lazy_setup(function() s = new_session() end)
    lazy_teardown(function() end_session(s) end)

    local list = blocks(doc)

    it("names the language of every block", function()
      for _, b in ipairs(list) do
        assert(LANGS[b.lang], string.format("%s:%d: code block language %q (use one of " ..
          "sh, lua, json, jsonc, text)", doc, b.line, b.lang))
      end
    end)

    for _, b in ipairs(list) do
      local where = string.format("%s:%d", doc, b.line)
      if ONLY[doc] and not ONLY[doc][b.lang] then
        -- checked by the spec ELSEWHERE names for this document
        goto next_block
      end
      if b.skip then
        pending(where .. " " .. b.lang .. ": " .. b.skip)
      elseif b.lang == "sh" then
        it(where .. " sh runs" .. (b.output and " and prints its output" or ""), function()
          local want = tonumber(b.text:match("\n%s*#%s*exit:%s*(%d+)%s*\n") or
                                b.text:match("^%s*#%s*exit:%s*(%d+)%s*\n")) or 0
          local code, out = run_sh(s, b.text)
          if code ~= want then
            error(string.format("%s: exit status %d, expected %d\n--- block\n%s--- output\n%s",
              where, code, want, b.text, out), 0)
          end
          check_output(doc, b, out, s.dir)
        end)
      elseif b.lang == "lua" then
        it(where .. " lua runs" .. (b.output and " and prints its output" or ""), function()
          local code, out = run_lua(s, doc, b)
          if code ~= 0 then
            error(string.format("%s: exit status %d\n--- output\n%s", where, code, out), 0)
          end
          check_output(doc, b, out, s.dir)
        end)
      elseif b.lang == "json" or b.lang == "jsonc" then
        it(where .. " " .. b.lang .. " is valid", function()
          local text = b.lang == "jsonc" and strip_comments(b.text) or b.text
          local ok, value = pcall(json.decode, text)
          assert(ok, string.format("%s: %s", where, tostring(value)))
          if type(value) == "table" and value.format == "chameleon.workflow/1" then
            check_definition(s, doc, b, value)
          end
        end)
      end
      ::next_block::
    end
  end)
end

-- ---------------------------------------------------------------------------
-- Every block: each fenced block of README.md and docs/*.md is run or
-- checked by some spec, or skipped with a reason
-- ---------------------------------------------------------------------------

-- Documents whose blocks (of these languages; the language is the whole
-- info string after ```) another spec checks. The spec must name the
-- document; the test below makes sure it still does.
local ELSEWHERE = {
  ["docs/lua-api.md"] = { lua = "tests/token_module_spec.lua" },
  ["docs/embedding.md"] = { c = "tests/install_spec.lua", lua = "tests/install_spec.lua",
                            make = "tests/install_spec.lua", sh = "tests/install_spec.lua",
                            text = "tests/install_spec.lua" },
  ["docs/repl.md"] = { repl = "tests/repl_spec.lua" },
  ["docs/expressions.md"] = { expr = "tests/expr_spec.lua" },
  ["docs/guardians.md"] = { ["json example"] = "tests/judge_spec.lua" },
  ["docs/workflows.md"] = { lua = "tests/validate_spec.lua" },
}

-- Blocks of documents other people own (so they carry no skip marker),
-- left unchecked on purpose: document -> { {first line, reason} }.
local UNCHECKED = {
  ["docs/workflows.md"] = {
    { 'workflows/x.lua:12: [beta-strategy] role "F-02": expected strategy HOMOGENEOUS or ' ..
      'HETEROGENEOUS, found "HOMOGENOUS" (did you mean "HOMOGENEOUS"?)',
      "the shape of a validation message, for a file that does not exist" },
    { "step(token, ctx) -> result", "a signature, not code" },
    { 'tests/fixtures/invalid/actor_type.lua:11: [actor-type] actor "bot": expected type ' ..
      'HUMAN, AI_AGENT or SYSTEM, found "ROBOT"',
      "sample validator output; the messages are asserted by tests/validate_spec.lua" },
  },
  ["docs/guardians.md"] = {
    { "judge.gate(db, component_id, view)   -> verdict", "signatures of lua/judge.lua, not code" },
    { "{pass = bool, wait = bool, reason = string | nil,", "the shape of a verdict, not code" },
  },
}

-- all_blocks(path) -> { {info, line, first, text, skip, output} }: every
-- fenced block, whatever its info string.
local function all_blocks(path)
  local lines = {}
  local text = assert(slurp(ROOT .. "/" .. path), path)
  for l in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do lines[#lines + 1] = l end
  local out, i, last = {}, 1, nil
  while i <= #lines do
    local indent, info = lines[i]:match("^(%s*)```(.-)%s*$")
    if indent then
      local b = { info = info, line = i, body = {} }
      local prev = i - 1
      while prev > 0 and lines[prev]:match("^%s*$") do prev = prev - 1 end
      b.skip = prev > 0 and lines[prev]:match("^<!%-%- test: skip (.-) %-%->$") or nil
      b.output = info == "text" and last ~= nil and last.close == prev and
                 (last.info == "sh" or last.info == "lua")
      i = i + 1
      while i <= #lines and not lines[i]:match("^%s*```%s*$") do
        b.body[#b.body + 1] = lines[i]:sub(#indent + 1)
        i = i + 1
      end
      assert(i <= #lines, string.format("%s:%d: unterminated code block", path, b.line))
      b.close, b.first, b.text = i, b.body[1] or "", table.concat(b.body, "\n") .. "\n"
      out[#out + 1] = b
      last = b
    end
    i = i + 1
  end
  return out
end

-- The commands of `chameleon help` and the help text of each, cached.
local help_cache = {}
local function help_text(cmd)
  if not help_cache[cmd or ""] then
    local p = assert(io.popen(q(BIN) .. " help " .. (cmd and q(cmd) or "") .. " 2>&1"))
    help_cache[cmd or ""] = p:read("a")
    p:close()
  end
  return help_cache[cmd or ""]
end

-- check_synopsis(doc, b): every line is `chameleon CMD ...` with CMD a
-- command (or the placeholder COMMAND / an option of the bare command)
-- and every --option one its help lists.
local function check_synopsis(doc, b)
  local commands = {}
  for l in help_text():match("Commands:\n(.-)\n\n"):gmatch("[^\n]+") do commands[l:match("^  (%S+)")] = true end
  for n, line in ipairs(b.body) do
    local where = string.format("%s:%d", doc, b.line + n)
    local cmd = line:match("^chameleon (%S+)")
    assert(cmd, where .. ": a synopsis line must start with `chameleon `: " .. line)
    local text
    if commands[cmd] then
      text = help_text(cmd)
    else
      assert(cmd == "COMMAND" or cmd:match("^%-%-"), where .. ": `" .. cmd .. "` is not a command")
      text = help_text()
    end
    for opt in line:gmatch("%-%-[%w-]+") do
      assert(text:find(opt, 1, true), where .. ": " .. opt .. " is not in `chameleon help " ..
        (commands[cmd] and cmd or "") .. "`")
    end
  end
end

-- check_tree(doc, b): each entry of a file tree (first column; "a.c, b.c"
-- names siblings; NNN is a migration number) exists in the repository.
local function check_tree(doc, b)
  local n = 0
  for k, line in ipairs(b.body) do
    local first = line:match("^(%S[^ ]*[^ ,]*.-)%s%s+%S") or line:match("^(%S+)$")
    if first then
      local dir = ""
      for name in first:gmatch("[^,%s]+") do
        if name:find("/") then dir = name:match("^(.*/)") else name = dir .. name end
        local glob = name:gsub("NNN", "[0-9][0-9][0-9]"):gsub("%*%*", "*")
        n = n + 1
        assert(exec("cd " .. q(ROOT) .. " && ls -d " .. glob .. " >/dev/null 2>&1") == 0,
          string.format("%s:%d: %s does not exist", doc, b.line + k, name))
      end
    end
  end
  assert(n > 10, doc .. ":" .. b.line .. ": no entries found in the tree")
end

-- deep_same(a, b): same JSON value (arrays' metatables ignored; nulls
-- compared by identity).
local function deep_same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return a == b and math.type(a) == math.type(b)
  end
  for k, v in pairs(a) do if not deep_same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- check_expr_token(doc, b): the example token of docs/expressions.md (two
-- JSON objects after `//` headings: reserved fields, attributes) parses,
-- is the token tests/expr_spec.lua evaluates the examples against, and
-- the first ```expr examples give their results on it through lua/expr.lua.
local function check_expr_token(doc, b, list)
  local parts = {}
  for chunk in (b.text .. "//"):gmatch("//[^\n]*\n(.-)%f[/]") do parts[#parts + 1] = chunk end
  assert.are.equal(2, #parts, doc .. ":" .. b.line .. ": expected two objects (fields, attributes)")
  local fields, attrs = json.decode(parts[1]), json.decode(parts[2])
  package.path = ROOT .. "/lua/?.lua;" .. package.path
  local expr = require("expr")
  -- JSON values -> the expression language's (its own null).
  local function conv(v)
    if v == json.null then return expr.null end
    if type(v) ~= "table" then return v end
    local t = {}
    for k, x in pairs(v) do t[k] = conv(x) end
    return t
  end
  local token = { fields = conv(fields), attrs = conv(attrs) }
  local _, S = dofile(ROOT .. "/tests/fixtures/expr_cases.lua")(expr.null)
  assert(deep_same(S, token), doc .. ":" .. b.line ..
    ": the example token differs from the one in tests/fixtures/expr_cases.lua")
  local n = 0
  for _, e in ipairs(list) do
    if e.info == "expr" and e.line > b.line then
      for _, line in ipairs(e.body) do
        local src, want = line:match("^%s*(.-)%s+⇒%s+(.-)%s*$")
        if src and (want == "true" or want == "false") then
          local c = assert(expr.compile(src))
          assert.are.equal(want, tostring(c.eval(token)), doc .. ":" .. e.line .. ": " .. src)
          n = n + 1
        end
      end
      break
    end
  end
  assert(n > 0, "no boolean examples after the token")
end

-- Checks this spec applies to blocks it does not run as sh/lua/json:
-- document -> function(b, list) -> description | nil (not applicable).
local CHECKS = {
  ["docs/cli.md"] = function(b)
    if b.info == "text" and not b.output then return "synopsis", check_synopsis end
  end,
  ["docs/ARCHITECTURE.md"] = function(b)
    if b.info == "text" and b.first:match("^engine/") then return "file tree", check_tree end
  end,
  ["docs/expressions.md"] = function(b)
    if b.info == "jsonc" and b.first:match("^// reserved token fields") then
      return "example token", check_expr_token
    end
  end,
}

describe("every fenced block of README.md and docs/*.md", function()
  local docs = { "README.md" }
  for f in assert(io.popen("cd " .. q(ROOT) .. " && ls docs/*.md")):lines() do docs[#docs + 1] = f end
  local run_here = {}
  for _, d in ipairs(DOCS) do run_here[d] = true end

  it("finds the documents", function()
    assert.is_true(#docs > 10)
  end)

  for _, doc in ipairs(docs) do
    local list = all_blocks(doc)
    local unchecked = {}
    for _, u in ipairs(UNCHECKED[doc] or {}) do unchecked[u[1]] = u[2] end
    for _, b in ipairs(list) do
      local where = string.format("%s:%d ```%s", doc, b.line, b.info)
      local elsewhere = ELSEWHERE[doc] and ELSEWHERE[doc][b.info]
      local what, check = nil, nil
      if CHECKS[doc] then what, check = CHECKS[doc](b) end
      -- run in this spec's section for the document (an output: with the
      -- block before it)
      local ran = run_here[doc] and not (ONLY[doc] and not ONLY[doc][b.info]) and
                  (b.info == "sh" or b.info == "lua" or b.info == "json" or b.info == "jsonc" or
                   (b.info == "text" and b.output))
      if b.skip then
        it(where .. " is skipped with a reason", function()
          assert(#b.skip >= 10 and b.skip:match("%a+ %a+"),
            where .. ": say why the block is skipped (`<!-- test: skip REASON -->`)")
        end)
      elseif not ran then
        if elsewhere then
          it(where .. " is checked by " .. elsewhere, function()
            local spec = assert(slurp(ROOT .. "/" .. elsewhere), elsewhere .. " is gone")
            assert(spec:find(doc, 1, true), elsewhere .. " no longer mentions " .. doc)
          end)
        elseif check then
          it(where .. " " .. what .. " is checked", function() check(doc, b, list) end)
        elseif unchecked[b.first] then
          pending(where .. " unchecked: " .. unchecked[b.first])
        else
          it(where .. " is run or checked by some spec", function()
            error(where .. " (" .. b.first .. ") is neither run nor checked by any spec: " ..
              "make a spec run it, or put `<!-- test: skip REASON -->` on the line before it", 0)
          end)
        end
      end
    end
  end
end)

-- ---------------------------------------------------------------------------
-- --json on every command that reports something
-- ---------------------------------------------------------------------------

-- A small workflow with two human desks and an ambiguity lock of one
-- checkout, so that every token state the commands need is reachable.
local DESK = [[
return workflow "WF-DESK" {
  description = "two human desks",
  max_interactions = 1,
  interactions = { interaction "inbox" { stale_token_limit_seconds = 60 },
                   "second", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "inbox" } },
    beta "desk" { inbound = { "inbox" }, outbound = { "second" } },
    beta "desk2" { inbound = { "second" }, outbound = { "done" } },
    omega "end" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = {
    actor "system" { type = "SYSTEM", roles = { "start", "end" } },
    actor "clerk" { type = "HUMAN", roles = { "start", "desk", "desk2", "fix", "clock" } },
  },
}
]]

-- Commands that print no report: help (text for people) and repl (an
-- interactive session whose output is Lua values).
local NO_REPORT = { help = true, repl = true }

describe("--json", function()
  local dir, ids = nil, {}
  lazy_setup(function() dir = mktemp() end)
  lazy_teardown(function() if dir then exec("rm -rf " .. q(dir)) end end)

  -- cli(args, want) -> the decoded stdout of `chameleon ARGS --json`,
  -- which must exit `want` (default 0); stderr must be empty on success.
  -- A failure may print no JSON (nil), only its message on stderr.
  local function cli(args, want)
    local cmd = { "cd", q(dir), "&&", "env -u CHAMELEON_META CHAMELEON_NOW=1800000000000", q(BIN) }
    for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
    cmd[#cmd + 1] = "--json >.out 2>.err </dev/null"
    local code = exec(table.concat(cmd, " "))
    local out, err = slurp(dir .. "/.out"), slurp(dir .. "/.err")
    local what = "chameleon " .. table.concat(args, " ") .. " --json"
    if code ~= (want or 0) then
      error(string.format("%s: exit %d, expected %d\n--- stdout\n%s--- stderr\n%s",
        what, code, want or 0, out, err), 0)
    end
    if code == 0 then
      assert.are.equal("", err, what .. " wrote on stderr")
    elseif out == "" then
      -- A failure without a report: the message is on stderr alone.
      assert(err:match("^chameleon: "), what .. ": no message on stderr")
      return nil
    end
    local ok, v = pcall(json.decode, out)
    assert(ok, string.format("%s: stdout is not JSON (%s):\n%s", what, tostring(v), out))
    return v
  end

  -- first_row(sql) -> the first row of a query on desk.db, through the
  -- module.
  local function first_row(sql)
    local inst = assert(chm.open_instance(dir .. "/desk.db"))
    local row = assert(inst:query(sql))[1]
    inst:close()
    return row
  end

  local function uow() return ids.a end

  -- A copy of desk.db with one log row changed outside the engine.
  local function tamper()
    assert(exec(string.format("cd %s && cp desk.db tampered.db && sqlite3 tampered.db " ..
      "\"DROP TRIGGER Interaction_Logs_no_update; " ..
      "UPDATE Interaction_Logs SET details = '{}' WHERE log_id = 2\"", q(dir))) == 0)
  end

  -- { command, args, exit status (default 0), before = f(), after = f(v) }:
  -- one or more runs per command, in an order that builds what the next
  -- needs. A function among the args is called at run time (ids come
  -- later).
  local CASES = {
    { "init", { "init" } },
    { "import", { "import", "workflows/wf_fin_001.lua", "desk.lua" } },
    { "validate", { "validate", "workflows/wf_fin_001.lua" } },
    { "validate", { "validate", "tests/fixtures/invalid/role_type.lua" }, 3,
      after = function(v) assert.are.same({ false, "INVALID" }, { v[1].ok, v[1].code }) end },
    { "list", { "list" } },
    { "show", { "show", "WF-FIN-001" } },
    { "export", { "export", "WF-FIN-001" } },
    { "instantiate", { "instantiate", "WF-DESK", "--out", "desk.db" } },
    { "instantiate", { "instantiate", "WF-FIN-001", "--out", "fin.db" } },
    { "describe", { "describe", "desk.db" } },
    { "check", { "check", "desk.db" } },
    { "guide", { "guide", "Template_Workflows" } },
    { "guide", { "guide", "--instance", "desk.db", "Local_Roles" } },
    { "sql", { "sql", "--instance", "desk.db", "SELECT name FROM Local_Roles" } },
    { "genesis", { "genesis", "desk.db", "--actor", "clerk", "--attr", "n=1" },
      after = function(v) ids.a = v.uow_id end },
    { "genesis", { "genesis", "fin.db", "--actor", "ap-specialist",
                   "--attr", "po_amount=100", "--attr", "document=Vendor: ACME Amount: 120 PO: PO-7" } },
    { "run", { "run", "fin.db" }, after = function(v) assert.are.equal(3, v.steps) end },
    { "checkout", { "checkout", "desk.db", "--actor", "clerk", "--role", "desk" } },
    { "heartbeat", { "heartbeat", "desk.db", uow, "--actor", "clerk" } },
    { "submit", { "submit", "desk.db", uow, "--actor", "clerk", "--version", function()
      return tostring(first_row("SELECT version FROM UnitsOfWork WHERE uow_id = '" .. ids.a .. "'").version)
    end } },
    -- desk2 finds the token locked (one checkout is its limit): ZOMBIED_SOFT.
    { "checkout", { "checkout", "desk.db", "--actor", "clerk", "--role", "desk2" }, 4 },
    { "clarify", { "clarify", "desk.db", uow, "--text", "confirmed" } },
    { "checkout", { "checkout", "desk.db", "--actor", "clerk", "--role", "desk2" } },
    { "pause", { "pause", "desk.db", uow, "--actor", "clerk" } },
    { "resume", { "resume", "desk.db", uow, "--actor", "clerk" } },
    { "fail", { "fail", "desk.db", uow, "--actor", "clerk", "--reason", "test" } },
    { "pause", { "pause", "desk.db" } },
    { "resume", { "resume", "desk.db" } },
    { "sweep", { "sweep", "desk.db" } },
    { "token", { "token", "desk.db", uow, "--history", "--attributes" },
      after = function(v) assert.are.same({ "FAILED", "table", "table" },
        { v.status, type(v.history), type(v.attribute_versions) }) end },
    { "queues", { "queues", "desk.db" } },
    { "tokens", { "tokens", "desk.db" } },
    { "verify", { "verify", "desk.db" } },
    { "verify", { "verify", "tampered.db" }, 6, before = tamper,
      after = function(v) assert.are.same({ false, 2 }, { v.ok, v.first_bad }) end },
    { "memory", { "memory", "desk.db", "set", "desk", "tone", "short" } },
    { "memory", { "memory", "desk.db", "set", "desk", "tone", "casual", "--actor", "clerk" } },
    { "memory", { "memory", "desk.db", "toxic", function()
      return first_row("SELECT memory_id FROM Local_Role_Attributes LIMIT 1").memory_id
    end } },
    { "memory", { "memory", "desk.db", "decay", "90" } },
  }

  it("covers every command of `chameleon help`", function()
    local p = assert(io.popen(q(BIN) .. " help"))
    local help = p:read("a")
    p:close()
    local listed, covered = {}, {}
    for l in help:match("Commands:\n(.-)\n\n"):gmatch("[^\n]+") do
      listed[assert(l:match("^  (%S+)"), l)] = true
    end
    for _, c in ipairs(CASES) do covered[c[1]] = true end
    assert.is_not_nil(next(listed), "no commands found in `chameleon help`")
    for name in pairs(listed) do
      assert(covered[name] or NO_REPORT[name], "no --json case for command " .. name)
    end
    for name in pairs(covered) do
      assert(listed[name], name .. " is not a command of `chameleon help`")
    end
  end)

  it("prints JSON that parses for every reporting command", function()
    spit(dir .. "/desk.lua", DESK)
    assert(exec(string.format("mkdir -p %s/tests && ln -s %s %s/workflows && ln -s %s %s/tests/fixtures",
      q(dir), q(ROOT .. "/workflows"), q(dir), q(ROOT .. "/tests/fixtures"), q(dir))) == 0)
    for _, c in ipairs(CASES) do
      local args = {}
      for _, a in ipairs(c[2]) do args[#args + 1] = type(a) == "function" and a() or a end
      if c.before then c.before() end
      local v = cli(args, c[3])
      if c.after then c.after(v) end
    end
  end)
end)
