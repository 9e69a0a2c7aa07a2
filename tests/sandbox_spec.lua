-- tests/sandbox_spec.lua — the sandbox as Lua code sees it, through the
-- module: every hostile script in tests/fixtures/hostile, run with
-- meta:eval on ONE handle, ends with the outcome its first line announces
-- ("-- expect: OK <json>", "SCRIPT <substring>", "BUDGET [substring]",
-- "MEMORY [substring]"), and the handle keeps working after each one.
-- tests/c/test_sandbox.c runs the same fixtures against the C internals.
-- Owned by the sandbox contributor. Run from the repository root:
--   busted --lua=lua5.4 --cpath="./build/lua/?.so" tests/sandbox_spec.lua

local chameleon = require("chameleon")
local json = chameleon.json

local DIR = "tests/fixtures/hostile"
local LIMITS = { instructions = 5000000, deadline_ms = 500,
                 memory_bytes = 32 * 1024 * 1024 }
local SLACK_S = 6 -- we never assert speed, only that a script stops

-- The fixture file names, sorted (lfs when installed, else ls).
local function fixture_names()
  local names = {}
  local ok, lfs = pcall(require, "lfs")
  if ok then
    for f in lfs.dir(DIR) do
      if f:match("%.lua$") then names[#names + 1] = f end
    end
  else
    local p = assert(io.popen('ls "' .. DIR .. '"'))
    for f in p:lines() do
      if f:match("%.lua$") then names[#names + 1] = f end
    end
    p:close()
  end
  table.sort(names)
  return names
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- kind, detail from the header line "-- expect: KIND detail".
local function expectation(src)
  return src:match("^%-%- expect: (%u+) ?([^\n]*)")
end

local function temp_db()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".db"
end

local function remove_db(path)
  for _, suffix in ipairs({ "", "-wal", "-shm", "-journal" }) do
    os.remove(path .. suffix)
  end
end

describe("hostile scripts", function()
  local path, meta

  setup(function()
    path = temp_db()
    meta = assert(chameleon.open_meta(path))
  end)

  teardown(function()
    if meta then meta:close() end
    remove_db(path)
  end)

  local names = fixture_names()

  it("are at least 25, each with an expectation header", function()
    assert.is_true(#names >= 25)
    for _, name in ipairs(names) do
      local kind = expectation(read(DIR .. "/" .. name))
      assert.is_truthy(kind, name .. " has no '-- expect:' first line")
    end
  end)

  for _, name in ipairs(names) do
    local src = read(DIR .. "/" .. name)
    local kind, detail = expectation(src)
    it(name .. " ends with " .. tostring(kind), function()
      local t0 = os.time()
      local res, err, code = meta:eval(src, LIMITS)
      assert.is_true(os.time() - t0 <= LIMITS.deadline_ms / 1000 + SLACK_S,
        "took too long to stop")
      if kind == "OK" then
        assert.are.equal(nil, code, err)
        assert.are.equal(detail, json.encode(res))
      else
        assert.are.equal(nil, res)
        assert.are.equal(kind, code, err)
        if detail ~= "" then
          assert.is_truthy(err:find(detail, 1, true),
            ("message %q lacks %q"):format(err, detail))
        end
      end
      -- The same handle still works.
      assert.are.equal(2, meta:eval("return 1 + 1"))
    end)
  end
end)

describe("sandbox environments", function()
  local path, meta

  setup(function()
    path = temp_db()
    meta = assert(chameleon.open_meta(path))
  end)

  teardown(function()
    if meta then meta:close() end
    remove_db(path)
  end)

  it("are fresh for every eval", function()
    assert.are.equal(nil, meta:eval("x = 1; string.upper = nil; return nil"))
    assert.are.equal(nil, meta:eval("return x"))
    assert.are.equal("A", meta:eval("return string.upper('a')"))
  end)

  it("apply the default limits when none are given", function()
    local res, err, code = meta:eval("while true do end")
    assert.are.equal(nil, res)
    assert.are.equal("BUDGET", code)
    assert.is_truthy(err:find("budget of 10000000 instructions", 1, true), err)
  end)

  it("report the deadline when it comes first", function()
    local _, err, code = meta:eval("while true do end",
      { instructions = 1e12, deadline_ms = 100 })
    assert.are.equal("BUDGET", code)
    assert.is_truthy(err:find("deadline of 100 ms", 1, true), err)
  end)

  -- The escapes that swallow a kill (pcall in a loop, an xpcall handler,
  -- coroutines, __close) under a short deadline and a budget they cannot
  -- reach: only the deadline can stop them, and the message must say so.
  -- The time bound is generous: it proves the script stopped, not speed.
  for _, name in ipairs({ "17_close_loop.lua", "18_close_swallow.lua", "20_pcall_loop.lua",
                          "21_xpcall_handler_loop.lua", "22_coroutine_loop.lua",
                          "23_coroutine_pcall.lua", "44_coroutine_close_loop.lua" }) do
    it("stop " .. name .. " at the deadline when the budget is out of reach", function()
      local src = read(DIR .. "/" .. name)
      local t0 = os.time()
      local res, err, code = meta:eval(src, { instructions = 1e12, deadline_ms = 200 })
      assert.is_true(os.time() - t0 <= 0.2 + 30, "did not stop")
      assert.are.equal(nil, res)
      assert.are.equal("BUDGET", code, err)
      assert.is_truthy(err:find("script exceeded its deadline of 200 ms", 1, true), err)
      assert.is_nil(err:find("instruction budget", 1, true), err)
      assert.are.equal(2, meta:eval("return 1 + 1"))
    end)
  end

  it("report script errors with their position", function()
    local _, err, code = meta:eval("local t = nil\nreturn t.x")
    assert.are.equal("SCRIPT", code)
    assert.is_truthy(err:find("eval:2:", 1, true), err)
  end)

  it("let a script catch its own errors but not a kill", function()
    assert.are.same({ false, true },
      meta:eval("local ok, e = pcall(error, 'x') return json.array({ok, e == 'x'})"))
    local _, _, code = meta:eval([[
      local n = 0
      while true do
        local ok = pcall(function() while true do end end)
        n = n + 1
      end]])
    assert.are.equal("BUDGET", code)
  end)

  it("keep the bounded string functions usable", function()
    assert.are.same({ 3, 5, "b-c", "aXc", 2 }, meta:eval([[
      local s = "a-b-c"
      local i, j = s:find("b%-c")
      return json.array({ i, j, s:match("(b%-c)"), ("abc"):gsub("b", "X"),
        select(2, s:gsub("-", "+")) })]]))
    assert.are.equal("x,x,x", meta:eval("return ('x'):rep(3, ',')"))
    assert.are.equal("a b c", meta:eval(
      "local t = {'c', 'a', 'b'} table.sort(t) return table.concat(t, ' ')"))
  end)
end)
