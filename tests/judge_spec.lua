-- tests/judge_spec.lua — the judge (lua/judge.lua, guardians.lua,
-- routing.lua, steps.lua, conditions.lua) run in plain lua5.4 with a fake
-- `chm` (tiny JSON, a pcall-based run with an instruction budget) and a
-- fake db that answers the judge's few fixed SQL statements from tables.
-- Every ```json example``` block of docs/guardians.md is run as a test.
-- Run from the repository root: busted --lua=lua5.4 tests/judge_spec.lua

package.path = "./lua/?.lua;" .. package.path

-- ======================================================================
-- Fake chm
-- ======================================================================

local NULL = setmetatable({}, { __tostring = function() return "null" end,
                                __metatable = "json.null" })
local ARRAY_MT = { __name = "json.array", __metatable = "json.array" }

local function is_array(t)
  if getmetatable(t) == "json.array" then return true end
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end

local function encode(v)
  if v == NULL or v == nil then return "null" end
  local t = type(v)
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    for p = 14, 17 do
      local s = string.format("%." .. p .. "g", v)
      if tonumber(s) == v or p == 17 then
        if not s:find("[.e]") then s = s .. ".0" end
        return s
      end
    end
  end
  if t == "string" then
    return '"' .. v:gsub('[%c"\\]', function(c)
      local map = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t" }
      return map[c] or string.format("\\u%04x", c:byte())
    end) .. '"'
  end
  if t == "table" then
    local out = {}
    if is_array(v) then
      for i = 1, #v do out[i] = encode(v[i]) end
      return "[" .. table.concat(out, ",") .. "]"
    end
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for i, k in ipairs(keys) do out[i] = encode(k) .. ":" .. encode(v[k]) end
    return "{" .. table.concat(out, ",") .. "}"
  end
  error("cannot encode a " .. t)
end

