-- tests/cli_spec.lua — runs the real `chameleon` binary and checks exit
-- codes and output: help and usage errors, init/import/validate/list/show/
-- export/instantiate on a meta-store, describe/check on an instance after
-- its meta-store is gone (the air gap), guide and read-only sql.
-- Binary: $CHAMELEON_BIN, else $BUILD/chameleon, else build/chameleon.
-- Inputs: workflows/*.lua (reference workflows) and
-- tests/fixtures/invalid/*.lua (first line "-- expect: <substring>").
-- Run from the repository root: busted --lua=lua5.4 tests/cli_spec.lua

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

local ROOT = assert(io.popen("pwd")):read("l")
local BIN = os.getenv("CHAMELEON_BIN") or ((os.getenv("BUILD") or "build") .. "/chameleon")
if BIN:sub(1, 1) ~= "/" then BIN = ROOT .. "/" .. BIN end

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

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Lines printed by a shell command run from the repository root.
local function lines_of(cmd)
  local p = assert(io.popen("cd " .. q(ROOT) .. " && " .. cmd .. " 2>/dev/null"))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local function mktemp()
  return assert(io.popen("mktemp -d")):read("l")
end

-- run(dir, args [, env]) -> {code, out, err}: run the binary in dir with
-- CHAMELEON_META unset (unless env sets it), capturing both streams.
local function run(dir, args, env)
  local cmd = { "cd", q(dir), "&&", "env -u CHAMELEON_META", env or "", q(BIN) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  cmd[#cmd + 1] = ">" .. q(dir .. "/.stdout") .. " 2>" .. q(dir .. "/.stderr")
  local _, how, code = os.execute(table.concat(cmd, " "))
  if how == "signal" then code = 128 + code end
  return { code = code, out = slurp(dir .. "/.stdout") or "",
           err = slurp(dir .. "/.stderr") or "" }
end

-- expect(r, code): assert the exit code, showing both streams otherwise.
local function expect(r, code)
  if r.code ~= code then
    error(string.format("exit status %s, expected %s\n--- stdout\n%s--- stderr\n%s",
      tostring(r.code), tostring(code), r.out, r.err), 2)
  end
  return r
end

-- A literal string as a Lua pattern.
local function lit(s)
  return (s:gsub("%p", "%%%0"))
end

local function has(text, needle)
  return text:find(needle, 1, true) ~= nil
end

local function assert_has(text, needle, what)
  if not has(text, needle) then
    error(string.format("%s does not contain %q:\n%s", what or "output", needle, text), 2)
  end
end

-- The CLI's JSON is read with the engine's own exact codec (the regular
-- module: under `make asan` the specs still load the unsanitized build).
local cjson = require("chameleon").json
local NULL = cjson.null
local json_decode = cjson.decode

-- The reference workflows and the invalid fixtures; both must exist.
local WORKFLOWS = lines_of("ls workflows/*.lua")
local INVALID = lines_of("ls tests/fixtures/invalid/*.lua tests/fixtures/invalid/*.json")
-- The messages the JSON fixtures must produce (Lua fixtures carry theirs
-- as `-- expect:` lines).
local JSON_EXPECT = dofile("tests/fixtures/json_expect.lua")

-- expectations(rel) -> every message the fixture must produce.
local function expectations(rel)
  if rel:match("%.json$") then return JSON_EXPECT[rel] or {} end
  local out = {}
  for line in (slurp(ROOT .. "/" .. rel) or ""):gmatch("[^\n]+") do
    local e = line:match("^%-%- expect: (.*)$")
    if e then out[#out + 1] = e end
  end
  return out
end

local COMMANDS = { "init", "import", "validate", "list", "show", "export",
                   "instantiate", "describe", "check", "guide", "sql", "help" }

-- ---------------------------------------------------------------------------
-- Help, version and usage errors (need no store)
-- ---------------------------------------------------------------------------

describe("chameleon CLI usage", function()
  local dir
  lazy_setup(function() dir = mktemp() end)
  lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("lists every command in --help and help", function()
    for _, args in ipairs({ { "--help" }, { "help" }, { "-h" } }) do
      local r = expect(run(dir, args), 0)
      assert_has(r.out, "usage: chameleon")
      for _, name in ipairs(COMMANDS) do
        assert.truthy(r.out:find("\n  " .. name .. " ", 1, true), name .. " missing from help")
      end
      assert_has(r.out, "CHAMELEON_META")
      assert_has(r.out, "Exit status")
    end
  end)

  it("prints --help for every command", function()
    for _, name in ipairs(COMMANDS) do
      for _, args in ipairs({ { name, "--help" }, { "help", name }, { name, "-h" } }) do
        local r = expect(run(dir, args), 0)
        assert_has(r.out, "usage: chameleon " .. name, table.concat(args, " "))
        assert_has(r.out, "Options:")
        assert_has(r.out, "Example:")
        assert.are.equal("", r.err)
      end
    end
  end)

  it("prints its version", function()
    local r = expect(run(dir, { "--version" }), 0)
    assert.truthy(r.out:match("^chameleon %d+%.%d+%.%d+"), r.out)
  end)

  it("rejects an unknown command with exit 2", function()
    local r = expect(run(dir, { "frobnicate" }), 2)
    assert_has(r.err, "chameleon: unknown command 'frobnicate'")
    assert_has(r.err, "chameleon help")
    assert.are.equal("", r.out)
  end)

  it("rejects no command at all with exit 2", function()
    local r = expect(run(dir, {}), 2)
    assert_has(r.err, "usage: chameleon")
  end)

  it("rejects an unknown option with exit 2 and the command's usage", function()
    local r = expect(run(dir, { "list", "--bogus" }), 2)
    assert_has(r.err, "chameleon: list: unknown option '--bogus'")
    assert_has(r.err, "usage: chameleon list")
  end)

  it("rejects missing and extra arguments with exit 2", function()
    assert_has(expect(run(dir, { "show" }), 2).err, "usage: chameleon show")
    assert_has(expect(run(dir, { "import" }), 2).err, "missing argument")
    assert_has(expect(run(dir, { "show", "A", "B" }), 2).err, "unexpected argument 'B'")
    assert_has(expect(run(dir, { "show", "A", "--meta" }), 2).err, "needs a value")
    assert_has(expect(run(dir, { "show", "A", "--version", "x" }), 2).err, "positive integer")
    assert_has(expect(run(dir, { "instantiate", "A" }), 2).err, "missing --out")
    assert_has(expect(run(dir, { "export", "A", "--json", "--dot" }), 2).err, "exclude each other")
    assert_has(expect(run(dir, { "help", "nope" }), 2).err, "unknown command 'nope'")
    assert_has(expect(run(dir, { "json", "--json=1" }), 2).err, "unknown command 'json'")
    assert_has(expect(run(dir, { "list", "--json=1" }), 2).err, "takes no value")
  end)

  it("reports a missing meta-store with exit 4 and a hint", function()
    for _, args in ipairs({ { "list" }, { "show", "X" }, { "export", "X" },
                            { "import", "x.lua" }, { "sql", "SELECT 1" },
                            { "guide" }, { "instantiate", "X", "--out", "i.db" } }) do
      local r = expect(run(dir, args), 4)
      assert_has(r.err, "meta-store 'chameleon-meta.db' does not exist")
      assert_has(r.err, "hint: create it with 'chameleon init")
    end
    assert.is_false(exists(dir .. "/chameleon-meta.db"))
  end)

  it("reports a missing instance with exit 4", function()
    for _, args in ipairs({ { "describe", "none.db" }, { "check", "none.db" },
                            { "guide", "--instance", "none.db" } }) do
      assert_has(expect(run(dir, args), 4).err, "instance store 'none.db' does not exist")
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- init
-- ---------------------------------------------------------------------------

describe("chameleon init", function()
  local dir
  lazy_setup(function() dir = mktemp() end)
  lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("creates ./chameleon-meta.db by default, and is idempotent", function()
    local r = expect(run(dir, { "init" }), 0)
    assert.are.equal("created meta-store chameleon-meta.db\n", r.out)
    assert.is_true(exists(dir .. "/chameleon-meta.db"))
    r = expect(run(dir, { "init" }), 0)
    assert.are.equal("meta-store chameleon-meta.db is up to date\n", r.out)
  end)

  it("honours --meta (before or after the command) and CHAMELEON_META", function()
    expect(run(dir, { "init", "--meta", "a.db" }), 0)
    expect(run(dir, { "--meta", "b.db", "init" }), 0)
    expect(run(dir, { "init", "--meta=c.db" }), 0)
    expect(run(dir, { "init" }, "CHAMELEON_META=d.db"), 0)
    for _, f in ipairs({ "a.db", "b.db", "c.db", "d.db" }) do
      assert.is_true(exists(dir .. "/" .. f), f)
    end
    local r = expect(run(dir, { "init", "--json", "--meta", "e.db" }), 0)
    local v = json_decode(r.out)
    assert.are.equal("e.db", v.meta)
    assert.is_true(v.created)
  end)

  it("fails with exit 1 on a file that is not a store", function()
    spit(dir .. "/junk.db", string.rep("this is not sqlite\n", 100))
    local r = expect(run(dir, { "init", "--meta", "junk.db" }), 1)
    assert_has(r.err, "chameleon: init: cannot open meta-store 'junk.db'")
  end)

  it("refuses another program's SQLite database and never writes to it", function()
    local foreign = dir .. "/theirs.db"
    assert.is_true(os.execute("sqlite3 " .. q(foreign) ..
      " 'CREATE TABLE t(x); INSERT INTO t VALUES (1)' >/dev/null"))
    local before = slurp(foreign)
    local r = expect(run(dir, { "init", "--meta", "theirs.db" }), 1)
    assert_has(r.err, "theirs.db: not a Chameleon meta-store: it is another SQLite database "
      .. "(application_id 0, 1 schema objects), left untouched (give a store made by chameleon init)")
    r = expect(run(dir, { "describe", "theirs.db" }), 1)
    assert_has(r.err, "theirs.db: not a Chameleon instance store: it is another SQLite database")
    expect(run(dir, { "repl", "theirs.db" }), 1)
    assert.are.equal(before, slurp(foreign), "the foreign database was changed")
    assert.is_nil(slurp(foreign .. "-wal"), "a WAL file was left next to the foreign database")
    -- an empty file is no instance store either; a meta-store is not an instance
    spit(dir .. "/nothing.db", "")
    assert_has(expect(run(dir, { "describe", "nothing.db" }), 1).err,
      "nothing.db: not a Chameleon instance store: the file holds no database (make one with chameleon instantiate)")
    assert.are.equal("", slurp(dir .. "/nothing.db"))
    expect(run(dir, { "init", "--meta", "m.db" }), 0)
    assert_has(expect(run(dir, { "describe", "m.db" }), 1).err,
      "m.db: is a Chameleon meta-store, not an instance store")
  end)

  it("lists an empty store", function()
    expect(run(dir, { "init", "--meta", "empty.db" }), 0)
    assert_has(expect(run(dir, { "list", "--meta", "empty.db" }), 0).out, "no workflows")
    local v = json_decode(expect(run(dir, { "list", "--meta", "empty.db", "--json" }), 0).out)
    assert.are.equal(0, #v)
  end)
end)

-- ---------------------------------------------------------------------------
-- Invalid definitions
-- ---------------------------------------------------------------------------

assert(#INVALID > 0, "tests/fixtures/invalid/*.lua is missing")
do
  describe("chameleon import of invalid definitions", function()
    local dir
    lazy_setup(function()
      dir = mktemp()
      expect(run(dir, { "init" }), 0)
      assert(os.execute("ln -s " .. q(ROOT .. "/tests") .. " " .. q(dir .. "/tests")))
    end)
    lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

    for _, rel in ipairs(INVALID) do
      it("rejects " .. rel .. " with exit 3 and every expected message", function()
        -- dir/tests links to the repository's tests/, so the relative
        -- path gives messages exactly as the fixture's expectations.
        local want = expectations(rel)
        assert.truthy(#want > 0, rel .. " has no expectation")
        local n = #want .. (#want == 1 and " violation" or " violations")
        local r = expect(run(dir, { "import", rel }), 3)
        for _, w in ipairs(want) do assert_has(r.err, w .. "\n", "stderr") end
        assert_has(r.err, "chameleon: import: " .. rel .. ": definition is invalid (" .. n .. "):")
        assert_has(r.err, "hint: ")
        r = expect(run(dir, { "validate", rel }), 3)
        for _, w in ipairs(want) do assert_has(r.err, w .. "\n", "stderr") end
        assert_has(r.err, "chameleon: validate: " .. rel .. ": definition is invalid (" .. n .. "):")
        local v = json_decode(expect(run(dir, { "validate", "--json", rel }), 3).out)
        assert.is_false(v[1].ok)
        assert.are.equal("INVALID", v[1].code)
        assert.are.same(want, v[1].report.errors)
      end)
    end

    it("stored nothing for them", function()
      local v = json_decode(expect(run(dir, { "list", "--json" }), 0).out)
      assert.are.equal(0, #v)
    end)
  end)
end

-- ---------------------------------------------------------------------------
-- The reference workflows: import, list, show, export, instantiate...
-- ---------------------------------------------------------------------------

assert(#WORKFLOWS > 0, "workflows/*.lua is missing")
do
  describe("chameleon with the reference workflows", function()
    local dir, names, master, roles_of = nil, {}, nil, {}

    lazy_setup(function()
      dir = mktemp()
      expect(run(dir, { "init" }), 0)
    end)
    lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

    -- Child workflows must be stored before the workflows that use them:
    -- import in passes until nothing more succeeds.
    local function import_all(d, files, extra)
      local left, out = {}, {}
      for _, f in ipairs(files) do left[#left + 1] = f end
      while #left > 0 do
        local still = {}
        for _, f in ipairs(left) do
          local args = { "import", f }
          for _, a in ipairs(extra or {}) do args[#args + 1] = a end
          local r = run(d, args)
          if r.code == 0 then out[f] = r.out else still[#still + 1] = f end
        end
        if #still == #left then
          local r = run(d, { "import", still[1] })
          expect(r, 0) -- shows why it fails
        end
        left = still
      end
      return out
    end

    it("imports every workflow", function()
      local files = {}
      for _, rel in ipairs(WORKFLOWS) do files[#files + 1] = ROOT .. "/" .. rel end
      local out = import_all(dir, files)
      for _, f in ipairs(files) do
        local name, version = out[f]:match("^imported (%S+) version (%d+)\n$")
        assert.truthy(name, out[f])
        assert.are.equal("1", version)
        names[#names + 1] = name
      end
      table.sort(names)
    end)

    it("says unchanged on re-import", function()
      for _, rel in ipairs(WORKFLOWS) do
        local r = expect(run(dir, { "import", ROOT .. "/" .. rel }), 0)
        assert.truthy(r.out:match("^unchanged %S+ version 1\n$"), r.out)
      end
    end)

    it("keeps going after a bad file and exits with its status", function()
      local r = run(dir, { "import", "missing.lua", ROOT .. "/" .. WORKFLOWS[1] })
      assert.are_not.equal(0, r.code)
      assert_has(r.err, "chameleon: import: ")
      assert_has(r.err, "missing.lua")
      assert.truthy(r.out:match("^unchanged %S+ version 1\n$"), r.out)
      local v = json_decode(run(dir, { "import", "--json", "missing.lua",
                                       ROOT .. "/" .. WORKFLOWS[1] }).out)
      assert.is_false(v[1].ok)
      assert.is_true(v[2].ok)
      assert.are.equal("unchanged", v[2].report.status)
    end)

    it("validates them, with or without a meta-store", function()
      for _, rel in ipairs(WORKFLOWS) do
        local r = expect(run(dir, { "validate", ROOT .. "/" .. rel }), 0)
        assert.are.equal(ROOT .. "/" .. rel .. ": ok\n", r.out)
      end
      -- Without a meta-store nothing is created; files are checked alone.
      local r = run(dir, { "validate", "--meta", "nowhere.db", ROOT .. "/" .. WORKFLOWS[1] })
      assert.is_false(exists(dir .. "/nowhere.db"))
      assert.truthy(r.code == 0 or r.code == 3, r.err)
    end)

    it("lists them as a table and as JSON", function()
      local r = expect(run(dir, { "list" }), 0)
      assert.truthy(r.out:match("^NAME%s+LATEST%s+VERSIONS%s+CREATED\n"), r.out)
      for _, n in ipairs(names) do
        assert.truthy(r.out:find("\n" .. lit(n) .. "%s+1%s+1%s+%d"), n .. " in\n" .. r.out)
      end
      local v = json_decode(expect(run(dir, { "list", "--json" }), 0).out)
      assert.are.equal(#names, #v)
      for _, item in ipairs(v) do
        assert.are.equal(1, item.latest)
        assert.are.equal(1, #item.versions)
      end
    end)

    it("shows each workflow as text and as JSON", function()
      for _, n in ipairs(names) do
        local v = json_decode(expect(run(dir, { "show", n, "--json" }), 0).out)
        assert.are.equal(n, v.name)
        assert.are.equal(1, v.version)
        for _, k in ipairs({ "roles", "interactions", "components", "guardians",
                             "actors", "assignments" }) do
          assert.are.equal("table", type(v[k]), k)
        end
        roles_of[n] = v.roles
        for _, role in ipairs(v.roles) do
          if role.type == "ALPHA" and master == nil then master = n end
        end
        -- Options may come before the name; --version 1 is the latest.
        local same = expect(run(dir, { "show", "--json", "--version", "1", n }), 0).out
        assert.are.equal(json_decode(same).workflow_id, v.workflow_id)

        local r = expect(run(dir, { "show", n }), 0)
        assert.truthy(r.out:match("^" .. lit(n) .. " version 1"), r.out)
        for _, section in ipairs({ "Roles (", "Interactions (", "Components (", "Guardians (" }) do
          assert_has(r.out, section)
        end
        for _, role in ipairs(v.roles) do
          assert.truthy(r.out:find("\n  " .. lit(role.name) .. "%s+" .. role.type),
            role.name .. " in\n" .. r.out)
        end
      end
    end)

    it("reports an unknown workflow or version with exit 4", function()
      local r = expect(run(dir, { "show", "NO-SUCH-WF" }), 4)
      assert_has(r.err, "chameleon: show: ")
      assert_has(r.err, "NO-SUCH-WF")
      expect(run(dir, { "show", names[1], "--version", "99" }), 4)
      r = expect(run(dir, { "export", "NO-SUCH-WF", "-o", "x.json" }), 4)
      assert_has(r.err, "hint: 'chameleon list --meta chameleon-meta.db'")
      assert.is_false(exists(dir .. "/x.json"))
    end)

    it("exports DOT", function()
      for _, n in ipairs(names) do
        local r = expect(run(dir, { "export", n, "--dot" }), 0)
        assert.truthy(r.out:match("^digraph"), r.out)
      end
    end)

    it("exports JSON that imports back byte-identically", function()
      local other = dir .. "/other"
      os.execute("mkdir -p " .. q(other))
      expect(run(other, { "init" }), 0)
      local files = {}
      for _, n in ipairs(names) do
        local f = dir .. "/" .. n .. ".json"
        local r = expect(run(dir, { "export", n, "-o", f }), 0)
        assert.are.equal("", r.out)
        local text = slurp(f)
        assert.are.equal(n, json_decode(text).name)
        -- stdout and -o give the same bytes; --json is the default.
        assert.are.equal(text, expect(run(dir, { "export", "--json", n }), 0).out)
        files[#files + 1] = f
        -- Re-import into the same store: the same definition, unchanged.
        local u = expect(run(dir, { "import", f }), 0)
        assert.are.equal("unchanged " .. n .. " version 1\n", u.out)
      end
      import_all(other, files)
      for _, n in ipairs(names) do
        local again = other .. "/" .. n .. ".again.json"
        expect(run(other, { "export", n, "--output", again }), 0)
        assert.are.equal(slurp(dir .. "/" .. n .. ".json"), slurp(again), n)
      end
    end)

    it("instantiates, describes and checks an instance", function()
      local n = master or names[1]
      local r = expect(run(dir, { "instantiate", n, "--out", "inst.db", "--name", "cli-test" }), 0)
      assert.truthy(r.out:match("^instance%s+%x+%-"), r.out)
      assert_has(r.out, "inst.db")
      assert.is_true(exists(dir .. "/inst.db"))

      r = expect(run(dir, { "describe", "inst.db" }), 0)
      assert_has(r.out, "cli-test")
      assert_has(r.out, "Workflow " .. n)
      assert_has(r.out, "(master)")
      for _, role in ipairs(roles_of[n]) do assert_has(r.out, role.name) end
      local v = json_decode(expect(run(dir, { "describe", "--json", "inst.db" }), 0).out)
      assert.are.equal("table", type(v.workflows))

      r = expect(run(dir, { "check", "inst.db" }), 0)
      assert.truthy(r.out:match("^inst%.db: ok"), r.out)

      -- Never overwrites.
      r = expect(run(dir, { "instantiate", n, "--out", "inst.db" }), 5)
      assert_has(r.err, "chameleon: instantiate: ")
      assert_has(r.err, "hint: ")
      assert.are.equal(4, run(dir, { "instantiate", "NO-SUCH-WF", "--out", "x.db" }).code)
      assert.is_false(exists(dir .. "/x.db"))
    end)

    it("describes and checks an instance whose meta-store is gone (air gap)", function()
      local gap = dir .. "/gap"
      os.execute("mkdir -p " .. q(gap))
      expect(run(gap, { "init", "--meta", "m.db" }), 0)
      for _, n in ipairs(names) do
        expect(run(gap, { "import", "--meta", "m.db", dir .. "/" .. n .. ".json" }), 0)
      end
      expect(run(gap, { "instantiate", "--meta", "m.db", master or names[1], "--out", "i.db" }), 0)
      os.execute("cd " .. q(gap) .. " && rm -f m.db m.db-wal m.db-shm")
      assert.is_false(exists(gap .. "/m.db"))
      local r = expect(run(gap, { "describe", "i.db" }), 0)
      assert_has(r.out, "(master)")
      expect(run(gap, { "check", "i.db" }), 0)
      expect(run(gap, { "guide", "--instance", "i.db", "Local_Roles" }), 0)
      assert.is_false(exists(gap .. "/m.db"))
    end)

    it("guides through every column of Local_Roles with a description", function()
      local cols = json_decode(expect(run(dir, { "sql", "--instance", "inst.db", "--json",
        "SELECT name FROM pragma_table_info('Local_Roles')" }), 0).out)
      assert.truthy(#cols >= 9)
      local r = expect(run(dir, { "guide", "--instance", "inst.db", "Local_Roles" }), 0)
      local header = r.out:match("^[^\n]*")
      assert.truthy(header:match("^TABLE%s+COLUMN%s+TYPE%s+PK%s+FK%s+DESCRIPTION$"), header)
      local at = header:find("DESCRIPTION", 1, true)
      for _, c in ipairs(cols) do
        local line = r.out:match("\nLocal_Roles%s+" .. lit(c.name) .. " [^\n]*")
        assert.truthy(line, c.name .. " missing from\n" .. r.out)
        assert.truthy(line:sub(at + 1):match("%S"), c.name .. " has no description")
      end
      -- JSON form and case-insensitive table names.
      local v = json_decode(expect(run(dir, { "guide", "--instance", "inst.db", "local_roles",
                                             "--json" }), 0).out)
      local described = 0
      for _, row in ipairs(v) do
        assert.are.equal("Local_Roles", row.table_name)
        assert.are.equal("string", type(row.description))
        assert.truthy(row.description:match("%S"), row.column_name)
        -- One row may describe the table itself (column_name "" or null).
        if type(row.column_name) == "string" and row.column_name ~= "" then
          described = described + 1
        end
      end
      assert.are.equal(#cols, described)
      -- The meta-store has a guide too.
      assert_has(expect(run(dir, { "guide", "Template_Roles" }), 0).out, "Template_Roles")
    end)

    it("guide reports an unknown table (quotes escaped) with exit 4", function()
      for _, t in ipairs({ "No_Such_Table", "x' OR '1'='1", "it's" }) do
        local r = expect(run(dir, { "guide", "--instance", "inst.db", t }), 4)
        assert_has(r.err, "no table '" .. t .. "'")
      end
      assert_has(expect(run(dir, { "guide", "--meta", "chameleon-meta.db",
                                   "--instance", "inst.db" }), 2).err, "not both")
    end)

    it("runs read-only SQL and refuses writes", function()
      local r = expect(run(dir, { "sql", "SELECT name, version FROM Template_Workflows ORDER BY name" }), 0)
      assert.truthy(r.out:match("^name%s+version\n%-+%s+%-+\n"), r.out)
      for _, n in ipairs(names) do assert_has(r.out, n) end
      local v = json_decode(expect(run(dir, { "sql", "--json", "SELECT 1 AS one, NULL AS nada" }), 0).out)
      assert.are.equal(1, v[1].one)
      assert.are.equal(NULL, v[1].nada)
      for _, stmt in ipairs({ "DELETE FROM Local_Roles", "DROP TABLE Local_Roles",
                              "SELECT 1; DELETE FROM Local_Roles" }) do
        r = run(dir, { "sql", "--instance", "inst.db", stmt })
        assert.are_not.equal(0, r.code)
        assert_has(r.err, "chameleon: sql: ")
        assert_has(r.err, "read-only")
      end
      local rows = json_decode(expect(run(dir, { "sql", "--instance", "inst.db", "--json",
                                                 "SELECT count(*) AS n FROM Local_Roles" }), 0).out)
      assert.truthy(rows[1].n > 0)
      r = expect(run(dir, { "sql", "SELEC nonsense" }), 1)
      assert_has(r.err, "chameleon: sql: ")
    end)
  end)
end

-- ---------------------------------------------------------------------------
-- validate without a meta-store: the files may name each other
-- ---------------------------------------------------------------------------

describe("chameleon validate without a meta-store", function()
  it("resolves a gateway's child workflow among the files given", function()
    local dir = mktemp()
    local root = assert(io.popen("pwd")):read("l")
    local gw, child = root .. "/workflows/wf_gateway.lua", root .. "/workflows/wf_child_kyc.lua"
    local r = expect(run(dir, { "validate", gw, child }), 0)
    assert.truthy(r.out:find("wf_gateway.lua: ok", 1, true), r.out)
    assert.is_false(io.open(dir .. "/chameleon-meta.db") ~= nil, "validate created a store")
    r = expect(run(dir, { "validate", gw }), 3)
    assert.truthy(r.err:find("[child-workflow]", 1, true), r.err)
    os.execute("rm -rf " .. q(dir))
  end)
end)

-- ---------------------------------------------------------------------------
-- Workflow files that fail to load or run, oversized definitions, and
-- check on an instance whose gateway link was broken behind its back
-- ---------------------------------------------------------------------------

describe("chameleon on files that fail before validation", function()
  local dir
  lazy_setup(function()
    dir = mktemp()
    expect(run(dir, { "init" }), 0)
  end)
  lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("reports a raising file as one violation at its line, without traceback", function()
    spit(dir .. "/boom.lua", "local x = 1\nerror('no workflow here')\n")
    spit(dir .. "/misuse.lua", "return workflow \"X\" {\n  roles = { alpha(42) },\n}\n")
    for _, cmd in ipairs({ "import", "validate" }) do
      local r = expect(run(dir, { cmd, "boom.lua" }), 3)
      assert.are.equal("chameleon: " .. cmd .. ": boom.lua: definition is invalid (1 violation):\n" ..
        "boom.lua:2: [workflow-file] workflow file: expected a file that runs to its end and " ..
        "returns a workflow, found the error: no workflow here\n",
        r.err:match("^(.-\n.-\n)"))
      assert.is_nil(r.err:find("traceback", 1, true), r.err)
      assert.is_nil(r.err:find("lua/", 1, true), r.err)
      r = expect(run(dir, { cmd, "misuse.lua" }), 3)
      assert.are.equal("chameleon: " .. cmd .. ": misuse.lua: definition is invalid (1 violation):\n" ..
        "misuse.lua:2: [workflow-file] workflow file: expected a file that runs to its end and " ..
        'returns a workflow, found the error: alpha: expected a name, as in alpha "name" { ... }, ' ..
        "found a number\n", r.err:match("^(.-\n.-\n)"))
      assert.is_nil(r.err:find("lua/dsl.lua", 1, true), r.err)
    end
  end)

  it("names a bytecode file and says to give source text", function()
    spit(dir .. "/compiled.lua", string.dump(load("return 1")))
    local r = expect(run(dir, { "validate", "compiled.lua" }), 3)
    assert_has(r.err, "compiled.lua: [workflow-file] workflow file: expected Lua source text, " ..
      "found a binary chunk (binary chunks are refused; give Lua source text)\n")
  end)

  it("names the file and says what to do when a definition exceeds the memory cap", function()
    spit(dir .. "/huge.lua", [[
local roles = {
  alpha "start" { outbound = { "inbox" } },
  omega "end" { inbound = { { "room", guard = cerberus "join" } } },
  epsilon "fix" { inbound = { { "ate", guard = pass_thru "t" } }, outbound = { "room" } },
  tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
}
local inters = { "inbox", "room", "ate", "chronos" }
for i = 1, 20000 do
  inters[#inters + 1] = "x" .. i
  roles[#roles + 1] = beta("w" .. i) { description = string.rep("d", 200),
                                       inbound = { "inbox" }, outbound = { "x" .. i } }
  roles[#roles + 1] = beta("v" .. i) { inbound = { "x" .. i }, outbound = { "room" } }
end
return workflow "WF-HUGE" { interactions = inters, roles = roles }
]])
    for _, cmd in ipairs({ "import", "validate" }) do
      local r = run(dir, { cmd, "huge.lua" })
      assert.are_not.equal(0, r.code)
      assert_has(r.err, "chameleon: " .. cmd .. ": huge.lua: the definition is too big to " ..
        cmd .. " (script exceeded its memory cap (64 MiB)); split the workflow into a parent " ..
        "and child workflows joined by recursive gateways (the cap is fixed: no option raises it)")
    end
    local v = json_decode(expect(run(dir, { "list", "--json" }), 0).out)
    assert.are.equal(0, #v)
  end)

  it("check reports a gateway whose link is NULL or points at no workflow", function()
    local gw, child = ROOT .. "/workflows/wf_gateway.lua", ROOT .. "/workflows/wf_child_kyc.lua"
    expect(run(dir, { "import", child }), 0)
    expect(run(dir, { "import", gw }), 0)
    expect(run(dir, { "instantiate", "WF-ONBOARD-001", "--out", "good.db" }), 0)
    expect(run(dir, { "check", "good.db" }), 0)
    local name = lines_of("sqlite3 " .. q(dir .. "/good.db") ..
      " \"SELECT name FROM Local_Roles WHERE is_recursive_gateway = 1\"")
    assert.are.equal(1, #name)
    local cases = {
      { "NULL", "found linked_local_workflow_id NULL" },
      { "'01234567-89ab-7def-8123-456789abcdef'", "found linked_local_workflow_id " ..
        "01234567-89ab-7def-8123-456789abcdef, which is not a workflow of this instance" },
    }
    for i, c in ipairs(cases) do
      local db = dir .. "/broken" .. i .. ".db"
      os.execute("cp " .. q(dir .. "/good.db") .. " " .. q(db))
      assert(os.execute("sqlite3 " .. q(db) .. " \"UPDATE Local_Roles SET " ..
        "linked_local_workflow_id = " .. c[1] .. " WHERE is_recursive_gateway = 1\""))
      local r = expect(run(dir, { "check", "broken" .. i .. ".db" }), 3)
      assert_has(r.err, "instance:WF-ONBOARD-001: [gateway-link] role \"" .. name[1] ..
        "\": expected a recursive gateway linked to a workflow of this instance " ..
        "(Local_Workflows), " .. c[2] .. "\n")
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- Hostile values and damaged or read-only stores
-- ---------------------------------------------------------------------------

describe("chameleon on hostile values and damaged stores", function()
  local dir
  local ROOT_USER = assert(io.popen("id -u")):read("l") == "0"
  local HAVE_SQLITE3 = os.execute("command -v sqlite3 > /dev/null 2>&1") == true

  lazy_setup(function()
    dir = mktemp()
    expect(run(dir, { "init" }), 0)
    expect(run(dir, { "import", ROOT .. "/workflows/wf_fin_001.lua" }), 0)
    expect(run(dir, { "instantiate", "WF-FIN-001", "--out", "fin.db" }), 0)
    for _ = 1, 30 do
      expect(run(dir, { "genesis", "fin.db", "--actor", "ap-specialist",
                        "--attr", "po_amount=100",
                        "--attr", "document=Vendor: ACME Amount: 120 PO: PO-7" }), 0)
    end
  end)

  it("refuses a lease beyond 366 days, naming the value and the range", function()
    local r = expect(run(dir, { "checkout", "fin.db", "--actor", "finance-manager",
                                "--role", "FA-M-001", "--lease", "9223372036854775807" }), 2)
    assert_has(r.err, "option '--lease': '9223372036854775807' is too large: "
      .. "a lease is 1 to 31622400000 ms (366 days)")
    r = expect(run(dir, { "heartbeat", "fin.db", "x", "--actor", "a",
                          "--lease", "99999999999999999999999999" }), 2)
    assert_has(r.err, "'99999999999999999999999999' is too large")
    r = expect(run(dir, { "checkout", "fin.db", "--actor", "finance-manager",
                          "--role", "FA-M-001", "--lease", "0" }), 2)
    assert_has(r.err, "'0' is too small: a lease is 1 to 31622400000 ms")
  end)

  it("refuses a clock outside the years 1970 to 9999 from --now and CHAMELEON_NOW", function()
    local r = expect(run(dir, { "tokens", "fin.db", "--now", "253402300800000" }), 2)
    assert_has(r.err, "option '--now': '253402300800000' is too large: a time is 0 to "
      .. "253402300799999 milliseconds since the epoch (years 1970 to 9999)")
    r = expect(run(dir, { "tokens", "fin.db" }, "CHAMELEON_NOW=-1"), 2)
    assert_has(r.err, "CHAMELEON_NOW='-1' is too small")
    expect(run(dir, { "tokens", "fin.db", "--now", "253402300799999" }), 0)
  end)

  it("says what is wrong with an empty memory key and a negative memory id", function()
    local r = expect(run(dir, { "memory", "fin.db", "set", "FA-M-001", "", "1" }), 3)
    assert_has(r.err, "the KEY of memory set is empty (role 'FA-M-001')")
    -- "-1" reaches the command as an id (it used to be an unknown option)
    r = expect(run(dir, { "memory", "fin.db", "toxic", "-1" }), 4)
    assert_has(r.err, "no memory row '-1' in instance")
  end)

  it("exits 6 naming the file when a table page of the store is damaged", function()
    if not HAVE_SQLITE3 then
      pending("needs the sqlite3 shell to find the log's pages (dbstat)")
      return
    end
    expect(run(dir, { "verify", "fin.db" }), 0)
    os.execute("cp " .. q(dir .. "/fin.db") .. " " .. q(dir .. "/bad.db"))
    -- the leaf pages of Interaction_Logs, never page 1 or the schema
    local pages = lines_of("sqlite3 " .. q(dir .. "/fin.db") ..
      " \"SELECT pageno FROM dbstat WHERE name = 'Interaction_Logs' AND pagetype = 'leaf'\"")
    assert.is_true(#pages > 0)
    for _, p in ipairs(pages) do
      os.execute(string.format("dd if=/dev/zero of=%s bs=4096 seek=%d count=1 conv=notrunc 2>/dev/null",
        q(dir .. "/bad.db"), tonumber(p) - 1))
    end
    local r = expect(run(dir, { "verify", "bad.db" }), 6)
    assert_has(r.err, dir .. "/bad.db: the store file is damaged (database error (")
    assert_has(r.err, "): database disk image is malformed)")
    assert_has(r.err, "restore it from a backup (sqlite3 '" .. dir .. "/bad.db' 'PRAGMA integrity_check'")
  end)

  -- Permissions do not stop root, and CI runs as root: there the CLI runs
  -- as `nobody` (setpriv, util-linux), from a copy of the binary (the
  -- checkout may sit in root's home, which nobody cannot enter). The
  -- redirections are opened by root's shell before setpriv drops to nobody.
  local function run_limited(args)
    if not ROOT_USER then return run(dir, args) end
    os.execute("chmod 755 " .. q(dir) .. " && mkdir -p " .. q(dir .. "/.bin") ..
               " && cp " .. q(BIN) .. " " .. q(dir .. "/.bin/chameleon") ..
               " && chmod -R a+rX " .. q(dir .. "/.bin"))
    local cmd = { "cd", q(dir), "&&", "env -u CHAMELEON_META HOME=/tmp",
                  "setpriv --reuid=65534 --regid=65534 --clear-groups ./.bin/chameleon" }
    for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
    cmd[#cmd + 1] = ">" .. q(dir .. "/.stdout") .. " 2>" .. q(dir .. "/.stderr")
    local _, how, code = os.execute(table.concat(cmd, " "))
    if how == "signal" then code = 128 + code end
    return { code = code, out = slurp(dir .. "/.stdout") or "", err = slurp(dir .. "/.stderr") or "" }
  end

  it("names a read-only store file and says what to do", function()
    -- the directory is writable (the -wal and -shm files can be made), the file is not
    local rw = dir .. "/rwdir"
    os.execute("mkdir " .. q(rw) .. " && chmod 777 " .. q(rw) .. " && cp " .. q(dir .. "/fin.db") .. " " ..
               q(rw .. "/ro.db") .. " && chmod 444 " .. q(rw .. "/ro.db"))
    local before = slurp(rw .. "/ro.db")
    local r = expect(run_limited({ "genesis", "rwdir/ro.db", "--actor", "ap-specialist" }), 1)
    assert_has(r.err, "ro.db: cannot write the store: the file is read-only")
    assert_has(r.err, "make it writable (chmod u+w")
    assert.are.equal(before, slurp(rw .. "/ro.db"), "the read-only store was changed")
  end)

  it("names a read-only directory and says why it must be writable", function()
    local ro = dir .. "/rodir"
    os.execute("mkdir " .. q(ro) .. " && cp " .. q(dir .. "/fin.db") .. " " .. q(ro .. "/ro.db") ..
      " && chmod 666 " .. q(ro .. "/ro.db") .. " && chmod 555 " .. q(ro))
    local r = run_limited({ "tokens", "rodir/ro.db" })
    os.execute("chmod 755 " .. q(ro))
    expect(r, 1)
    assert_has(r.err, "its directory '" .. ro .. "' is not writable, and a store needs "
      .. "to create its -wal and -shm files there")
  end)
end)
