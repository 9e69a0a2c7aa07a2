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
