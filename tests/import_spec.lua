-- tests/import_spec.lua — the foundation through the Lua module: import
-- creates versions, unchanged definitions write nothing, a rejected file
-- writes nothing and leaves the older version intact, JSON export → import
-- → export is byte-identical (big integers, floats, unicode, nesting),
-- instantiation deep-copies master and children, and the instance stands
-- alone once the meta-store is deleted (the air gap).
local chm = require("chameleon")

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

-- A minimal valid workflow; `extra` is spliced into the workflow table and
-- `ctx` becomes its ai_context.
local function small(name, ctx, extra)
  return string.format([[
return workflow %q {
  description = "small test workflow",
  ai_context = %s,
  interactions = { "inbox", "room", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "inbox" } },
    beta "work" { inbound = { "inbox" }, outbound = { "room" } },
    omega "end" { inbound = { { "room", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = criteria "failed" "status == 'FAILED'" } },
                    outbound = { "room" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "system" { type = "SYSTEM", roles = { "start", "work", "end", "fix", "clock" } } },
  %s
}
]], name, ctx or "nil", extra or "")
end

-- Row counts of every Template_* table, to prove nothing was written.
local function counts(meta)
  local out = {}
  for _, t in ipairs({ "Template_Workflows", "Template_Roles", "Template_Interactions",
                       "Template_Components", "Template_Guardians", "Template_Actors",
                       "Template_Actor_Role_Assignments" }) do
    out[t] = assert(meta:query("SELECT count(*) AS n FROM " .. t))[1].n
  end
  return out
end