local function decode(s)
  local pos = 1
  local function ws() pos = s:find("[^ \t\r\n]", pos) or #s + 1 end
  local function fail(what) error(string.format("JSON: %s at %d", what, pos), 0) end
  local value
  local function str()
    local out = {}
    pos = pos + 1
    while true do
      local c = s:sub(pos, pos)
      if c == "" then fail("unterminated string") end
      if c == '"' then pos = pos + 1 break end
      if c == "\\" then
        local e = s:sub(pos + 1, pos + 1)
        local map = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ["/"] = "/",
                      ["\\"] = "\\", ['"'] = '"' }
        if e == "u" then
          out[#out + 1] = utf8.char(tonumber(s:sub(pos + 2, pos + 5), 16))
          pos = pos + 6
        else
          out[#out + 1] = map[e] or fail("bad escape")
          pos = pos + 2
        end
      else
        out[#out + 1] = c
        pos = pos + 1
      end
    end
    return table.concat(out)
  end
  value = function()
    ws()
    local c = s:sub(pos, pos)
    if c == "{" then
      local t = {}
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "}" then pos = pos + 1 return t end
      while true do
        ws()
        if s:sub(pos, pos) ~= '"' then fail("expected a key") end
        local k = str()
        ws()
        if s:sub(pos, pos) ~= ":" then fail("expected ':'") end
        pos = pos + 1
        t[k] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "}" then return t end
        if d ~= "," then fail("expected ',' or '}'") end
      end
    elseif c == "[" then
      local t = setmetatable({}, ARRAY_MT)
      pos = pos + 1
      ws()
      if s:sub(pos, pos) == "]" then pos = pos + 1 return t end
      while true do
        t[#t + 1] = value()
        ws()
        local d = s:sub(pos, pos)
        pos = pos + 1
        if d == "]" then return t end
        if d ~= "," then fail("expected ',' or ']'") end
      end
    elseif c == '"' then
      return str()
    elseif s:sub(pos, pos + 3) == "true" then pos = pos + 4 return true
    elseif s:sub(pos, pos + 4) == "false" then pos = pos + 5 return false
    elseif s:sub(pos, pos + 3) == "null" then pos = pos + 4 return NULL
    end
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
    if not num or num == "" then fail("unexpected character") end
    pos = pos + #num
    return math.tointeger(tonumber(num)) or tonumber(num)
  end
  local v = value()
  ws()
  if pos <= #s then fail("trailing text") end
  return v
end

local function shallow(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local NOW = 1767225600000 -- 2026-01-01T00:00:00.000Z
local counts = { load = 0, run = 0 }
local uuid_n = 0

local fake_chm = {
  json = { encode = encode, decode = decode, null = NULL,
           array = function(t) return setmetatable(t, ARRAY_MT) end },
  uuid = function()
    uuid_n = uuid_n + 1
    return string.format("00000000-0000-7000-8000-%012d", uuid_n)
  end,
  now = function() return NOW end,
  sandbox_env = function()
    local env = {}
    for _, k in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
                         "tonumber", "tostring", "type", "xpcall", "rawequal", "rawget",
                         "rawlen", "rawset", "setmetatable", "getmetatable" }) do
      env[k] = _G[k]
    end
    env.string, env.math, env.table, env.utf8 =
      shallow(string), shallow(math), shallow(table), shallow(utf8)
    return env
  end,
  -- funcinfo: what lualib.c's answers, from the debug library
  funcinfo = function(f)
    local info = debug.getinfo(f, "S")
    local ups, i = {}, 1
    while true do
      local name = debug.getupvalue(f, i)
      if not name then break end
      ups[i], i = name, i + 1
    end
    return { source = info.source, short_src = info.short_src, what = info.what,
             linedefined = info.linedefined, lastlinedefined = info.lastlinedefined,
             upvalues = ups }
  end,
  load = function(src, chunkname, env)
    counts.load = counts.load + 1
    return load(src, chunkname, "t", env)
  end,
  -- run: pcall with an instruction budget (a count hook), like the door.
  run = function(limits, f, ...)
    counts.run = counts.run + 1
    local hit = false
    local old = table.pack(debug.gethook())
    debug.sethook(function()
      hit = true
      error("instruction budget exceeded", 0)
    end, "", limits and limits.instructions or 1000000)
    local res = table.pack(pcall(f, ...))
    debug.sethook(table.unpack(old, 1, 3))
    if not res[1] then return false, tostring(res[2]), hit and "BUDGET" or "SCRIPT" end
    return table.unpack(res, 1, res.n)
  end,
}
_G.chm = fake_chm

local judge = require("judge")
local guardians = require("guardians")
local routing = require("routing")
local steps = require("steps")
local conditions = require("conditions")

-- ======================================================================
-- Fake db: the judge's fixed statements over Lua tables
-- ======================================================================

local SQL = judge.SQL

-- new_db(t) with t = {guardians = {[component_id] = {rows}}, outbound =
-- {[role_id] = {rows}}, consumers = {[interaction_id] = {names}}, roles =
-- {[role_id] = {name, step_source}}, children = {[uow_id] = {statuses}}}.
local function new_db(t)
  t = t or {}
  local db = { calls = {} }
  local function count(sql) db.calls[sql] = (db.calls[sql] or 0) + 1 end
  function db.rows(_, sql, a)
    count(sql)
    local out = {}
    if sql == SQL.guardians then
      for i, r in ipairs((t.guardians or {})[a] or {}) do out[i] = shallow(r) end
    elseif sql == SQL.outbound then
      for i, r in ipairs((t.outbound or {})[a] or {}) do out[i] = shallow(r) end
    elseif sql == SQL.consumers then
      for i, n in ipairs((t.consumers or {})[a] or {}) do out[i] = { name = n } end
    else
      error("fake db: unexpected SQL in rows: " .. sql)
    end
    return out
  end
  function db.one(_, sql, a)
    count(sql)
    if sql == SQL.role then
      local r = (t.roles or {})[a]
      return r and shallow(r)
    elseif sql == SQL.children then
      if t.fail_children then error("SQL error: disk I/O error (in: " .. sql .. ")") end
      local kids = (t.children or {})[a] or {}
      local done, archived = 0, nil -- child i is named "c-<i>"
      for i, s in ipairs(kids) do
        if s == "COMPLETED" or s == "REMEDIATED" or s == "FINALIZED" then done = done + 1 end
        if s == "ARCHIVED" and not archived then archived = "c-" .. i end
      end
      return { n = #kids, done = done, archived = archived }
    end
    error("fake db: unexpected SQL in one: " .. sql)
  end
  function db.exec() error("the judge must not write") end
  return db
end

-- view(fields) -> a token view with defaults.
local function view(fields)
  local v = { uow_id = "t-1", status = "PENDING", version = 1, child_count = 0,
              finished_child_count = 0, workflow = "WF", attrs = {} }
  for k, x in pairs(fields or {}) do v[k] = x end
  return v
end

-- gate1(type, config, attrs, fields, db) -> verdict of one guardian.
local function gate1(gtype, config, attrs, fields, db)
  local g = guardians.compile({ guardian_id = "g-1", name = "g", type = gtype, config = config })
  local f = fields or {}
  f.attrs = attrs or {}
  return guardians.evaluate({ g }, view(f), db or new_db())
end

local function list(...) return setmetatable({ ... }, ARRAY_MT) end

-- ======================================================================
-- The examples of docs/guardians.md
-- ======================================================================

local function doc_examples()
  local f = assert(io.open("docs/guardians.md", "r"))
  local text = f:read("a")
  f:close()
  local out, n = {}, 0
  for block in text:gmatch("```json example\n(.-)\n```") do
    n = n + 1
    out[#out + 1] = { n = n, src = block }
  end
  return out
end

local function example_view(ex)
  local v = view()
  if ex.token and ex.token ~= NULL then
    for k, x in pairs(ex.token) do v[k] = x end
  end
  return v
end

local function run_gate_example(ex)
  local rows = {}
  if ex.guardian then
    rows[1] = { guardian_id = "g", name = "g", type = ex.guardian.type,
                attributes = encode(ex.guardian.config) }
  else
    for i, g in ipairs(ex.guardians) do
      rows[i] = { guardian_id = g.name, name = g.name, type = g.type,
                  attributes = encode(g.config) }
    end
  end
  local db = new_db({ guardians = { ["c-gate"] = rows },
                      children = { ["t-1"] = ex.children or {} } })
  judge.reset()
  local verdict = judge.gate(db, "c-gate", example_view(ex))
  if ex.guardian then
    local d = verdict.decisions[1]
    assert.are.same({ ex.decision, ex.reason }, { d.decision, d.reason })
    assert.are.equal(ex.decision == "PASS", verdict.pass)
    assert.are.equal(ex.decision == "WAIT", verdict.wait)
  else
    local want = ex.verdict
    assert.are.equal(want.pass, verdict.pass)
    assert.are.equal(want.wait, verdict.wait)
    assert.are.equal(want.reason, verdict.reason)
    assert.are.equal(want.rejection, verdict.rejection and verdict.rejection.name)
    local got = {}
    for i, d in ipairs(verdict.decisions) do got[i] = { d.name, d.decision, d.reason } end
    local expect = {}
    for i, d in ipairs(want.decisions) do expect[i] = { d[1], d[2], d[3] } end
    assert.are.same(expect, got)
  end
  local want_inj = ex.injections or (ex.verdict and ex.verdict.injections)
  if want_inj then
    local got = {}
    for i, j in ipairs(verdict.injections) do
      got[i] = { j.guardian_id, j.rule_index, j.field, encode(j.value) }
    end
    local expect = {}
    for i, j in ipairs(want_inj) do expect[i] = { j[1], j[2], j[3], encode(j[4]) } end
    assert.are.same(expect, got)
  end
end

local function run_route_example(ex)
  local role_id = "role-" .. ex.role
  local t = { roles = { [role_id] = { name = ex.role } }, outbound = { [role_id] = {} },
              consumers = {}, guardians = {} }
  local names = {}
  for i, o in ipairs(ex.outbound) do
    local cid = "c-" .. o.name
    names[cid] = o.name
    local r = o.routing
    t.outbound[role_id][i] = { component_id = cid, name = o.name,
                               interaction_id = "i-" .. o.interaction,
                               interaction_name = o.interaction,
                               routing = (r ~= nil and r ~= NULL) and encode(r) or nil }
    t.consumers["i-" .. o.interaction] = o.consumers or {}
    local gs = {}
    for j, flt in ipairs(o.filters or {}) do
      gs[j] = { guardian_id = "g-" .. flt.name, name = flt.name, type = "DIRECTIONAL_FILTER",
                attributes = encode(flt.config) }
    end
    t.guardians[cid] = gs
  end
  judge.reset()
  local res = judge.route(new_db(t), role_id, example_view(ex))
  local want_routed = ex.routed ~= NULL and ex.routed or nil
  assert.are.equal(want_routed, res.component_id and names[res.component_id])
  if want_routed then
    assert.are.equal("i-" .. ex.outbound[(function()
      for i, o in ipairs(ex.outbound) do if o.name == want_routed then return i end end
    end)()].interaction, res.interaction_id)
  else
    assert.is_nil(res.interaction_id)
  end
  assert.are.equal(ex.reason, res.reason)
  local got = {}
  for i, e in ipairs(res.errors) do got[i] = { names[e.component_id], e.message } end
  local expect = {}
  for i, e in ipairs(ex.errors or {}) do expect[i] = { e[1], e[2] } end
  assert.are.same(expect, got)
end

local function run_step_example(ex)
  local role_id = "role-" .. ex.role
  local db = new_db({ roles = { [role_id] = { name = ex.role, step_source = ex.step } } })
  judge.reset()
  local ctx = ex.ctx or {}
  local ok, r, code = judge.step(db, role_id, example_view(ex), { now = NOW, seed = ctx.seed })
  assert.are.equal(ex.ok, ok)
  if ex.ok then
    assert.are.equal(encode(ex.result), encode(r))
  else
    assert.are.same({ ex.error, ex.code }, { r, code })
  end
end

describe("docs/guardians.md examples", function()
  local examples = doc_examples()

  it("has examples", function()
    assert.is_true(#examples >= 50, "found " .. #examples)
  end)

  for _, e in ipairs(examples) do
    it("example " .. e.n, function()
      local ex = decode(e.src)
      if ex.guardian or ex.guardians then
        run_gate_example(ex)
      elseif ex.outbound then
        run_route_example(ex)
      elseif ex.step then
        run_step_example(ex)
      else
        error("example " .. e.n .. " is of no known kind")
      end
    end)
  end
end)

-- ======================================================================
-- Guardians
-- ======================================================================

describe("judge.gate", function()
  before_each(function() judge.reset() end)

  it("passes a component without guardians, with no decisions", function()
    local v = judge.gate(new_db(), "c-none", view())
    assert.are.same({ pass = true, wait = false, decisions = {}, injections = {} }, v)
  end)

  describe("CRITERIA_GATE structured", function()
    local cases = {
      -- operator, threshold, value, decision
      { "GT", 10, 11, "PASS" }, { "GT", 10, 10, "REJECT" },
      { "GTE", 10, 10, "PASS" }, { "GTE", 10, 9.5, "REJECT" },
      { "LT", 10, 9, "PASS" }, { "LT", 10, 10, "REJECT" },
      { "LTE", 10, 10.0, "PASS" }, { "LTE", 10, 11, "REJECT" },
      { "GT", "b", "c", "PASS" }, { "LT", "b", "c", "REJECT" },
      { "EQ", "EUR", "EUR", "PASS" }, { "EQ", "EUR", "USD", "REJECT" },
      { "EQ", 1, 1.0, "PASS" }, { "NE", "EUR", "USD", "PASS" }, { "NE", 3, 3, "REJECT" },
      { "EQ", NULL, NULL, "PASS" }, { "EQ", NULL, 5, "REJECT" }, { "NE", NULL, 5, "PASS" },
      { "EQ", { a = 1 }, { a = 1 }, "PASS" },
      { "EQ", list(1, 2), list(1, 2), "PASS" }, { "EQ", list(1, 2), list(2, 1), "REJECT" },
      { "IN", list("EUR", "USD"), "USD", "PASS" }, { "IN", list("EUR", "USD"), "GBP", "REJECT" },
      { "IN", list(1, 2), 2.0, "PASS" }, { "IN", list(1, 2), "1", "REJECT" },
    }
    for _, c in ipairs(cases) do
      it(string.format("%s %s with %s -> %s", c[1], encode(c[2]), encode(c[3]), c[4]), function()
        local v = gate1("CRITERIA_GATE", { field = "x", operator = c[1], threshold = c[2] },
                        { x = c[3] })
        assert.are.equal(c[4], v.decisions[1].decision)
        assert.are.equal(c[4] == "PASS", v.pass)
      end)
    end

    it("rejects a type mismatch instead of crashing", function()
      local v = gate1("CRITERIA_GATE", { field = "x", operator = "GTE", threshold = 5 },
                      { x = { 1, 2 } })
      assert.is_false(v.pass)
      assert.are.equal("attribute 'x' is the list [1,2], not a number (criterion x GTE 5)",
                       v.rejection.reason)
      v = gate1("CRITERIA_GATE", { field = "x", operator = "EQ", threshold = "5" }, { x = 5 })
      assert.are.equal('attribute \'x\' is the number 5, not a string (criterion x EQ "5")',
                       v.rejection.reason)
      v = gate1("CRITERIA_GATE", { field = "x", operator = "LT", threshold = 5 }, { x = NULL })
      assert.are.equal("attribute 'x' is null, not a number (criterion x LT 5)",
                       v.rejection.reason)
    end)

    it("fills the rejection with the guardian's identity", function()
      local v = gate1("CRITERIA_GATE", { field = "x", operator = "GT", threshold = 5 }, {})
      assert.are.same({ guardian_id = "g-1", name = "g", type = "CRITERIA_GATE",
                        reason = "attribute 'x' is missing (criterion x GT 5)" }, v.rejection)
      assert.are.equal(v.rejection.reason, v.reason)
      assert.is_false(v.wait)
    end)

    it("rejects an unusable config with the reason", function()
      local v = gate1("CRITERIA_GATE", { field = "x", operator = "ABOUT", threshold = 5 }, { x = 5 })
      assert.are.equal('invalid configuration: config.operator: expected one of GT, GTE, LT, '
                       .. 'LTE, EQ, NE, IN, got "ABOUT"', v.rejection.reason)
      v = gate1("CRITERIA_GATE", { field = "x", operator = "IN", threshold = 5 }, { x = 5 })
      assert.are.equal("invalid configuration: config.threshold: expected a non-empty list "
                       .. "for IN, got 5", v.rejection.reason)
      v = gate1("CRITERIA_GATE", { field = "x", operator = "GT" }, { x = 5 })
      assert.are.equal("invalid configuration: config.threshold: missing", v.rejection.reason)
    end)

    it("resolves reserved token fields before attributes", function()
      local v = gate1("CRITERIA_GATE", { field = "child_count", operator = "EQ", threshold = 2 },
                      { child_count = 99 }, { child_count = 2 })
      assert.is_true(v.pass)
    end)
  end)

  describe("CRITERIA_GATE conditions", function()
    it("tests an expression against fields and attributes", function()
      local cfg = { criteria = "status == 'PENDING' and parent_id == null and amount >= 10" }
      assert.is_true(gate1("CRITERIA_GATE", cfg, { amount = 10 }).pass)
      assert.is_false(gate1("CRITERIA_GATE", cfg, { amount = 9 }).pass)
      assert.is_false(gate1("CRITERIA_GATE", cfg, { amount = 10 }, { parent_id = "p" }).pass)
    end)

    it("rejects when the expression is not a boolean", function()
      local v = gate1("CRITERIA_GATE", { criteria = "amount + 1" }, { amount = 1 })
      assert.is_false(v.pass)
      assert.matches('^criteria "amount %+ 1" failed: expression error at column 1: the '
                     .. "condition is a number, not a boolean", v.rejection.reason)
    end)

    it("rejects a division by zero with the error", function()
      local v = gate1("CRITERIA_GATE", { criteria = "amount / 0 > 1" }, { amount = 1 })
      assert.matches("division by zero", v.rejection.reason)
    end)

    it("calls a Lua condition with a token copy it cannot harm", function()
      local attrs = { amount = 5, nested = { n = 1 } }
      local v = gate1("CRITERIA_GATE", { criteria = { lua = [[function(token)
          token.attrs.nested.n = 2
          token.attrs.amount = 100
          token.status = "HACKED"
          return token.amount == 100 and token.uow_id == "t-1" and token.version == 1
        end]] } }, attrs)
      assert.is_true(v.pass)
      assert.are.same({ amount = 5, nested = { n = 1 } }, attrs)
    end)

    it("keeps JSON arrays marked in the copy", function()
      local v = gate1("CRITERIA_GATE", { criteria = { lua = [[function(token)
          return getmetatable(token.items) == "json.array" and #token.items == 0
        end]] } }, { items = list() })
      assert.is_true(v.pass)
    end)

    it("refuses global assignments from a condition", function()
      local v = gate1("CRITERIA_GATE", { criteria = { lua = [[function(token)
          seen = (seen or 0) + 1
          return true
        end]] } }, {})
      assert.is_false(v.pass)
      assert.matches("assignment to global 'seen': conditions and steps cannot keep state "
                     .. "between calls %(use a local%)", v.rejection.reason)
    end)

    it("rejects a Lua condition that does not compile", function()
      local v = gate1("CRITERIA_GATE", { criteria = { lua = "function(token) return end end" } }, {})
      assert.matches("^invalid configuration: config.criteria: ", v.rejection.reason)
      v = gate1("CRITERIA_GATE", { criteria = { lua = "42" } }, {})
      assert.are.equal("invalid configuration: config.criteria: the source is 42, not a Lua "
                       .. "function (function(...) ... end)", v.rejection.reason)
    end)
  end)

  describe("TTL_CHECK", function()
    local cfg = { field = "at", max_age_seconds = 60 }
    it("accepts ms integers and ISO-8601 strings within the age", function()
      for _, at in ipairs({ NOW, NOW - 60000, NOW + 5000, "2025-12-31T23:59:30Z",
                            "2025-12-31T23:59:00.000Z", "2025-12-31T23:59:59.5Z" }) do
        assert.is_true(gate1("TTL_CHECK", cfg, { at = at }).pass, tostring(at))
      end
    end)
    it("rejects older, unparsable, impossible and non-timestamp values", function()
      for _, at in ipairs({ NOW - 60001, "2025-12-31T23:58:59.999Z", "2025-02-29T00:00:00Z",
                            "2026-01-01 00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
                            "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.1234567890Z", true,
                            NULL, { 1 } }) do
        assert.is_false(gate1("TTL_CHECK", cfg, { at = at }).pass, encode(at))
      end
    end)
    it("parses ISO-8601 exactly", function()
      assert.are.equal(0, guardians.parse_iso("1970-01-01T00:00:00Z"))
      assert.are.equal(951868800123, guardians.parse_iso("2000-03-01T00:00:00.123Z"))
      assert.are.equal(951782400000, guardians.parse_iso("2000-02-29T00:00:00Z"))
      assert.are.equal(NOW, guardians.parse_iso("2026-01-01T00:00:00.000Z"))
      assert.is_nil(guardians.parse_iso("1900-02-29T00:00:00Z"))
    end)
    it("rejects a bad max_age_seconds as an invalid configuration", function()
      local v = gate1("TTL_CHECK", { field = "at", max_age_seconds = 0 }, { at = NOW })
      assert.are.equal("invalid configuration: config.max_age_seconds: expected a positive "
                       .. "number, got 0", v.rejection.reason)
    end)
  end)

  describe("COMPOSITE", function()
    local function crit(field, op, th)
      return { type = "CRITERIA_GATE", config = { field = field, operator = op, threshold = th } }
    end
    it("AND needs every step", function()
      local cfg = { op = "AND", guardians = { crit("a", "GT", 1), crit("b", "GT", 1) } }
      assert.is_true(gate1("COMPOSITE", cfg, { a = 2, b = 2 }).pass)
      local v = gate1("COMPOSITE", cfg, { a = 2, b = 0 })
      assert.are.equal("guardians[2] (CRITERIA_GATE): criterion b GT 1 is false (b = 0)",
                       v.rejection.reason)
    end)
    it("nests COMPOSITE in COMPOSITE", function()
      local cfg = { op = "OR", guardians = {
        crit("vip", "EQ", true),
        { type = "COMPOSITE", config = { op = "AND",
          guardians = { crit("a", "GT", 1), crit("b", "GT", 1) } } } } }
      assert.is_true(gate1("COMPOSITE", cfg, { vip = true }).pass)
      assert.is_true(gate1("COMPOSITE", cfg, { vip = false, a = 2, b = 2 }).pass)
      assert.is_false(gate1("COMPOSITE", cfg, { vip = false, a = 2, b = 0 }).pass)
    end)
    it("rejects the whole guard for an invalid step even when another passes", function()
      for _, bad in ipairs({ { type = "NOPE", config = {} },
                             { type = "DIRECTIONAL_FILTER", config = {} },
                             crit("a", "ABOUT", 1), "PASS_THRU" }) do
        local v = gate1("COMPOSITE", { op = "OR", guardians = { { type = "PASS_THRU" }, bad } }, {})
        assert.is_false(v.pass)
        assert.matches("^invalid configuration: guardians%[2%]", v.rejection.reason)
      end
    end)
    it("rejects an empty or malformed composite", function()
      local v = gate1("COMPOSITE", { op = "AND", guardians = list() }, {})
      assert.matches("^invalid configuration: config.guardians: expected a non%-empty list",
                     v.rejection.reason)
      v = gate1("COMPOSITE", { op = "XOR", guardians = { { type = "PASS_THRU" } } }, {})
      assert.are.equal('invalid configuration: config.op: expected AND or OR, got "XOR"',
                       v.rejection.reason)
    end)
    it("refuses nesting deeper than 32 levels", function()
      local cfg = { type = "PASS_THRU" }
      for _ = 1, 40 do cfg = { type = "COMPOSITE", config = { op = "AND", guardians = { cfg } } } end
      local v = gate1("COMPOSITE", cfg.config, {})
      assert.matches("COMPOSITE nested more than 32 levels deep", v.rejection.reason)
    end)
    it("propagates a nested Cerberus WAIT", function()
      local v = gate1("COMPOSITE", { op = "AND", guardians = { { type = "CERBERUS" } } }, {},
                      { status = "PENDING" })
      assert.is_true(v.wait)
      assert.is_nil(v.rejection)
    end)
  end)

  describe("CERBERUS", function()
    it("counts the children in the store only for base tokens", function()
      local db = new_db({ children = { ["t-1"] = { "COMPLETED" } } })
      local v = gate1("CERBERUS", {}, {}, { status = "COMPLETED", child_count = 1,
                                           finished_child_count = 1 }, db)
      assert.is_true(v.pass)
      assert.are.equal(1, db.calls[SQL.children])
      db = new_db()
      v = gate1("CERBERUS", {}, {}, { parent_id = "t-0", status = "COMPLETED" }, db)
      assert.is_false(v.pass)
      assert.is_false(v.wait)
      assert.is_nil(db.calls[SQL.children])
    end)
    it("passes a finished base without children", function()
      assert.is_true(gate1("CERBERUS", {}, {}, { status = "REMEDIATED" }).pass)
    end)
    it("waits (never rejects) while a head is unsatisfied", function()
      local v = gate1("CERBERUS", {}, {}, { status = "ACTIVE" })
      assert.are.same({ false, true }, { v.pass, v.wait })
      assert.is_nil(v.rejection)
      assert.are.equal("WAIT", v.decisions[1].decision)
      assert.matches("^head 1", v.reason)
    end)
    it("raises a database error instead of rejecting the token", function()
      local db = new_db({ fail_children = true,
                    guardians = { c = { { guardian_id = "g", name = "g", type = "CERBERUS",
                                          attributes = "{}" } } } })
      local ok, err = pcall(judge.gate, db, "c", view({ status = "COMPLETED" }))
      assert.is_false(ok)
      assert.matches("disk I/O error", err)
    end)
  end)

  describe("LUA", function()
    it("rejects a predicate that runs out of budget", function()
      local v = gate1("LUA", { predicate = { lua = "function(token) while true do end end" } }, {})
      assert.is_false(v.pass)
      assert.are.equal("predicate failed: instruction budget exceeded", v.rejection.reason)
    end)
    it("treats null as false", function()
      local v = gate1("LUA", { predicate = { lua = "function(token) return token.x end" } },
                      { x = NULL })
      assert.are.equal("predicate returned null", v.rejection.reason)
    end)
    it("rejects a missing predicate as an invalid configuration", function()
      local v = gate1("LUA", {}, {})
      assert.are.equal("invalid configuration: config.predicate: expected {lua = <function "
                       .. "source>}, got nothing", v.rejection.reason)
    end)
    it("cuts the traceback from error messages", function()
      local saved = fake_chm.run
      fake_chm.run = function(...)
        local r = table.pack(saved(...))
        if not r[1] then r[2] = r[2] .. "\nstack traceback:\n\t[C]: in ?" end
        return table.unpack(r, 1, r.n)
      end
      local v = gate1("LUA", { predicate = { lua = "function(token) error('x', 0) end" } }, {})
      fake_chm.run = saved
      assert.are.equal("predicate failed: x", v.rejection.reason)
    end)
  end)

  describe("CONDITIONAL_INJECTOR", function()
    local rules = { rules = {
      { when = "amount > 10", inject = { model = "m1", knowledge = { "k" } } },
      { when = { lua = "function(token) return token.amount > 100 end" },
        inject = { instructions = "be careful" } } } }
    it("adds every matching rule's fields in order", function()
      local v = gate1("CONDITIONAL_INJECTOR", rules, { amount = 500 })
      assert.is_true(v.pass)
      local got = {}
      for i, j in ipairs(v.injections) do got[i] = { j.guardian_id, j.rule_index, j.field } end
      assert.are.same({ { "g-1", 1, "model" }, { "g-1", 1, "knowledge" },
                        { "g-1", 2, "instructions" } }, got)
      assert.are.equal("injected: rule 1 (model, knowledge); rule 2 (instructions)",
                       v.decisions[1].reason)
    end)
    it("never gates, even when every rule fails or the config is unusable", function()
      local v = gate1("CONDITIONAL_INJECTOR", rules, { amount = "x" })
      assert.is_true(v.pass)
      assert.are.same({}, v.injections)
      assert.matches("^no rule matched; rule 1 skipped: .*; rule 2 skipped: .*attempt to compare",
                     v.decisions[1].reason)
      v = gate1("CONDITIONAL_INJECTOR", { rules = 5 }, {})
      assert.is_true(v.pass)
      assert.are.equal("invalid configuration: config.rules: expected a non-empty list of "
                       .. "{when, inject}, got 5; nothing injected", v.decisions[1].reason)
    end)
    it("drops its injections when a later gate rejects", function()
      local a = guardians.compile({ guardian_id = "a", name = "a", type = "CONDITIONAL_INJECTOR",
                                    config = rules })
      local b = guardians.compile({ guardian_id = "b", name = "b", type = "POLICY", config = {} })
      local v = guardians.evaluate({ a, b }, view({ attrs = { amount = 500 } }), new_db())
      assert.is_false(v.pass)
      assert.are.same({}, v.injections)
      assert.are.equal(2, #v.decisions)
    end)
  end)

  describe("through the store", function()
    it("reads and compiles a component's guardians once per state", function()
      local db = new_db({ guardians = { c = {
        { guardian_id = "g1", name = "positive", type = "CRITERIA_GATE",
          attributes = '{"field":"amount","operator":"GT","threshold":0}' },
        { guardian_id = "g2", name = "eur", type = "CRITERIA_GATE",
          attributes = '{"criteria":"currency == \'EUR\'"}' } } } })
      for _ = 1, 3 do
        local v = judge.gate(db, "c", view({ attrs = { amount = 5, currency = "EUR" } }))
        assert.is_true(v.pass)
        assert.are.same({ "positive", "eur" }, { v.decisions[1].name, v.decisions[2].name })
      end
      assert.are.equal(1, db.calls[SQL.guardians])
      -- Reset re-reads the rows, but unchanged sources are not recompiled.
      local before = counts.load
      judge.reset()
      assert.is_true(judge.gate(db, "c", view({ attrs = { amount = 5, currency = "EUR" } })).pass)
      assert.are.equal(2, db.calls[SQL.guardians])
      assert.are.equal(before, counts.load)
    end)
    it("recompiles a guardian whose row changed", function()
      local rows = { { guardian_id = "g1", name = "x", type = "LUA",
                       attributes = '{"predicate":{"lua":"function(t) return true end"}}' } }
      local db = new_db({ guardians = { c = rows } })
      assert.is_true(judge.gate(db, "c", view()).pass)
      rows[1].attributes = '{"predicate":{"lua":"function(t) return false end"}}'
      assert.is_true(judge.gate(db, "c", view()).pass) -- cached for the life of the state
      judge.reset()
      assert.is_false(judge.gate(db, "c", view()).pass)
    end)
    it("rejects a guardian whose attributes are not JSON", function()
      local db = new_db({ guardians = { c = {
        { guardian_id = "g1", name = "x", type = "PASS_THRU", attributes = "{nope" } } } })
      local v = judge.gate(db, "c", view())
      assert.matches("^invalid configuration: invalid JSON: ", v.rejection.reason)
    end)
  end)

  it("decides the same on a structured and an expression gate", function()
    -- speed is measured by `make bench`, never asserted in a test
    local g1 = guardians.compile({ guardian_id = "a", name = "a", type = "CRITERIA_GATE",
      config = { field = "amount", operator = "GT", threshold = 1000 } })
    local g2 = guardians.compile({ guardian_id = "b", name = "b", type = "CRITERIA_GATE",
      config = { criteria = "amount > 1000 and currency == 'EUR'" } })
    local db = new_db()
    for _, list1 in ipairs({ { g1 }, { g2 } }) do
      assert.is_true(guardians.evaluate(list1, view({ attrs = { amount = 1500, currency = "EUR" } }), db).pass)
      local v = guardians.evaluate(list1, view({ attrs = { amount = 500, currency = "EUR" } }), db)
      assert.is_false(v.pass)
      assert.are.equal("REJECT", v.decisions[1].decision)
    end
  end)
end)

-- ======================================================================
-- Routing
-- ======================================================================

describe("judge.route", function()
  -- graph(outs) with outs = {{name, interaction, consumers, routing, filters}}
  local function graph(outs, role)
    local list1 = {}
    for i, o in ipairs(outs) do
      local filters = {}
      for j, f in ipairs(o.filters or {}) do
        filters[j] = routing.compile_filter({ guardian_id = "f" .. j, name = f.name or "df",
                                              config = f.config })
      end
      list1[i] = { component_id = "c-" .. o.name, name = o.name,
                   interaction_id = "i-" .. o.interaction, interaction_name = o.interaction,
                   consumers = o.consumers or {}, router = routing.compile(o.routing),
                   filters = filters }
    end
    return routing.graph(role or "R", list1)
  end
  local function route(g, attrs) return routing.route(g, view({ attrs = attrs or {} })) end

  local three = function(r)
    return graph({ { name = "R->a", interaction = "ia", consumers = { "A" }, routing = r },
                   { name = "R->b", interaction = "ib", consumers = { "B" } },
                   { name = "R->c", interaction = "ic", consumers = { "C", "C2" } } })
  end

  it("resolves targets by component, interaction and consuming role name", function()
    for target, comp in pairs({ ["R->b"] = "c-R->b", ib = "c-R->b", B = "c-R->b",
                                C2 = "c-R->c", ["R->a"] = "c-R->a" }) do
      local r = route(three({ branches = { { when = "true", to = target } } }))
      assert.are.equal(comp, r.component_id, target)
    end
  end)

  it("prefers a component name over an interaction name", function()
    local g = graph({ { name = "x", interaction = "y", routing = { lua = "function() return 'y' end" } },
                      { name = "y", interaction = "z" } })
    assert.are.equal("c-y", route(g).component_id)
  end)

  it("records an unknown target and tries the next component", function()
    local g = graph({ { name = "R->a", interaction = "ia", routing = { lua = "function() return 'nowhere' end" } },
                      { name = "R->b", interaction = "ib", routing = { when = "true" } } })
    local r = route(g)
    assert.are.equal("c-R->b", r.component_id)
    assert.are.same({ { component_id = "c-R->a", message = "component 'R->a' Lua routing chose "
      .. "'nowhere', but 'nowhere' names no outbound component of role 'R' (by component, "
      .. "interaction or consuming role name)" } }, r.errors)
  end)

  it("takes the first true branch even after one that errored", function()
    local r = route(three({ branches = { { when = "x > 1", to = "A" }, { when = "true", to = "C" } },
                            on_error = "B" }))
    assert.are.equal("c-R->c", r.component_id)
    assert.are.equal(1, #r.errors)
  end)

  it("applies on_error before default, and default when nothing errored", function()
    local r = { branches = { { when = "x > 1", to = "A" } }, on_error = "B", default = "C" }
    assert.are.equal("c-R->b", route(three(r)).component_id)
    assert.are.equal("c-R->c", route(three(r), { x = 0 }).component_id)
    assert.are.equal("c-R->a", route(three(r), { x = 2 }).component_id)
  end)

  it("skips a branch whose condition does not compile, recording why", function()
    local r = route(three({ branches = { { when = "x >", to = "A" } }, on_error = "B" }))
    assert.are.equal("c-R->b", r.component_id)
    assert.matches("^component 'R%->a' routing branches%[1%] failed: expression error at column 4",
                   r.errors[1].message)
  end)

  it("records a Lua routing error and a bad result", function()
    local r = route(three({ lua = "function(token) error('boom', 0) end" }))
    assert.is_nil(r.component_id)
    assert.are.equal("component 'R->a' Lua routing failed: boom", r.errors[1].message)
    r = route(three({ lua = "function(token) return 7 end" }))
    assert.are.equal("component 'R->a' Lua routing returned 7; expected a target name or nil",
                     r.errors[1].message)
    r = route(three({ lua = "function(token) while true do end end" }))
    assert.are.equal("component 'R->a' Lua routing failed: instruction budget exceeded",
                     r.errors[1].message)
  end)

  it("records an invalid routing and moves on", function()
    local r = route(three({ sideways = true }))
    assert.is_nil(r.component_id)
    assert.matches("^component 'R%->a' routing is invalid: expected one of", r.errors[1].message)
  end)

  it("ignores components without routing when there are several", function()
    local g = graph({ { name = "R->a", interaction = "ia" }, { name = "R->b", interaction = "ib" } })
    local r = route(g)
    assert.is_nil(r.component_id)
    assert.are.equal("no route matched for role 'R': tried 'R->a' (no routing), 'R->b' "
                     .. "(no routing)", r.reason)
  end)

  it("routes a single outbound only when its condition holds, if it has one", function()
    local g = graph({ { name = "R->a", interaction = "ia", routing = { when = "ok" } } })
    assert.are.equal("c-R->a", route(g, { ok = true }).component_id)
    assert.is_nil(route(g, { ok = false }).component_id)
  end)

  describe("DIRECTIONAL_FILTER", function()
    local function df(cfg)
      return graph({ { name = "R->a", interaction = "ia", filters = { { config = cfg } } },
                     { name = "R->b", interaction = "ib" }, { name = "R->c", interaction = "ic" } })
    end
    it("maps values to interactions, numbers and booleans by their text", function()
      local g = df({ field = "k", routes = { x = "ib", ["2"] = "ic", ["true"] = "ia" } })
      assert.are.equal("c-R->b", route(g, { k = "x" }).component_id)
      assert.are.equal("c-R->c", route(g, { k = 2 }).component_id)
      assert.are.equal("c-R->c", route(g, { k = 2.0 }).component_id)
      assert.are.equal("c-R->a", route(g, { k = true }).component_id)
      assert.is_nil(route(g, { k = "y" }).component_id)
      assert.is_nil(route(g, {}).component_id)
    end)
    it("falls back to its default for a missing or unknown value", function()
      local g = df({ field = "k", routes = { x = "ib" }, default = "ic" })
      local r = route(g, {})
      assert.are.equal("c-R->c", r.component_id)
      assert.are.equal("component 'R->a' directional filter 'df': k = nothing has no route; "
                       .. "default chose 'ic'", r.reason)
    end)
    it("lists each filter's decision: the interaction chosen, or NO_ROUTE", function()
      local g = df({ field = "k", routes = { x = "ib" } })
      assert.are.same({ { guardian_id = "f1", name = "df", type = "DIRECTIONAL_FILTER",
                          decision = "ib", reason = "directional filter 'df': k = \"x\" chose 'ib'" } },
                      route(g, { k = "x" }).decisions)
      local r = route(g, { k = "y" })
      assert.is_nil(r.component_id)
      assert.are.same({ "NO_ROUTE" }, { r.decisions[1].decision })
      -- a route to a name that is no outbound component: the row says so
      local nowhere = route(df({ field = "k", routes = { x = "nowhere" } }), { k = "x" })
      assert.are.same({ "NO_ROUTE" }, { nowhere.decisions[1].decision })
      assert.truthy(nowhere.decisions[1].reason:find("but 'nowhere' names no outbound component", 1, true),
                    nowhere.decisions[1].reason)
      -- no filter tried, no decisions
      local plain = graph({ { name = "R->a", interaction = "ia", routing = { default = "ib" } },
                            { name = "R->b", interaction = "ib" } })
      assert.is_nil(route(plain, {}).decisions)
    end)
    it("records an invalid filter", function()
      local r = route(df({ routes = { x = "ib" } }), { k = "x" })
      assert.is_nil(r.component_id)
      assert.are.equal("directional filter 'df' is invalid: config.field: expected an "
                       .. "attribute name, got nothing", r.errors[1].message)
    end)
  end)

  it("reads a role's graph once per state", function()
    local t = {
      roles = { r1 = { name = "R" } },
      outbound = { r1 = {
        { component_id = "c1", name = "R->a", interaction_id = "ia", interaction_name = "a",
          routing = '{"when":"amount > 10"}' },
        { component_id = "c2", name = "R->b", interaction_id = "ib", interaction_name = "b" } } },
      consumers = { ia = { "A" }, ib = { "B" } },
      guardians = { c2 = { { guardian_id = "g", name = "df", type = "DIRECTIONAL_FILTER",
                             attributes = '{"field":"kind","routes":{"x":"a"},"default":"b"}' } } },
    }
    local db = new_db(t)
    judge.reset()
    assert.are.equal("c1", judge.route(db, "r1", view({ attrs = { amount = 11 } })).component_id)
    local r = judge.route(db, "r1", view({ attrs = { amount = 1, kind = "x" } }))
    assert.are.same({ "c1", "ia" }, { r.component_id, r.interaction_id })
    assert.are.equal("c2", judge.route(db, "r1", view({ attrs = { amount = 1 } })).component_id)
    assert.are.equal(1, db.calls[SQL.outbound])
    assert.are.equal(2, db.calls[SQL.consumers])
    assert.are.equal(1, db.calls[SQL.role])
  end)

  it("records routing that is not JSON", function()
    local db = new_db({ roles = { r1 = { name = "R" } }, outbound = { r1 = {
      { component_id = "c1", name = "R->a", interaction_id = "ia", interaction_name = "a",
        routing = "{oops" } } } })
    judge.reset()
    local r = judge.route(db, "r1", view())
    assert.is_nil(r.component_id)
    assert.matches("^component 'R%->a' routing is invalid: routing: invalid JSON", r.errors[1].message)
  end)
end)

-- ======================================================================
-- Steps
-- ======================================================================

describe("judge.step", function()
  local function step(src, v, ctx, name)
    local db = new_db({ roles = { r = { name = name or "S", step_source = src } } })
    judge.reset()
    return judge.step(db, "r", v or view(), ctx or { now = NOW, seed = 1 })
  end

  it("returns the validated result", function()
    local ok, r = step([[function(token, ctx)
        return {set = {a = 1}, reasoning = "r", children = {{x = 1}, {x = 2}}, teach = {tip = "t"},
                fail = nil, give_up = false, ["end"] = false}
      end]])
    assert.is_true(ok)
    assert.are.same({ set = { a = 1 }, reasoning = "r", children = { { x = 1 }, { x = 2 } },
                      teach = { tip = "t" }, give_up = false, ["end"] = false }, r)
  end)

  it("treats nil as an empty result", function()
    assert.are.same({ true, {} }, { step("function() end") })
  end)

  local bad = {
    { "return 42", "step for role 'S' returned number; expected a table like {set = {...}}" },
    { "return {sett = {}}", "step for role 'S' returned an unknown key \"sett\"; expected set, "
      .. "reasoning, children, teach, fail, give_up or end" },
    { "return {set = 5}", "step for role 'S' returned set = number; expected a table" },
    { "return {set = {[1] = 'x'}}", "step for role 'S' returned set with a key 1; expected names (strings)" },
    { "return {give_up = 'yes'}", "step for role 'S' returned give_up = string; expected a boolean" },
    { "return {children = {1}}", "step for role 'S' returned children[1] = number; expected a "
      .. "table of attributes" },
    { "return {children = {a = {}}}", "step for role 'S' returned children with a non-list key "
      .. "\"a\"; expected a list of attribute tables" },
    { "return {children = 'x'}", "step for role 'S' returned children = string; expected a list "
      .. "of attribute tables" },
    { "return {set = {x = string.len}}", "step for role 'S' returned set.x = function; expected "
      .. "a JSON value" },
    { "return {set = {x = {1, {y = tostring}}}}", "step for role 'S' returned "
      .. "set.x[2].y = function; expected a JSON value" },
    { "return {children = {{a = 1}, {a = tostring}}}", "step for role 'S' returned "
      .. "children[2].a = function; expected a JSON value" },
    { "return {teach = {t = function() end}}", "step for role 'S' returned teach.t = function; "
      .. "expected a JSON value" },
  }
  for _, c in ipairs(bad) do
    it("refuses: " .. c[1], function()
      assert.are.same({ false, c[2], "SCRIPT" }, { step("function() " .. c[1] .. " end") })
    end)
  end

  it("walks a result nested far too deep without overflowing (the engine refuses it by name)", function()
    local ok, r = step([[function()
      local t = {} for _ = 1, 300000 do t = {t} end
      return {set = {x = t}, teach = {y = t}}
    end]])
    assert.is_true(ok, tostring(r))
    assert.are.equal("table", type(r.set.x))
  end)

  it("sees a token view and cannot change the engine's view", function()
    local v = view({ attrs = { amount = 7, list = { 1 } } })
    local ok, r = step([[function(token, ctx)
        local seen = {token.amount, token.attrs.amount, token.status, token.version, token.workflow}
        token.attrs.amount = 0
        token.attrs.list[1] = 99
        return {set = {seen = seen}}
      end]], v)
    assert.is_true(ok)
    assert.are.same({ 7, 7, "PENDING", 1, "WF" }, r.set.seen)
    assert.are.same({ amount = 7, list = { 1 } }, v.attrs)
  end)

  it("reads values nested 200 levels deep and names a deeper one in one line", function()
    local function deep(n) local v = 1 for _ = 1, n do v = { v } end return v end
    local ok, r = step("function(token) return {set = {n = #token.attrs.a}} end",
                       view({ attrs = { a = deep(200) } }))
    assert.is_true(ok)
    assert.are.same({ n = 1 }, r.set)
    local ok2, err, code = step("function() return {} end", view({ attrs = { a = deep(201) } }))
    assert.are.same({ false, "SCRIPT" }, { ok2, code })
    assert.are.equal("step for role 'S' cannot run: attribute 'a' is nested more than 200 levels "
                     .. "deep; at most 200 are allowed", err)
    local ok3, err3 = step("function() return {} end", view(),
                           { now = NOW, seed = 1, memory = { m = deep(300) } })
    assert.is_false(ok3)
    assert.are.equal("step for role 'S' cannot run: memory value 'm' is nested more than 200 "
                     .. "levels deep; at most 200 are allowed", err3)
  end)

  it("gives the step a context view", function()
    local memory = { tips = { "a" } }
    local called
    local ok, r = step([[function(token, ctx)
        ctx.memory.tips[1] = "changed"
        return {set = {now = ctx.now, role = ctx.role, actor = ctx.actor.name,
                       skill = ctx.skills.double(21), tip = ctx.memory.tips[1]}}
      end]], view(), { now = 123, seed = 9, memory = memory, actor = { name = "system" },
                       skills = { double = function(x) called = true return x * 2 end } })
    assert.is_true(ok)
    assert.are.same({ now = 123, role = "S", actor = "system", skill = 42, tip = "changed" }, r.set)
    assert.are.equal("a", memory.tips[1])
    assert.is_true(called)
  end)

  it("draws the same random sequence from the same seed", function()
    local src = [[function(token, ctx)
        local t = {}
        for i = 1, 5 do t[i] = ctx.random(1000) end
        t[6] = ctx.random()
        t[7] = ctx.random(-3, 3)
        return {set = {r = t}}
      end]]
    local _, a = step(src, view(), { seed = 42 })
    local _, b = step(src, view(), { seed = 42 })
    local _, c = step(src, view(), { seed = 43 })
    local _, d = step(src, view(), { seed = "0190f0c2-0000-7000-8000-000000000001" })
    assert.are.same(a.set.r, b.set.r)
    assert.are_not.same(a.set.r, c.set.r)
    assert.are_not.same(a.set.r, d.set.r)
    for i = 1, 5 do assert.is_true(a.set.r[i] >= 1 and a.set.r[i] <= 1000) end
    assert.is_true(a.set.r[6] >= 0 and a.set.r[6] < 1)
    assert.is_true(a.set.r[7] >= -3 and a.set.r[7] <= 3)
  end)

  it("spreads random values over the whole range", function()
    local random = steps.prng(7)
    local seen, sum = {}, 0
    for _ = 1, 6000 do
      local k = random(6)
      seen[k] = (seen[k] or 0) + 1
      sum = sum + random()
    end
    for k = 1, 6 do assert.is_true(seen[k] > 800 and seen[k] < 1200, k .. ": " .. seen[k]) end
    assert.is_true(math.abs(sum / 6000 - 0.5) < 0.02)
    assert.has_error(function() random(0) end, "random: interval is empty")
    assert.has_error(function() random(1.5) end, "random: integer arguments expected")
  end)

  it("returns false with SCRIPT for a step that errors, and BUDGET for a runaway", function()
    assert.are.same({ false, "step S:1: boom", "SCRIPT" },
                    { step("function() error('boom') end") })
    assert.are.same({ false, "instruction budget exceeded", "BUDGET" },
                    { step("function() while true do end end") })
  end)

  it("refuses global assignments from a step", function()
    local ok, err, code = step("function() counter = 1 end")
    assert.is_false(ok)
    assert.matches("assignment to global 'counter'", err)
    assert.are.equal("SCRIPT", code)
  end)

  it("reports a step that does not compile", function()
    local ok, err, code = step("function( return end")
    assert.is_false(ok)
    assert.matches("^step for role 'S' does not compile: ", err)
    assert.are.equal("SCRIPT", code)
  end)

  it("reports a role without a step and an unknown role", function()
    assert.are.same({ false, "role 'S' has no step function", "SCRIPT" }, { step(nil) })
    judge.reset()
    assert.are.same({ false, "unknown role nope", "SCRIPT" },
                    { judge.step(new_db(), "nope", view(), {}) })
  end)

  it("compiles a role's step once per state", function()
    local db = new_db({ roles = { r = { name = "S", step_source = "function() return {} end" } } })
    judge.reset()
    local before = counts.load
    for _ = 1, 5 do assert.is_true((judge.step(db, "r", view(), { seed = 1 }))) end
    assert.are.equal(before + 1, counts.load)
    assert.are.equal(1, db.calls[SQL.role])
  end)
end)

describe("conditions", function()
  it("renders values for reasons", function()
    assert.are.equal('"abc"', conditions.show("abc"))
    assert.are.equal("null", conditions.show(NULL))
    assert.are.equal('{"a":[1,2]}', conditions.show({ a = list(1, 2) }))
    assert.are.equal(60 + 2, #conditions.show(string.rep("x", 100)))
  end)
end)
