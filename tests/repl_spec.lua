-- tests/repl_spec.lua — `chameleon repl` transcripts: piped standard input
-- (evaluated line by line, no prompts) and an interactive session under a
-- pseudo-terminal made by `script` (prompts, continuation prompt, tab
-- completion, Ctrl-C stopping a running chunk, history file).
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
    local has_script = os.execute("command -v script >/dev/null 2>&1")

    -- tty(steps) -> transcript: each step is {text, pause_seconds}
    local function tty(steps)
      local parts = {}
      for _, s in ipairs(steps) do
        parts[#parts + 1] = string.format("printf '%s'; sleep %s", s[1], s[2] or "0.3")
      end
      local cmd = string.format(
        "(%s) | CHAMELEON_HISTORY=%s/hist TERM=dumb script -qfec '%s repl %s' /dev/null > %s/tty.txt 2>&1",
        table.concat(parts, "; "), dir, BIN, inst, dir)
      os.execute(cmd)
      return slurp(dir .. "/tty.txt")
    end

    it("shows prompts, continues, completes names, survives Ctrl-C", function()
      if not has_script then
        error("`script` (bsdutils) is required for the pseudo-terminal test")
      end
      local out = tty({
        { "1 + 41\\n" },
        { "if true then\\n" },
        { "  print(\"inside\") end\\n" },
        { "checko\\t\\t" },  -- completes to checkout
        { "\\025" },         -- Ctrl-U: drop the line
        { "while true do end\\n", "1" },
        { "\\003", "0.5" },  -- Ctrl-C stops the loop, not the process
        { "\"still here\"\\n" },
        { ".quit\\n" },
      })
      assert.truthy(out:find("chameleon> ", 1, true), out)
      assert.truthy(out:find("42", 1, true), out)
      assert.truthy(out:find("      ...> ", 1, true), out)
      assert.truthy(out:find("inside", 1, true), out)
      assert.truthy(out:find("checkout", 1, true), out)
      assert.truthy(out:find("interrupted", 1, true), out)
      assert.truthy(out:find('"still here"', 1, true), out)
      local hist = slurp(dir .. "/hist")
      assert.truthy(hist:find("1 + 41", 1, true), hist)
    end)
  end)
end)
