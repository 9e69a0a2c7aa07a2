-- tests/repl_spec.lua — `chameleon repl` transcripts: piped standard input
-- (evaluated line by line, no prompts; exit status) and interactive
-- sessions under a pseudo-terminal made by `script` from bsdutils (prompts,
-- continuation prompt, tab completion of hyphenated names, Ctrl-C stopping
-- a running chunk or SQL query and dropping an unfinished statement,
-- history written and read back). Assertions on a pseudo-terminal look for
-- text the echo of the typed keys cannot contain.
local chm = require("chameleon")

local BIN = os.getenv("CHAMELEON_BIN") or "./build/chameleon"

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function slurp(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("a")
  f:close()
  return s
end

-- pipe(dir, store, input) -> stdout, stderr, exit code
local function pipe(dir, store, input)
  write(dir .. "/in.txt", input)
  local ok, _, code = os.execute(string.format("%s repl %s < %s/in.txt > %s/out.txt 2> %s/err.txt",
    BIN, store or "", dir, dir, dir))
  return slurp(dir .. "/out.txt"), slurp(dir .. "/err.txt"), ok and 0 or code
end

-- merged(dir, store, input) -> stdout and stderr in one stream, in order
local function merged(dir, store, input)
  write(dir .. "/in.txt", input)
  os.execute(string.format("%s repl %s < %s/in.txt > %s/all.txt 2>&1", BIN, store or "", dir, dir))
  return slurp(dir .. "/all.txt")
end

describe("chameleon repl", function()
  local dir, inst

  setup(function()
    dir = tmpdir()
    local meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fanout.lua"))
    assert(meta:instantiate("WF-FANOUT-001", dir .. "/fan.db"))
    meta:close()
    inst = dir .. "/fan.db"
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  describe("with piped input", function()
    it("prints expressions, keeps globals, continues unfinished statements", function()
      local out, err, code = pipe(dir, inst, table.concat({
        "1 + 1",
        "x = 20",
        "x * 2 + 2",
        "for i = 1, 3 do",
        "  print('line', i)",
        "end",
        "{ b = 2, a = { 1, 2 } }",
      }, "\n") .. "\n")
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal(table.concat({
        "2", "42", "line\t1", "line\t2", "line\t3",
        "{", "  a = { 1, 2 },", "  b = 2,", "}", "" }, "\n"), out)
    end)

    it("runs the engine: genesis, run, token pretty-printed", function()
      local out, err = pipe(dir, inst, table.concat({
        "id = genesis({ order = 7, lines = { { sku = 'A', qty = 2, unit_price = 3 } } })",
        "r = run()",
        "r.steps > 0",
        "token(id).status",
        ".token " .. "nope",
      }, "\n") .. "\n")
      assert.are.equal("true\n\"FINALIZED\"\n", out)
      assert.truthy(err:find("nope", 1, true), err)
    end)

    it("prints an error with its traceback and goes on", function()
      local out, err, code = pipe(dir, inst, "function f() error('boom') end\nf()\n'after'\n")
      assert.are.equal('"after"\n', out)
      assert.truthy(err:find("stdin:1: boom", 1, true), err)
      assert.truthy(err:find("stack traceback:", 1, true), err)
      assert.are_not.equal(0, code)
    end)

    it("answers the dot-commands", function()
      local out, err = pipe(dir, inst, table.concat({
        ".help",
        ".roles",
        ".sql SELECT count(*) AS n FROM Local_Roles",
        ".sql DELETE FROM Local_Roles",
        ".queue joined",
        ".bogus",
      }, "\n") .. "\n")
      assert.truthy(out:find(".queue INTERACTION", 1, true), out)
      assert.truthy(out:find("WF%-FANOUT%-001%s+split%-lines%s+BETA%s+system"), out)
      assert.truthy(out:find("n = 6", 1, true), out)
      assert.truthy(err:find("read-only", 1, true), err)
      assert.truthy(err:find("unknown command .bogus", 1, true), err)
    end)

    it("stays inside the sandbox", function()
      local out = pipe(dir, inst, "os == nil and io == nil and debug == nil and require == nil\n")
      assert.are.equal("true\n", out)
    end)

    it("shows what a failing chunk printed, before its error", function()
      local out, err, code = pipe(dir, inst, 'print("before"); error("x")\n"after"\n')
      assert.are.equal('before\n"after"\n', out)
      assert.truthy(err:find("stdin:1: x", 1, true), err)
      assert.are.equal(1, code)
      local all = merged(dir, inst, 'print("before"); error("x")\n')
      assert.truthy(all:find("^before\nstdin:1: x\n"), all)
      -- a loop that printed, then ran past its budget, also keeps its output
      all = merged(dir, inst, 'for i = 1, 2 do print("n" .. i) end; local t = nil; t.x = 1\n')
      assert.truthy(all:find("^n1\nn2\nstdin:1: attempt to index"), all)
    end)

    -- Each row: input lines, exit status, text expected on stderr.
    local statuses = {
      { ".bogus", 1, "unknown command .bogus (try .help)" },
      { ".queue", 1, ".queue needs an argument (try .help)" },
      { ".token", 1, ".token needs an argument (try .help)" },
      { ".sql", 1, ".sql needs an argument (try .help)" },
      { ".token nope", 1, "nope" },
      { ".sql DELETE FROM Local_Roles", 1, "read-only" },
      { ".help\n.roles\n.queue joined\n.quit\n.bogus", 0, "" },
      { "1 + 1", 0, "" },
      { "if true then", 1, "<eof>" },
    }
    for _, row in ipairs(statuses) do
      it("exits " .. row[2] .. " after " .. row[1]:gsub("\n", "; "), function()
        local _, err, code = pipe(dir, inst, row[1] .. "\n")
        assert.are.equal(row[2], code)
        if row[3] == "" then
          assert.are.equal("", err)
        else
          assert.truthy(err:find(row[3], 1, true), err)
        end
      end)
    end

    it("exits 1 after a dot-command that only a meta-store refuses", function()
      local _, err, code = pipe(dir, dir .. "/meta.db", ".roles\n")
      assert.are.equal(1, code)
      assert.truthy(err:find(".roles: needs an instance store", 1, true), err)
    end)

    it("runs each chunk as it is read: a top-level local ends with it", function()
      local out = pipe(dir, inst, "local a = 1\nb = 2\na\nb\n")
      assert.are.equal("nil\n2\n", out)
    end)

    it("names a file that is no store once, and says what to give", function()
      local path = dir .. "/notes.txt"
      write(path, "these are notes, not a database\n")
      local out, err, code = pipe(dir, path, "1\n")
      assert.are.equal("", out)
      assert.are.equal(1, code)
      local _, seen = err:gsub(path:gsub("%p", "%%%0"), "")
      assert.are.equal(1, seen, err)
      assert.truthy(err:find("chameleon: repl: " .. path
        .. ": neither an instance store nor a meta-store (", 1, true), err)
      assert.truthy(err:find("\nhint: give an instance store or a meta-store ('chameleon init' makes "
        .. "a meta-store, 'chameleon instantiate' an instance store)\n", 1, true), err)
    end)

    it("opens a meta-store, and a scratch one without a store", function()
      local out = pipe(dir, dir .. "/meta.db", "list()[1].name\n")
      assert.are.equal('"WF-FANOUT-001"\n', out)
      out = pipe(dir, nil, "#list()\n")
      assert.are.equal("0\n", out)
    end)
  end)

  it("replays the transcript of docs/repl.md", function()
    local doc = slurp("docs/repl.md")
    local block = assert(doc:match("```repl\n(.-)```"), "docs/repl.md has no ```repl block")
    local input, expected = {}, {}
    for line in block:gmatch("([^\n]*)\n") do
      local cmd = line:match("^chameleon> (.*)$")
      if cmd then input[#input + 1] = cmd else expected[#expected + 1] = line end
    end
    local meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:instantiate("WF-FANOUT-001", dir .. "/doc.db"))
    meta:close()
    local out, err = pipe(dir, dir .. "/doc.db", table.concat(input, "\n") .. "\n")
    assert.are.equal("", err)
    assert.are.equal(table.concat(expected, "\n") .. "\n", out)
  end)

  describe("under a pseudo-terminal", function()
    -- `script` comes with bsdutils (essential in Debian); python3 is not
    -- in scripts/deps.sh, so the terminal is made by `script` alone.
    local has_script = os.execute("command -v script >/dev/null 2>&1")
    local fin -- an instance of WF-FIN-001: roles F-01, FA-M-001; actors ap-specialist...

    setup(function()
      local meta = assert(chm.open_meta(dir .. "/meta.db"))
      assert(meta:import("workflows/wf_fin_001.lua"))
      assert(meta:instantiate("WF-FIN-001", dir .. "/fin.db"))
      meta:close()
      fin = dir .. "/fin.db"
    end)

    -- tty(steps [, store [, hist]]) -> transcript: each step is
    -- {keys, pause_seconds}; keys go through printf (no single quotes).
    local function tty(steps, store, hist)
      if not has_script then
        error("`script` (bsdutils) is required for the pseudo-terminal tests")
      end
      -- the first keys wait until readline has the terminal: a Ctrl-C
      -- before that would reach a cooked terminal, which drops typed input
      local parts = { "sleep 0.5" }
      for _, s in ipairs(steps) do
        parts[#parts + 1] = string.format("printf '%s'; sleep %s", s[1], s[2] or "0.3")
      end
      local cmd = string.format(
        "(%s) | CHAMELEON_HISTORY=%s TERM=dumb timeout 60 script -qfec '%s repl %s' /dev/null > %s/tty.txt 2>&1",
        table.concat(parts, "; "), hist or (dir .. "/hist"), BIN, store or inst, dir)
      os.execute(cmd)
      return slurp(dir .. "/tty.txt")
    end

    -- value(out, text) -> true when the REPL printed text as a value, on a
    -- line of its own (an echoed input line starts with the prompt).
    local function value(out, text)
      return out:find("\n" .. text:gsub("%p", "%%%0") .. "\r?\n") ~= nil
    end

    it("shows prompts, continues, completes names, survives Ctrl-C", function()
      os.remove(dir .. "/hist")
      local out = tty({
        { "1 + 41\\n" },
        { "if true then\\n" },
        { "  print(\"in\" .. \"side\") end\\n" },
        { "checko\\t\\t" },  -- completes to checkout
        { "\\025" },         -- Ctrl-U: drop the line
        { "print(\"be\" .. \"fore\") while true do end\\n", "1" },
        { "\\003", "0.5" },  -- Ctrl-C stops the loop, not the process
        { "\"still \" .. \"here\"\\n" },
        { ".quit\\n" },
      })
      assert.truthy(out:find("chameleon> ", 1, true), out)
      assert.truthy(value(out, "42"), out)
      assert.truthy(out:find("      ...> ", 1, true), out)
      assert.truthy(value(out, "inside"), out)
      assert.truthy(out:find("checkout", 1, true), out)
      -- what the stopped chunk printed comes first (as it runs: before the
      -- echoed ^C), then why it stopped
      assert.truthy(out:find("before\r?\n%^Cinterrupted"), out)
      assert.truthy(value(out, '"still here"'), out)
      local hist = slurp(dir .. "/hist")
      assert.truthy(hist:find("1 + 41", 1, true), hist)
    end)

    it("completes hyphenated names inside strings and after dot-commands", function()
      local out = tty({
        { "x = \"finance-m\\t", "0.5" }, -- an actor; closes the quote
        { "\\nx\\n" },
        { "\"FA-M\\t", "0.5" },          -- a role with two hyphens
        { "\\n" },
        { "\"F-0\\t\\t", "0.5" },         -- ambiguous: lists F-01 ... F-05
        { "\\025" },
        { ".queue manager_r\\t", "0.5" }, -- an interaction
        { "\\025" },
        { ".queue ap-spec\\t", "0.5" },   -- a hyphenated name after a dot-command
        { "\\025" },
        { "y = 1-clock_r\\t", "0.5" },    -- in Lua code `-` still breaks the word
        { "\\025" },
        { ".quit\\n" },
      }, fin)
      assert.truthy(value(out, '"finance-manager"'), out)
      assert.truthy(value(out, '"FA-M-001"'), out)
      assert.truthy(out:find("F-01", 1, true) and out:find("F-05", 1, true), out)
      assert.truthy(out:find(".queue manager_review ", 1, true), out)
      assert.truthy(out:find(".queue ap-specialist ", 1, true), out)
      assert.truthy(out:find("y = 1-clock_real", 1, true), out)
    end)

    it("drops an unfinished statement on Ctrl-C at the continuation prompt", function()
      local out = tty({
        { "for i = 1, 3 do\\n" },
        { "\\003", "0.5" },
        { "1 + 1\\n" },
        { ".quit\\n" },
      })
      assert.truthy(out:find("      ...> ", 1, true), out)
      assert.truthy(value(out, "2"), out)
      assert.falsy(out:find("stdin:", 1, true), out)
    end)

    it("stops a long SQL query on Ctrl-C and goes on", function()
      local out = tty({
        { ".sql WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) "
          .. "SELECT count(*) FROM c\\n", "1" },
        { "\\003", "0.5" },
        { "print(40+2)\\n" },
        { ".quit\\n" },
      })
      assert.truthy(out:find("interrupted", 1, true), out)
      assert.truthy(value(out, "42"), out)
      assert.falsy(out:find("count(*) = ", 1, true), out)
    end)

    it("reads the history of an earlier session back", function()
      local hist = dir .. "/hist2"
      os.remove(hist)
      -- Ctrl-D leaves without adding to the history, as .quit would
      tty({ { "\"from \" .. \"session one\"\\n" }, { "\\004" } }, inst, hist)
      assert.truthy(slurp(hist):find("session one", 1, true))
      local out = tty({ { "\\033[A", "0.5" }, { "\\n" }, { ".quit\\n" } }, inst, hist)
      assert.truthy(value(out, '"from session one"'), out)
    end)
  end)
end)