describe("import", function()
  local dir, meta
  before_each(function()
    dir = tmpdir()
    meta = assert(chm.open_meta(dir .. "/meta.db"))
  end)
  after_each(function()
    meta:close()
    os.execute("rm -rf " .. dir)
  end)

  it("creates version 1, says unchanged for the same text, version 2 for a change", function()
    write(dir .. "/a.lua", small("WF-A"))
    local r = assert(meta:import(dir .. "/a.lua"))
    assert.are.same({ "WF-A", 1, "created" }, { r.name, r.version, r.status })
    r = assert(meta:import(dir .. "/a.lua"))
    assert.are.same({ 1, "unchanged" }, { r.version, r.status })
    write(dir .. "/a.lua", small("WF-A", '{ goal = "changed" }'))
    r = assert(meta:import(dir .. "/a.lua"))
    assert.are.same({ 2, "created" }, { r.version, r.status })
    local list = assert(meta:list())
    assert.are.equal(1, #list)
    assert.are.equal(2, list[1].latest)
    assert.are.equal(2, #list[1].versions)
  end)

  it("rejects a broken file atomically and leaves the older version intact", function()
    write(dir .. "/a.lua", small("WF-A"))
    assert(meta:import(dir .. "/a.lua"))
    local before = counts(meta)
    local v1 = assert(meta:export("WF-A"))
    -- the same workflow, now with an extra component whose direction is SIDEWAYS
    write(dir .. "/a.lua", small("WF-A", nil, [[
      components = { component "extra" { role = "work", interaction = "inbox", direction = "SIDEWAYS" } },
    ]]))
    local ok, msg, code = meta:import(dir .. "/a.lua")
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.truthy(msg:find(dir .. "/a.lua:", 1, true), msg)
    assert.truthy(msg:find("SIDEWAYS", 1, true), msg)
    assert.are.same(before, counts(meta))
    assert.are.equal(v1, assert(meta:export("WF-A")))
    assert.are.equal(1, meta:list()[1].latest)
  end)

  it("reports a file that cannot be read with its name and IO", function()
    local ok, msg, code = meta:import(dir .. "/missing.lua")
    assert.is_nil(ok)
    assert.are.equal("IO", code)
    assert.truthy(msg:find("missing.lua: cannot read", 1, true), msg)
  end)

  it("reports a workflow file that raises as one violation at the user's line", function()
    local f = dir .. "/boom.lua"
    write(f, "local x = 1\nerror('no workflow here')\n")
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal(f .. ":2: [workflow-file] workflow file: expected a file that runs to " ..
      "its end and returns a workflow, found the error: no workflow here", msg)
    local _, vmsg, vcode, report = meta:validate(f)
    assert.are.equal("INVALID", vcode)
    assert.are.equal(msg, vmsg)
    assert.are.same({ f .. ":2: [workflow-file] workflow file: expected a file that runs to " ..
      "its end and returns a workflow, found the error: no workflow here" }, report.errors)
  end)

  it("reports DSL misuse at the user's line, without the engine's frames", function()
    local f = dir .. "/misuse.lua"
    write(f, "-- a role made with a number\nreturn workflow \"X\" { roles = { alpha(42) } }\n")
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal(f .. ":2: [workflow-file] workflow file: expected a file that runs to " ..
      "its end and returns a workflow, found the error: alpha: expected a name, as in " ..
      'alpha "name" { ... }, found a number', msg)
  end)

  it("refuses a bytecode file, naming it", function()
    local f = dir .. "/compiled.lua"
    write(f, string.dump(load("return 1")))
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal(f .. ": [workflow-file] workflow file: expected Lua source text, found a " ..
      "binary chunk (binary chunks are refused; give Lua source text)", msg)
  end)

  it("reports invalid UTF-8 the same way in validate and import, storing nothing", function()
    local f = dir .. "/bytes.lua"
    write(f, small("WF-BYTES", '{ bad = "\\xff\\xfe" }'))
    local want = f .. ':1: [utf8] workflow "WF-BYTES" ai_context.bad: expected UTF-8 text, ' ..
      "found invalid UTF-8 at byte 1"
    local none, vmsg, vcode, report = meta:validate(f)
    assert.is_nil(none)
    assert.is_false(report.ok)
    assert.are.same({ want }, report.errors)
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal(want, msg)
    assert.are.equal(0, #meta:list())
    assert.are.equal(want, vmsg)
    assert.are.equal("INVALID", vcode)
  end)

  it("rejects an actor 'system' that is not SYSTEM at import", function()
    local f = dir .. "/sys.lua"
    write(f, (small("WF-SYS"):gsub('type = "SYSTEM"', 'type = "HUMAN"')))
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.are.equal(f .. ':13: [actor-system] actor "system": expected type SYSTEM (the ' ..
      'engine runs steps and gateways as "system"; rename this actor), found "HUMAN"', msg)
  end)

  it("rejects a parent that declares a child's actor with another type", function()
    write(dir .. "/child.lua", small("WF-CHILD", nil,
      'actors = { actor "clerk" { type = "HUMAN", roles = { "work", "end", "fix", "clock" } } },'):gsub(
      "actors = { actor \"system\"[^\n]*\n", ""))
    assert(meta:import(dir .. "/child.lua"))
    local f = dir .. "/parent.lua"
    write(f, (small("WF-PARENT", nil,
      'actors = { actor "clerk" { type = "AI_AGENT", roles = { "end", "fix", "clock" } } },')
      :gsub('beta "work" { inbound', 'beta "work" { child_workflow = "WF-CHILD", inbound')
      :gsub("actors = { actor \"system\"[^\n]*\n", "")))
    local ok, msg, code = meta:import(f)
    assert.is_nil(ok, "the parent must be refused")
    assert.are.equal("INVALID", code)
    assert.are.equal(f .. ':13: [actor-conflict] actor "clerk": expected the type it has in ' ..
      'child workflow "WF-CHILD" (HUMAN; an instance shares actors across its workflows), ' ..
      'found "AI_AGENT"', msg)
    assert.are.equal(1, #meta:list())
  end)

  it("rebinds a parent to the newest child on re-import, so the instantiate advice works",
    function()
      local function gw(name, ctx, gateways)
        local extra = ""
        for i, child in ipairs(gateways) do
          extra = extra .. string.format(
            'beta "gw%d" { inbound = { "inbox" }, outbound = { "room" }, child_workflow = %q },\n',
            i, child)
        end
        return (small(name, ctx):gsub('(omega "end")', extra .. "    %1")
          :gsub('beta "work" { inbound = { "inbox" }, outbound = { "room" } }',
                'beta "work" { inbound = { "inbox" }, outbound = { "room" } }'))
      end
      local C, B, A = dir .. "/c.lua", dir .. "/b.lua", dir .. "/a.lua"
      write(C, gw("C", nil, {}))
      write(B, gw("B", nil, { "C" }))
      write(A, gw("A", nil, { "C", "B" }))
      assert.are.same({ 1, "created" }, (function(r) return { r.version, r.status } end)(
        assert(meta:import(C))))
      assert.are.equal(1, assert(meta:import(B)).version)
      write(C, gw("C", '{ v = 2 }', {}))
      assert.are.equal(2, assert(meta:import(C)).version)
      assert.are.equal(1, assert(meta:import(A)).version)
      local ok, msg, code = meta:instantiate("A", dir .. "/i1.db")
      assert.is_nil(ok)
      assert.are.equal("INVALID", code)
      assert.are.equal("workflow 'A' reaches two versions of child workflow 'C' (version 1 " ..
        "through 'B' version 1, version 2 through 'A' version 1); an instance holds one " ..
        "workflow per name. Import binds a gateway to the newest version of its child, and " ..
        "re-importing a parent whose child has a newer version makes a new version of the " ..
        "parent: re-import 'B', then 'A' (in that order), then instantiate again", msg)
      -- follow the advice
      local rb = assert(meta:import(B))
      assert.are.same({ "B", 2, "created", "child C now version 2" },
        { rb.name, rb.version, rb.status, rb.rebound })
      local ra = assert(meta:import(A))
      assert.are.same({ "A", 2, "created", "child B now version 2" },
        { ra.name, ra.version, ra.status, ra.rebound })
      local again = assert(meta:import(A))
      assert.are.same({ 2, "unchanged" }, { again.version, again.status })
      assert.is_nil(again.rebound)
      local report = assert(meta:instantiate("A", dir .. "/i2.db"))
      local got = {}
      for _, w in ipairs(report.workflows) do got[#got + 1] = w.name .. "@" .. w.version end
      table.sort(got)
      assert.are.same({ "A@2", "B@2", "C@2" }, got)
    end)

  it("round-trips JSON exactly: big integers, floats, unicode, nesting", function()
    local ctx = [[{
      big = 9007199254740993, max = 9223372036854775807, min = math.mininteger,
      third = 1/3, tiny = 5e-324, one = 1.0, neg0 = -0.0,
      text = "héllo — 中文 🎉 \"quoted\"\n",
      deep = { a = { b = { c = { d = { 1, 2, { e = "f" } } } } } },
      empty_list = json.array({}), empty_obj = {},
    }]]
    write(dir .. "/a.lua", small("WF-RT", ctx))
    assert(meta:import(dir .. "/a.lua"))
    local first = assert(meta:export("WF-RT", "json"))
    assert.truthy(first:find('"big": 9007199254740993', 1, true), first)
    assert.truthy(first:find('"max": 9223372036854775807', 1, true))
    assert.truthy(first:find('"min": -9223372036854775808', 1, true))
    assert.truthy(first:find('"third": 0.3333333333333333', 1, true))
    assert.truthy(first:find('"one": 1.0', 1, true))
    assert.truthy(first:find('"empty_list": []', 1, true))
    assert.truthy(first:find("中文 🎉", 1, true))
    -- import the JSON into a second meta-store and export again
    write(dir .. "/rt.json", first)
    local meta2 = assert(chm.open_meta(dir .. "/meta2.db"))
    local r = assert(meta2:import(dir .. "/rt.json"))
    assert.are.equal("created", r.status)
    local second = assert(meta2:export("WF-RT", "json"))
    assert.are.equal(first, second)
    -- and re-importing the JSON into the first store changes nothing
    assert.are.equal("unchanged", assert(meta:import(dir .. "/rt.json")).status)
    meta2:close()
    local v = chm.json.decode(second).ai_context
    assert.are.equal(9007199254740993, v.big)
    assert.are.equal(math.maxinteger, v.max)
    assert.are.equal(1 / 3, v.third)
    assert.are.equal("float", math.type(v.one))
  end)

  it("exports a DOT picture of the graph", function()
    write(dir .. "/a.lua", small("WF-A"))
    assert(meta:import(dir .. "/a.lua"))
    local dot = assert(meta:export("WF-A", "dot"))
    assert.truthy(dot:find('^digraph "WF%-A"'))
    assert.truthy(dot:find('"role:work" -> "interaction:room"', 1, true), dot)
    assert.truthy(dot:find("join (CERBERUS)", 1, true))
  end)

  it("names a missing workflow on export, show and instantiate", function()
    for _, call in ipairs({
      function() return meta:export("NOPE") end,
      function() return meta:show("NOPE") end,
      function() return meta:instantiate("NOPE", dir .. "/i.db") end,
    }) do
      local ok, msg, code = call()
      assert.is_nil(ok)
      assert.are.equal("NOTFOUND", code)
      assert.truthy(msg:find("workflow 'NOPE'", 1, true), msg)
    end
    assert.is_nil(io.open(dir .. "/i.db"))
  end)
end)

local GATEWAY = "WF-ONBOARD-001"

-- Template tables and their id column, with the Local_* table a copy goes
-- to and the column there that keeps the template's id.
local COPIES = {
  { "Template_Workflows", "workflow_id", "Local_Workflows", "local_workflow_id",
    "original_workflow_id", "local_workflow_id" },
  { "Template_Roles", "role_id", "Local_Roles", "role_id", "original_role_id", "local_workflow_id" },
  { "Template_Interactions", "interaction_id", "Local_Interactions", "interaction_id",
    "original_interaction_id", "local_workflow_id" },
  { "Template_Components", "component_id", "Local_Components", "component_id",
    "original_component_id", "local_workflow_id" },
  { "Template_Guardians", "guardian_id", "Local_Guardians", "guardian_id",
    "original_guardian_id", "local_workflow_id" },
}
-- Every id column the instantiation writes.
local LOCAL_IDS = {
  { "Instance_Context", "instance_id" }, { "Local_Workflows", "local_workflow_id" },
  { "Local_Roles", "role_id" }, { "Local_Interactions", "interaction_id" },
  { "Local_Components", "component_id" }, { "Local_Guardians", "guardian_id" },
  { "Local_Actors", "actor_id" }, { "Local_Actor_Role_Assignments", "assignment_id" },
}

describe("instantiation and the air gap", function()
  local dir
  -- What the meta-store held, read before it is deleted: every id of every
  -- Template_* table, the name of each template row by id, the step sources.
  local meta_ids, template, steps = {}, {}, {}
  setup(function()
    dir = tmpdir()
    local meta = assert(chm.open_meta(dir .. "/meta.db"))
    for _, f in ipairs({ "workflows/wf_child_kyc.lua", "workflows/wf_gateway.lua" }) do
      assert(meta:import(f))
    end
    for _, t in ipairs({ { "Template_Workflows", "workflow_id" }, { "Template_Roles", "role_id" },
        { "Template_Interactions", "interaction_id" }, { "Template_Components", "component_id" },
        { "Template_Guardians", "guardian_id" }, { "Template_Actors", "actor_id" },
        { "Template_Actor_Role_Assignments", "assignment_id" } }) do
      for _, r in ipairs(assert(meta:query(("SELECT %s AS id FROM %s"):format(t[2], t[1])))) do
        meta_ids[r.id] = t[1]
      end
    end
    for _, c in ipairs(COPIES) do
      template[c[1]] = {}
      for _, r in ipairs(assert(meta:query(("SELECT %s AS id, name FROM %s"):format(c[2], c[1])))) do
        template[c[1]][r.id] = r.name
      end
    end
    for _, r in ipairs(assert(meta:query([[SELECT w.name AS wf, r.name, r.step_source
        FROM Template_Roles r JOIN Template_Workflows w ON w.workflow_id = r.workflow_id
        WHERE r.step_source IS NOT NULL]]))) do
      steps[r.wf .. "/" .. r.name] = r.step_source
    end
    local report = assert(meta:instantiate(GATEWAY, dir .. "/inst.db", { name = "gw-test" }))
    assert.are.equal("gw-test", report.name)
    assert.are.equal(2, #report.workflows)
    local ok, msg, code = meta:instantiate(report.workflows[1].name, dir .. "/inst.db")
    assert.is_nil(ok)
    assert.are.equal("EXISTS", code, msg)
    meta:close()
    os.remove(dir .. "/meta.db")
    os.remove(dir .. "/meta.db-wal")
    os.remove(dir .. "/meta.db-shm")
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("opens, describes and re-validates the instance without the meta-store", function()
    assert.is_nil(io.open(dir .. "/meta.db"))
    local inst = assert(chm.open_instance(dir .. "/inst.db"))
    local d = assert(inst:describe())
    assert.are.equal("gw-test", d.instance.name)
    local masters, gateway = 0, nil
    for _, w in ipairs(d.workflows) do
      if w.is_master then masters = masters + 1 end
      for _, r in ipairs(w.roles) do
        if r.child_workflow ~= chm.json.null then gateway = r end
      end
      assert.truthy(#w.roles >= 5)
      assert.truthy(#w.interactions >= 3)
      assert.truthy(#w.guardians >= 2)
    end
    assert.are.equal(1, masters)
    assert.truthy(gateway, "the gateway role points at its child")
    assert.are.equal("WF-KYC-001", gateway.child_workflow)
    local report = assert(inst:validate())
    assert.is_true(report.ok)
    inst:close()
  end)

  it("keeps original ids, fresh ids and one master, linked locally", function()
    local inst = assert(chm.open_instance(dir .. "/inst.db"))
    local rows = assert(inst:query([[
      SELECT w.name, w.is_master, w.original_workflow_id, w.local_workflow_id,
             (SELECT count(*) FROM Local_Roles r WHERE r.local_workflow_id = w.local_workflow_id
                AND r.step_source IS NOT NULL) AS steps
      FROM Local_Workflows w ORDER BY w.is_master DESC]]))
    assert.are.equal(2, #rows)
    assert.are.equal(1, rows[1].is_master)
    assert.are.equal(0, rows[2].is_master)
    -- every copied row keeps the id of the template row it came from
    for _, c in ipairs(COPIES) do
      local copied = assert(inst:query(("SELECT %s AS id, %s AS original, name FROM %s")
        :format(c[4], c[5], c[3])))
      assert.truthy(#copied > 0, c[3])
      local seen = {}
      for _, r in ipairs(copied) do
        assert.are.equal(r.name, template[c[1]][r.original],
          c[3] .. " " .. r.name .. " keeps the id of its " .. c[1] .. " row")
        seen[r.original] = true
      end
      for id in pairs(template[c[1]]) do assert.is_true(seen[id], c[1] .. " " .. id .. " copied") end
    end
    -- the Lua step sources are copied, same count and same text
    local copied_steps = assert(inst:query([[SELECT w.name AS wf, r.name, r.step_source
        FROM Local_Roles r JOIN Local_Workflows w ON w.local_workflow_id = r.local_workflow_id
        WHERE r.step_source IS NOT NULL]]))
    local n = 0
    for _ in pairs(steps) do n = n + 1 end
    assert.truthy(n > 0, "the reference workflows have steps")
    assert.are.equal(n, #copied_steps)
    for _, r in ipairs(copied_steps) do
      assert.are.equal(steps[r.wf .. "/" .. r.name], r.step_source, r.wf .. "/" .. r.name)
    end
    local steps_total = 0
    for _, r in ipairs(rows) do steps_total = steps_total + r.steps end
    assert.are.equal(n, steps_total)
    local linked = assert(inst:query([[
      SELECT count(*) AS n FROM Local_Roles r JOIN Local_Workflows c
        ON c.local_workflow_id = r.linked_local_workflow_id
      WHERE r.is_recursive_gateway = 1]]))
    assert.are.equal(1, linked[1].n)
    inst:close()
  end)

  it("gives every row it writes a fresh UUIDv7, none shared with the meta-store", function()
    local inst = assert(chm.open_instance(dir .. "/inst.db"))
    local seen, count = {}, 0
    for _, t in ipairs(LOCAL_IDS) do
      local rows = assert(inst:query(("SELECT %s AS id FROM %s"):format(t[2], t[1])))
      assert.truthy(#rows > 0, t[1])
      for _, r in ipairs(rows) do
        local where = t[1] .. "." .. t[2] .. " " .. tostring(r.id)
        -- 8-4-4-4-12 hex, version nibble 7, variant bits 10
        assert.truthy(r.id:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-7%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"),
          where)
        assert.is_nil(meta_ids[r.id], where .. " reuses an id of " .. tostring(meta_ids[r.id]))
        assert.is_nil(seen[r.id], where .. " also used by " .. tostring(seen[r.id]))
        seen[r.id] = t[1]
        count = count + 1
      end
    end
    assert.truthy(count > 20)
    inst:close()
  end)

  it("answers v_ai_schema_guide for Local_Roles with every column described", function()
    local inst = assert(chm.open_instance(dir .. "/inst.db"))
    local rows = assert(inst:query(
      "SELECT * FROM v_ai_schema_guide WHERE table_name = 'Local_Roles' AND column_name <> ''"))
    local names = {}
    for _, r in ipairs(rows) do
      names[r.column_name] = true
      assert.truthy(type(r.description) == "string" and #r.description > 0, r.column_name)
    end
    for _, c in ipairs({ "role_id", "local_workflow_id", "name", "description", "ai_context",
                         "role_type", "decomposition_strategy", "is_recursive_gateway",
                         "linked_local_workflow_id" }) do
      assert.is_true(names[c], c)
    end
    inst:close()
  end)

  it("refuses to open a meta-store as an instance, and a missing file", function()
    local m = assert(chm.open_meta(dir .. "/other-meta.db"))
    m:close()
    local ok, msg = chm.open_instance(dir .. "/other-meta.db")
    assert.is_nil(ok)
    assert.truthy(msg:find("is a Chameleon meta-store, not an instance store", 1, true), msg)
    local ok2, msg2, code2 = chm.open_instance(dir .. "/nothing.db")
    assert.is_nil(ok2)
    assert.are.equal("NOTFOUND", code2)
    assert.truthy(msg2:find("nothing.db: no such store", 1, true), msg2)
  end)
end)

describe("schema versions", function()
  it("creates a store at the newest version and refuses one from a newer engine", function()
    local dir = tmpdir()
    local m = assert(chm.open_meta(dir .. "/m.db"))
    local v = assert(m:query("PRAGMA user_version"))[1].user_version
    assert.truthy(v >= 1)
    local guide = assert(m:query("SELECT count(*) AS n FROM v_ai_schema_guide WHERE description IS NULL"))
    assert.are.equal(0, guide[1].n)
    m:close()
    assert(os.execute(("sqlite3 %s/m.db 'PRAGMA user_version = %d'"):format(dir, v + 1)))
    local ok, msg, code = chm.open_meta(dir .. "/m.db")
    assert.is_nil(ok)
    assert.are.equal("DB", code)
    assert.truthy(msg:find("newer than this engine", 1, true), msg)
    os.execute("rm -rf " .. dir)
  end)
end)

describe("the Lua module's error model", function()
  it("raises on misuse and on a closed handle", function()
    assert.has_error(function() chm.open_meta() end)
    local dir = tmpdir()
    local m = assert(chm.open_meta(dir .. "/m.db"))
    assert.has_error(function() m:import(42 and {}) end)
    m:close()
    assert.has_error(function() m:list() end, "attempt to use a closed meta-store")
    os.execute("rm -rf " .. dir)
  end)
end)
