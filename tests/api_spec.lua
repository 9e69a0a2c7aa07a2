-- tests/api_spec.lua — the Lua module against its reference: every
-- function of the module table and every method of the meta and instance
-- handles (read from the loaded module at run time) has a heading in
-- docs/lua-api.md; the schema guide (m:guide, inst:guide) answers like
-- `chameleon guide`; option tables raise errors that name the method and
-- the option. Run from the repository root:
--   busted --lua=lua5.4 --cpath="./build/lua/?.so" tests/api_spec.lua
local chm = require("chameleon")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function tmpdir()
  return assert(io.popen("mktemp -d")):read("l")
end

-- The headings (### lines) of docs/lua-api.md, as one string per line.
local function headings()
  local out = {}
  for line in read("docs/lua-api.md"):gmatch("[^\n]+") do
    if line:match("^###") then out[#out + 1] = line end
  end
  return out
end

-- documented(hs, patterns) -> true when a heading holds one of the plain
-- strings of `patterns`.
local function documented(hs, patterns)
  for _, h in ipairs(hs) do
    for _, p in ipairs(patterns) do
      if h:find(p, 1, true) then return true end
    end
  end
  return false
end

-- sorted_keys(t) -> the string keys of t, sorted.
local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do out[#out + 1] = k end
  table.sort(out)
  return out
end

describe("docs/lua-api.md documents the whole module", function()
  local dir, meta, inst
  lazy_setup(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fin_001.lua"))
    assert(meta:instantiate("WF-FIN-001", dir .. "/fin.db"))
    inst = assert(chm.open_instance(dir .. "/fin.db"))
  end)
  lazy_teardown(function()
    if inst then inst:close() end
    if meta then meta:close() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("every module field has a heading", function()
    local hs, missing = headings(), {}
    local keys = sorted_keys(chm)
    assert.is_true(#keys >= 8, "the module table looks empty")
    for _, k in ipairs(keys) do
      -- `chameleon.NAME` or, in a heading grouping several, `NAME(`
      if not documented(hs, { "chameleon." .. k, "`" .. k .. "(" }) then
        missing[#missing + 1] = "chameleon." .. k
      end
    end
    assert.are.same({}, missing)
  end)

  for _, h in ipairs({ { "meta", function() return meta end },
                       { "inst", function() return inst end } }) do
    local prefix, handle = h[1], h[2]
    it("every " .. prefix .. " method has a heading", function()
      local index = assert(getmetatable(handle()).__index, "no __index")
      local hs, missing = headings(), {}
      local keys = sorted_keys(index)
      assert.is_true(#keys >= 8, "the method table looks empty")
      for _, k in ipairs(keys) do
        assert.are.equal("function", type(index[k]), k)
        if not documented(hs, { prefix .. ":" .. k .. "(" }) then
          missing[#missing + 1] = prefix .. ":" .. k .. "()"
        end
      end
      assert.are.same({}, missing)
    end)
  end

  it("the check itself notices a missing method", function()
    assert.is_false(documented(headings(), { "inst:no_such_method(" }))
    assert.is_true(documented(headings(), { "inst:dot(" }))
    assert.is_true(documented(headings(), { "meta:guide(" }))
  end)
end)

describe("guide", function()
  local dir, meta, inst
  lazy_setup(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fin_001.lua"))
    assert(meta:instantiate("WF-FIN-001", dir .. "/fin.db"))
    inst = assert(chm.open_instance(dir .. "/fin.db"))
  end)
  lazy_teardown(function()
    if inst then inst:close() end
    if meta then meta:close() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("meta:guide() lists every table of the meta-store, described", function()
    local rows = assert(meta:guide())
    local tables = {}
    for _, r in ipairs(rows) do
      tables[r.table_name] = true
      assert.are.equal("string", type(r.description), r.table_name .. "." .. tostring(r.column_name))
    end
    for _, t in ipairs({ "Template_Workflows", "Template_Roles", "Template_Interactions",
                         "Template_Components", "Template_Guardians" }) do
      assert.is_true(tables[t] == true, t)
    end
    assert.is_nil(tables.Local_Roles)
  end)

  it("meta:guide(table) gives that table's rows, any case", function()
    local rows = assert(meta:guide("TEMPLATE_ROLES"))
    assert.is_true(#rows > 5)
    for _, r in ipairs(rows) do assert.are.equal("Template_Roles", r.table_name) end
    -- the same rows as the raw view
    local raw = assert(meta:query("SELECT count(*) AS n FROM v_ai_schema_guide " ..
                                  "WHERE table_name = 'Template_Roles'"))
    assert.are.equal(raw[1].n, #rows)
  end)

  it("inst:guide(table) answers for Local_Roles with every column described", function()
    local rows = assert(inst:guide("Local_Roles"))
    local cols = assert(inst:query("SELECT name FROM pragma_table_info('Local_Roles')"))
    local described = {}
    for _, r in ipairs(rows) do
      assert.are.equal("Local_Roles", r.table_name)
      assert.is_truthy(r.description:match("%S"))
      if type(r.column_name) == "string" and r.column_name ~= "" then
        described[r.column_name] = true
      end
    end
    for _, c in ipairs(cols) do assert.is_true(described[c.name] == true, c.name) end
  end)

  it("an unknown table is NOTFOUND naming the table and the store", function()
    for _, t in ipairs({ "No_Such_Table", "x' OR '1'='1", "it's" }) do
      local v, err, code = meta:guide(t)
      assert.is_nil(v)
      assert.are.equal("NOTFOUND", code)
      assert.are.equal("no table '" .. t .. "' in the schema guide of '" .. dir .. "/meta.db'", err)
    end
    local v, err, code = inst:guide("Template_Roles")
    assert.are.same({ nil, "NOTFOUND" }, { v, code })
    assert.are.equal("no table 'Template_Roles' in the schema guide of '" .. dir .. "/fin.db'", err)
  end)

  it("raises on misuse", function()
    assert.has_error(function() meta:guide({}) end)
    local m2 = assert(chm.open_meta(dir .. "/other.db"))
    m2:close()
    assert.has_error(function() m2:guide() end, "attempt to use a closed meta-store")
  end)
end)

describe("option tables", function()
  local dir, meta, inst
  lazy_setup(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fin_001.lua"))
    assert(meta:instantiate("WF-FIN-001", dir .. "/fin.db"))
    inst = assert(chm.open_instance(dir .. "/fin.db"))
  end)
  lazy_teardown(function()
    if inst then inst:close() end
    if meta then meta:close() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- { call, exact message }
  local CASES = {
    { function(_, i) return i:eval("return 1", { instructions = "x" }) end,
      "eval: option 'instructions' must be a positive integer, got string" },
    { function(m) return m:eval("return 1", { instructions = "x" }) end,
      "eval: option 'instructions' must be a positive integer, got string" },
    { function(_, i) return i:eval("return 1", { deadline_ms = 0 }) end,
      "eval: option 'deadline_ms' must be a positive integer, got 0" },
    { function(_, i) return i:eval("return 1", { memory_bytes = 1.5 }) end,
      "eval: option 'memory_bytes' must be a positive integer, got 1.5" },
    { function(_, i) return i:eval("return 1", { deadline_ms = 2 ^ 40 }) end,
      "eval: option 'deadline_ms' must be at most 4294967295, got 1099511627776" },
    { function(_, i) return i:eval("return 1", { instruction = 10 }) end,
      "eval: unknown option 'instruction' (known: instructions, deadline_ms, memory_bytes)" },
    { function(_, i) return i:eval("return 1", 100) end,
      "eval: options must be a table, got number" },
    { function(_, i) return i:run({ batch = "all" }) end,
      "run: option 'batch' must be a non-negative integer, got string" },
    { function(_, i) return i:run({ batches = 2 }) end,
      "run: unknown option 'batches' (known: batch, max_steps)" },
    { function(_, i) return i:genesis({}, { workflow = 7 }) end,
      "genesis: option 'workflow' must be a string, got number" },
    { function(_, i) return i:genesis({}, { actors = "x" }) end,
      "genesis: unknown option 'actors' (known: workflow, actor)" },
    { function(m) return m:instantiate("WF-FIN-001", dir .. "/x.db", { version = "one" }) end,
      "instantiate: option 'version' must be a non-negative integer, got string" },
    { function(m) return m:instantiate("WF-FIN-001", dir .. "/x.db", { name = true }) end,
      "instantiate: option 'name' must be a string, got boolean" },
  }

  for n, c in ipairs(CASES) do
    it("#" .. n .. " " .. c[2], function()
      local ok, err = pcall(c[1], meta, inst)
      assert.is_false(ok)
      -- luaL_error prefixes the caller's position, as for any bad argument
      assert.are.equal(c[2], (tostring(err):gsub("^[^:\n]*:%d+: ", "")))
    end)
  end

  it("good options still work and the handle stays usable", function()
    assert.are.equal(2, inst:eval("return 1 + 1", { instructions = 1000, deadline_ms = 500,
                                                     memory_bytes = 64 * 1024 * 1024 }))
    local _, _, code = inst:eval("while true do end", { instructions = 10000 })
    assert.are.equal("BUDGET", code)
    assert.are.same({ steps = 0, moves = 0, failed = 0, commits = 0 },
                    assert(inst:run({ batch = 0, max_steps = 0 })))
    local r = assert(meta:instantiate("WF-FIN-001", dir .. "/y.db", { name = "why", version = 1 }))
    assert.are.equal("why", r.name)
  end)
end)

-- Expression functions (inst:register_function, meta:register_function)
-- with tests/fixtures/engine/tk_exprfn.lua: a CRITERIA_GATE calls
-- risk(amount, country), the routing branches call tier(amount).
describe("expression functions", function()
  local FIXTURE = "tests/fixtures/engine/tk_exprfn.lua"
  local dir, meta, inst
  local n = 0

  lazy_setup(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
  end)
  lazy_teardown(function()
    if inst then inst:close() end
    if meta then meta:close() end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  -- fresh() -> a new instance of TK-EXPRFN (imported by the first test).
  local function fresh()
    if inst then inst:close() end
    n = n + 1
    local path = dir .. "/i" .. n .. ".db"
    assert(meta:instantiate("TK-EXPRFN", path))
    inst = assert(chm.open_instance(path))
    return inst
  end

  -- pass(attrs) -> uow_id: genesis, then checkout and submit by alice;
  -- nil, err when the checkout finds nothing (the gate rejected it).
  local function pass(attrs)
    local id = assert(inst:genesis(attrs, { actor = "alice" }))
    local t, err = inst:checkout("alice", "scorer")
    if not t then return nil, err, id end
    assert.are.equal(id, t.uow_id)
    assert(inst:submit(id, "alice", t.version, {}))
    return id
  end

  it("import knows only the names registered on the meta handle", function()
    local ok, err, code = meta:import(FIXTURE)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.truthy(err:find("unknown function 'risk'", 1, true), err)
    ok, err, code = meta:register_function("len")
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.truthy(err:find("host function 'len' would shadow a built-in", 1, true), err)
    assert.is_true(meta:register_function("risk"))
    assert.is_true(meta:register_function("tier", function() end))
    assert.has_error(function() meta:register_function("x", 42) end)
    assert(meta:import(FIXTURE))
  end)

  it("hands an empty list literal to the host as a JSON array", function()
    local wf = dir .. "/listarg.lua"
    local f = assert(io.open(wf, "w"))
    f:write([=[
return workflow "TK-LISTARG" {
  interactions = { "inbox", "joined", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "inbox" } },
    beta "w" {
      inbound = { { "inbox", guard = criteria "shape" "shape([]) == '[]' and shape([1, 'a']) == '[1,\"a\"]'" } },
      outbound = { "joined" },
    },
    omega "close" { inbound = { { "joined", guard = cerberus "join" } } },
    epsilon "doctor" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "joined" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "alice" { type = "HUMAN", roles = { "w", "close", "doctor", "clock" } } },
}
]=])
    f:close()
    assert.is_true(meta:register_function("shape"))
    assert(meta:import(wf))
    if inst then inst:close() end
    assert(meta:instantiate("TK-LISTARG", dir .. "/listarg.db"))
    inst = assert(chm.open_instance(dir .. "/listarg.db"))
    assert.is_true(inst:register_function("shape", function(x) return chm.json.encode(x) end))
    local id = assert(inst:genesis({}))
    local t = assert(inst:checkout("alice", "w"))
    assert.are.equal(id, t.uow_id)
  end)

  it("a gate and routing branches call the host's Lua functions", function()
    fresh()
    local seen = {}
    assert.is_true(inst:register_function("risk", function(amount, country)
      seen[#seen + 1] = { amount, country }
      if country == "XX" then error("no data for XX", 0) end
      return amount / 10
    end))
    assert.is_true(inst:register_function("tier", function(amount)
      if amount == 13 then error("no tier for 13", 0) end
      return amount >= 100 and "high" or "low"
    end))
    local high = assert(pass({ amount = 200, country = "DE" }))
    assert.are.same({ { 200, "DE" } }, seen)
    assert.are.equal("high", inst:token(high).interaction)
    local low = assert(pass({ amount = 20, country = "FR" }))
    assert.are.equal("low", inst:token(low).interaction)
    -- a tier error: routing takes on_error
    local checks = assert(pass({ amount = 13, country = "FR" }))
    assert.are.equal("checks", inst:token(checks).interaction)
    local h = inst:history(checks)
    local details = chm.json.encode(h[#h].details)
    assert.truthy(details:find("function 'tier' failed: no tier for 13", 1, true), details)
    assert.truthy(details:find("on_error chose 'checks'", 1, true), details)
    -- false, and an error: both rejected at the gate with the reason
    local _, _, big = pass({ amount = 1000, country = "DE" })
    assert.are.equal("FAILED", inst:token(big).status)
    assert.truthy(inst:token(big).failure_reason:find('"risk(amount, country) < 50" is false', 1, true))
    local _, _, xx = pass({ amount = 5, country = "XX" })
    local t = inst:token(xx)
    assert.are.same({ "FAILED", "ate" }, { t.status, t.interaction })
    assert.truthy(t.failure_reason:find("function 'risk' failed: no data for XX", 1, true),
                  t.failure_reason)
  end)

  it("get nil for a null argument; registering again replaces", function()
    fresh()
    local got = "unset"
    inst:register_function("tier", function() return "low" end)
    inst:register_function("risk", function(_, country) got = country; return 0 end)
    assert(pass({ amount = 1, country = chm.json.null }))
    assert.is_nil(got)
    inst:register_function("risk", function() return 99 end)
    local ok, _, id = pass({ amount = 1, country = "DE" })
    assert.is_nil(ok)
    assert.truthy(inst:token(id).failure_reason:find("is false", 1, true))
  end)

  it("refuse built-in names, and any use of the busy instance", function()
    fresh()
    local ok, err, code = inst:register_function("sqrt", function() end)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.truthy(err:find("host function 'sqrt' would shadow a built-in", 1, true), err)
    assert.is_nil((inst:register_function("not", function() end)))
    assert.has_error(function() inst:register_function("f", "not a function") end)
    inst:register_function("tier", function() return "low" end)
    inst:register_function("risk", function() return inst:tokens() end)
    local _, _, id = pass({ amount = 1, country = "DE" })
    assert.truthy(inst:token(id).failure_reason:find(
      "attempt to use an instance from inside one of its skills or expression functions", 1, true))
    assert.is_true(inst:verify().ok) -- still usable
  end)
end)

describe("argument errors and value ranges", function()
  local dir, meta, inst
  lazy_setup(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fin_001.lua"))
    assert(meta:instantiate("WF-FIN-001", dir .. "/fin.db"))
    inst = assert(chm.open_instance(dir .. "/fin.db"))
  end)
  lazy_teardown(function()
    if inst then inst:close() end
    if meta then meta:close() end
    chm.clock_real()
  end)

  -- err(f, ...) -> the message f(...) raised (fails when it returns).
  local function err(f, ...)
    local ok, e = pcall(f, ...)
    assert.is_false(ok, "expected an error")
    return e
  end

  it("name the method however it is called (pcall, tail call)", function()
    -- each as the audit found them: '?' instead of the name
    assert.are.equal("bad argument #1 to 'genesis' (table expected, got string)",
      err(inst.genesis, inst, "x"))
    local e = err(function() return inst:token(nil) end)
    assert.truthy(e:find("bad argument #1 to 'token' (string expected, got nil)", 1, true), e)
    assert.are.equal("calling 'import' on bad self (chameleon.meta expected, got chameleon.instance)",
      err(meta.import, inst, "x.lua"))
    assert.are.equal("bad argument #1 to 'checkout' (string expected, got table)",
      err(inst.checkout, inst, {}, "FA-M-001"))
    assert.are.equal("bad argument #2 to 'export' (invalid option 'svg')",
      err(meta.export, meta, "WF-FIN-001", "svg"))
    assert.are.equal("bad argument #1 to 'memory_decay' (number expected, got string)",
      err(inst.memory_decay, inst, "x"))
    assert.are.equal("bad argument #1 to 'clock_advance' (number has no integer representation)",
      err(chm.clock_advance, 1.5))
    assert.are.equal("bad argument #1 to 'open_instance' (string expected, got no value)",
      err(chm.open_instance))
  end)

  it("refuse a lease beyond 366 days and leave the lease as it was", function()
    local e = err(inst.set_lease_ms, inst, math.maxinteger)
    assert.truthy(e:find("lease length 9223372036854775807 ms is out of range: give 1 to 31622400000 ms", 1, true), e)
    assert.has_error(function() inst:set_lease_ms(0) end)
    assert.is_true(inst:set_lease_ms(31622400000))
    assert.is_true(inst:set_lease_ms(300000))
  end)

  it("refuse clock readings outside the years 1970 to 9999", function()
    chm.clock_set_virtual(1000)
    local e = err(chm.clock_advance, math.maxinteger)
    assert.truthy(e:find("bad argument #1 to 'clock_advance' (advancing the clock (1000 ms) by "
      .. "9223372036854775807 ms leaves the range 0 to 253402300799999", 1, true), e)
    assert.are.equal(1000, chm.clock_now())
    e = err(chm.clock_set_virtual, 253402300800000)
    assert.truthy(e:find("clock reading 253402300800000 ms is out of range: give 0 to 253402300799999", 1, true), e)
    assert.has_error(function() chm.clock_set_virtual(-1) end)
    assert.has_error(function() chm.clock_advance(-1001) end)
    assert.are.equal(1000, chm.clock_now())
    -- a token checked out at the last instant a lease allows still works
    chm.clock_set_virtual(253402300799999 - 31622400000)
    assert.is_true(inst:set_lease_ms(31622400000))
    assert(inst:genesis({ po_amount = 100, document = "Vendor: ACME Amount: 120 PO: PO-7" },
      { actor = "ap-specialist" }))
    assert.is_true(inst:verify().ok)
    inst:set_lease_ms(300000)
  end)
end)
