-- tests/validate_spec.lua — the authoring side: lua/dsl.lua, lua/normalize.lua
-- and lua/validate.lua, run standalone under plain lua5.4 (no build needed).
-- Workflow files are loaded the way lua/meta.lua loads them, with a fake
-- `chm` built on the debug library. Checks: reference workflows validate
-- cleanly, each fixture in tests/fixtures/invalid/ gives exactly the errors
-- its `-- expect:` lines name, JSON round trips are byte-identical, and
-- every Lua example in docs/workflows.md is an excerpt of a checked file.
-- Owned by the authoring contributor. Run from the repository root:
--   busted --lua=lua5.4 tests/validate_spec.lua

package.path = "./lua/?.lua;" .. package.path
local dsl = require("dsl")
local normalize = require("normalize")
local validate = require("validate")
local expr = require("expr")

-- ---------------------------------------------------------------------------
-- A fake chm: json null and array marker, callerline and funcinfo
-- ---------------------------------------------------------------------------

local NULL = setmetatable({}, { __tostring = function() return "null" end })
local ARR = { __metatable = "json.array" }
expr.set_null(NULL)

local chm = {
  callerline = function(level) return debug.getinfo(level + 1, "l").currentline end,
  funcinfo = function(f)
    local i = debug.getinfo(f, "S")
    local ups, k = {}, 1
    while true do
      local n = debug.getupvalue(f, k)
      if not n then break end
      ups[#ups + 1] = n
      k = k + 1
    end
    return { source = i.source, linedefined = i.linedefined,
             lastlinedefined = i.lastlinedefined, upvalues = ups }
  end,
  json = { null = NULL, array = function(t) return setmetatable(t, ARR) end },
}

-- ---------------------------------------------------------------------------
-- A small canonical JSON codec (sorted keys, two-space indent), as the
-- engine's exporter prints; decode marks arrays and maps null to NULL.
-- ---------------------------------------------------------------------------

local json = {}
do
  local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\n"] = "\\n", ["\t"] = "\\t", ["\r"] = "\\r" }
  local function enc(v, ind, out)
    if v == nil or v == NULL then out[#out + 1] = "null"; return end
    local t = type(v)
    if t == "string" then
      out[#out + 1] = '"' .. v:gsub('[%c"\\]', function(c)
        return ESC[c] or string.format("\\u%04x", c:byte())
      end) .. '"'
    elseif t == "number" then
      if math.type(v) == "integer" then out[#out + 1] = tostring(v); return end
      local s
      for p = 1, 17 do
        s = string.format("%." .. p .. "g", v)
        if tonumber(s) == v then break end
      end
      if not s:find("[%.eEn]") then s = s .. ".0" end
      out[#out + 1] = s
    elseif t == "boolean" then
      out[#out + 1] = tostring(v)
    elseif t == "table" then
      local n = rawlen(v)
      if getmetatable(v) == "json.array" or n > 0 then
        if n == 0 then out[#out + 1] = "[]"; return end
        out[#out + 1] = "[\n"
        for i = 1, n do
          out[#out + 1] = ind .. "  "
          enc(v[i], ind .. "  ", out)
          out[#out + 1] = i < n and ",\n" or "\n"
        end
        out[#out + 1] = ind .. "]"
      else
        local keys = {}
        for k in pairs(v) do
          assert(type(k) == "string", "json: object key is not a string")
          keys[#keys + 1] = k
        end
        table.sort(keys)
        if #keys == 0 then out[#out + 1] = "{}"; return end
        out[#out + 1] = "{\n"
        for i, k in ipairs(keys) do
          out[#out + 1] = ind .. "  "
          enc(k, "", out)
          out[#out + 1] = ": "
          enc(v[k], ind .. "  ", out)
          out[#out + 1] = i < #keys and ",\n" or "\n"
        end
        out[#out + 1] = ind .. "}"
      end
    else
      error("json: cannot encode a " .. t)
    end
  end
  function json.encode(v)
    local out = {}
    enc(v, "", out)
    return table.concat(out)
  end

  local UNESC = { n = "\n", t = "\t", r = "\r", b = "\b", f = "\f", ['"'] = '"',
                  ["\\"] = "\\", ["/"] = "/" }
  function json.decode(s)
    local i = 1
    local function ws() i = s:find("[^ \t\r\n]", i) or #s + 1 end
    local function str()
      local out = {}
      i = i + 1
      while true do
        local c = s:sub(i, i)
        if c == '"' then i = i + 1; return table.concat(out) end
        if c == "\\" then
          local e = s:sub(i + 1, i + 1)
          if e == "u" then
            out[#out + 1] = utf8.char(tonumber(s:sub(i + 2, i + 5), 16)); i = i + 6
          else
            out[#out + 1] = UNESC[e]; i = i + 2
          end
        else
          out[#out + 1] = c; i = i + 1
        end
      end
    end
    local val
    function val()
      ws()
      local c = s:sub(i, i)
      if c == "{" then
        i = i + 1
        local t = {}
        ws()
        if s:sub(i, i) == "}" then i = i + 1; return t end
        while true do
          ws()
          local k = str()
          ws(); assert(s:sub(i, i) == ":", "json: ':' expected"); i = i + 1
          t[k] = val()
          ws()
          local d = s:sub(i, i); i = i + 1
          if d == "}" then return t end
          assert(d == ",", "json: ',' expected")
        end
      elseif c == "[" then
        i = i + 1
        local t = setmetatable({}, ARR)
        ws()
        if s:sub(i, i) == "]" then i = i + 1; return t end
        while true do
          t[#t + 1] = val()
          ws()
          local d = s:sub(i, i); i = i + 1
          if d == "]" then return t end
          assert(d == ",", "json: ',' expected")
        end
      elseif c == '"' then
        return str()
      end
      for word, v in pairs({ null = NULL, ["true"] = true, ["false"] = false }) do
        if s:sub(i, i + #word - 1) == word then i = i + #word; return v end
      end
      local num = s:match("^-?[%d%.eE+-]+", i)
      i = i + #num
      if num:find("[%.eE]") then return tonumber(num) end
      return math.tointeger(tonumber(num))
    end
    return val()
  end
end

-- ---------------------------------------------------------------------------
-- Loading files the way lua/meta.lua does
-- ---------------------------------------------------------------------------

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function ls(pattern)
  local out = {}
  local p = io.popen("ls " .. pattern .. " 2>/dev/null")
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  return out
end

-- A minimal safe environment (the engine's sandbox is richer but has no
-- more than this that a workflow file needs), plus the constructors.
local function sandbox()
  local env = {
    assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
    pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
    type = type, string = string, table = table, math = math, utf8 = utf8,
  }
  for k, v in pairs(dsl.constructors(chm)) do env[k] = v end
  return env
end

-- parse(path) -> canonical | nil, lines, normalize errors (like meta.parse).
local function parse(path)
  local text = read(path)
  if path:match("%.json$") then
    return normalize.from_json(json.decode(text), { file = path, json_null = NULL, chm = chm })
  end
  local chunk = assert(load(text, "@" .. path, "t", sandbox()))
  return normalize.from_lua(chunk(), { file = path, chm = chm, source_text = text,
                                       json_null = NULL })
end

-- The meta-store stand-in: reference workflows by name.
local registry = {}
local function lookup(name) return registry[name] end

-- check(path) -> list of error records: normalize's, or else validate's
-- (lua/meta.lua stops after normalize errors).
local function check(path)
  local canon, lines, errs = parse(path)
  if #errs > 0 or not canon then return errs, canon end
  return validate.check(canon, { file = path, lines = lines, expr = expr, lookup = lookup,
                                 json_null = NULL }), canon
end

local function messages(errs)
  local out = {}
  for i, e in ipairs(errs) do out[i] = e.message end
  return table.concat(out, "\n")
end

-- deep copy through JSON and back (what export -> import does).
local function roundtrip(canon)
  local text = json.encode(canon)
  local again, lines, errs = normalize.from_json(json.decode(text),
    { file = "export.json", json_null = NULL, chm = chm })
  return text, again, lines, errs
end

local REFERENCE = ls("workflows/*.lua")
for _, path in ipairs(REFERENCE) do
  local canon = parse(path)
  if canon then registry[canon.name] = canon end
end

-- ---------------------------------------------------------------------------
-- Reference workflows
-- ---------------------------------------------------------------------------

describe("reference workflows", function()
  it("exist", function()
    assert.is_true(#REFERENCE >= 6)
  end)
  for _, path in ipairs(REFERENCE) do
    it(path .. " validates with zero errors", function()
      local errs = check(path)
      assert.are.equal("", messages(errs))
    end)
    it(path .. " survives export -> import -> export byte for byte", function()
      local canon = parse(path)
      local text, again, lines, errs = roundtrip(canon)
      assert.are.equal(0, #errs)
      assert.are.same({}, lines)
      assert.are.same(canon, again)
      assert.are.equal(text, json.encode(again))
      assert.are.equal(0, #validate.check(again, { file = "export.json", expr = expr,
        lookup = lookup, json_null = NULL }))
    end)
  end
end)

-- step_of(name, role) -> the step of a reference workflow, recompiled from
-- its canonical source text alone (as the engine does) in a safe env.
local function step_of(name, role)
  for _, r in ipairs(registry[name].roles) do
    if r.name == role then
      local env = { string = string, math = math, table = table, ipairs = ipairs,
                    tonumber = tonumber, tostring = tostring, type = type }
      return assert(load("return " .. r.step.lua, "=step " .. role, "t", env))()
    end
  end
end

-- test(src, attrs) -> the boolean an expression gives on these attributes.
local function test(src, attrs)
  return assert(expr.compile(src)).test({ attrs = attrs })
end

describe("reference steps", function()
  it("WF-FIN-001 F-01 extracts vendor_id, amount and po_id", function()
    local r = step_of("WF-FIN-001", "F-01")({ document = "Vendor: V-100\nAmount: 1020.50\nPO: PO-77" })
    assert.are.same({ vendor_id = "V-100", amount = 1020.5, po_id = "PO-77" }, r.set)
    assert.are.equal("EXTRACTION_INCOMPLETE", step_of("WF-FIN-001", "F-01")({ document = "?" }).fail)
  end)
  it("WF-FIN-001 F-02 matches the PO within 0.05 and routes as seed 004 §12.2", function()
    local f02 = step_of("WF-FIN-001", "F-02")
    local ok = f02({ amount = 1040, po_amount = 1000 }).set
    local off = f02({ amount = 1060, po_amount = 1000 }).set
    assert.is_true(ok.output.pass)
    assert.is_false(off.output.pass)
    assert.is_true(test("output.pass == true", ok))
    assert.is_true(test("output.pass == false", off))
    -- No PO amount, no output: the branch expressions error, so on_error -> F-03.
    assert.is_nil(f02({ amount = 10 }).set)
    assert.has_error(function() test("output.pass == true", {}) end)
  end)
  it("WF-FIN-001 F-03 hands off PO_MISMATCH to FA-M-001", function()
    local r = step_of("WF-FIN-001", "F-03")({ vendor_id = "V", po_id = "P", amount = 1 })
    assert.are.equal("PO_MISMATCH", r.set.handoff.reason)
    assert.are.equal("FA-M-001", r.set.handoff.owner)
  end)
  it("WF-GOV-001 G-01 and G-02 pick one reviewer per mandatory domain", function()
    local ruled = step_of("WF-GOV-001", "G-01")({ proposal_type = "new_workflow", risk_score = 0.9 })
    assert.are.same({ "Security", "Data", "Business" }, ruled.set.required_domains)
    assert.is_true(ruled.set.external_reviewer)
    local picked = step_of("WF-GOV-001", "G-02")(ruled.set)
    assert.are.same({ "rev-sec-1", "rev-data-1", "rev-biz-1", "rev-ext-1" }, picked.set.reviewer_ids)
    assert.is_true(test("ack == true", { ack = true }))
  end)
  it("WF-FANOUT-001 split-lines makes HOMOGENEOUS children", function()
    local r = step_of("WF-FANOUT-001", "split-lines")({ lines = {
      { sku = "A", qty = 2, unit_price = 3 }, { sku = "B", qty = 1, unit_price = 5 } } })
    assert.are.equal(2, r.set.line_count)
    assert.are.same({ sku = "B", qty = 1, unit_price = 5 }, r.children[2])
    assert.are.same({ line_total = 6 }, step_of("WF-FANOUT-001", "price-line")(r.children[1]).set)
  end)
end)

-- ---------------------------------------------------------------------------
-- Invalid fixtures: each `-- expect:` line names one error (a substring of
-- its message, file and line included); no other error may appear.
-- ---------------------------------------------------------------------------

local JSON_EXPECT = dofile("tests/fixtures/json_expect.lua")

local function expectations(path)
  if path:match("%.json$") then return JSON_EXPECT[path] or {} end
  local out = {}
  for line in read(path):gmatch("[^\n]+") do
    local e = line:match("^%-%- expect: (.*)$")
    if e then out[#out + 1] = e end
  end
  return out
end

describe("invalid fixtures", function()
  local files = ls("tests/fixtures/invalid/*.lua tests/fixtures/invalid/*.json")
  it("cover every rule", function()
    local seen = {}
    for _, path in ipairs(files) do
      for _, e in ipairs(expectations(path)) do
        local rule = e:match("%[([%w%-]+)%]")
        if rule then seen[rule] = true end
      end
    end
    local missing = {}
    for _, rule in ipairs({ "shape", "name", "name-duplicate", "reference", "format",
      "role-type", "role-singleton", "role-endpoint", "beta-strategy", "gateway", "step",
      "child-workflow", "child-recursion", "direction", "interaction-producer",
      "interaction-consumer", "epsilon-guard", "omega-cerberus", "routing-required",
      "routing-direction", "routing-shape", "routing-target", "condition", "guardian-type",
      "guardian-config", "guardian-placement", "unguarded-cycle", "max-interactions",
      "stale-limit", "actor-type", "assignment-status", "function-upvalue",
      "function-source", "utf8", "actor-system", "guardian-direction", "role-unstaffed" }) do
      if not seen[rule] then missing[#missing + 1] = rule end
    end
    assert.are.same({}, missing)
  end)
  for _, path in ipairs(files) do
    it(path, function()
      local want = expectations(path)
      assert.is_true(#want > 0, "no expectation for " .. path)
      local errs = check(path)
      local got = messages(errs)
      for _, w in ipairs(want) do
        assert.is_truthy(got:find(w, 1, true), "expected\n  " .. w .. "\namong\n" .. got)
      end
      assert.are.equal(#want, #errs, got)
    end)
  end
  it("a file breaking three rules reports all three", function()
    local errs = check("tests/fixtures/invalid/multiple_errors.lua")
    local rules = {}
    for i, e in ipairs(errs) do rules[i] = e.rule end
    assert.are.same({ "beta-strategy", "omega-cerberus", "actor-type" }, rules)
  end)
  it("error records carry their parts", function()
    local e = check("tests/fixtures/invalid/beta_strategy.lua")[1]
    assert.are.equal("beta-strategy", e.rule)
    assert.are.equal('role "worker"', e.element)
    assert.are.equal(6, e.line)
    assert.are.equal("strategy HOMOGENEOUS or HETEROGENEOUS", e.expected)
    assert.are.equal('"HOMOGENOUS" (did you mean "HOMOGENEOUS"?)', e.found)
  end)
end)

-- ---------------------------------------------------------------------------
-- DSL, normalization and validation details
-- ---------------------------------------------------------------------------

-- run(src) -> canonical, lines, errors of a workflow given as text.
local function run(src, name)
  name = name or "inline.lua"
  local chunk = assert(load(src, "@" .. name, "t", sandbox()))
  return normalize.from_lua(chunk(), { file = name, chm = chm, source_text = src,
                                       json_null = NULL })
end

local MINIMAL = [[
return workflow "MINI" {
  interactions = { "work", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "work" } },
    beta "worker" { inbound = { "work" }, outbound = { "done" } %s },
    omega "finish" { inbound = { { "done", guard = cerberus() } } },
    epsilon "doctor" { inbound = { { "ate", guard = pass_thru "triage" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "staff" { type = "HUMAN", roles = { "worker", "finish", "doctor", "clock" } } },
}
]]

describe("the DSL", function()
  it("records the caller's line for every element", function()
    local canon, lines, errs = run(MINIMAL:format(""))
    assert.are.same({}, errs)
    assert.are.equal(1, lines.workflow)
    assert.are.equal(5, lines["role:worker"])
    assert.are.equal(5, lines["component:worker:in:work"])
    assert.are.equal(7, lines["guardian:triage"])
    assert.are.equal(6, lines["guardian:finish:in:done:guard:1"])
    assert.are.equal("finish:in:done:guard:1", canon.guardians[1].name)
  end)
  it("names inline components <role>:in:<interaction> and <role>:out:<interaction>", function()
    local canon = run(MINIMAL:format(""))
    local names = {}
    for i, c in ipairs(canon.components) do names[i] = c.name end
    assert.are.same({ "start:out:work", "worker:in:work", "worker:out:done", "finish:in:done",
      "doctor:in:ate", "doctor:out:done", "clock:in:chronos", "clock:out:ate" }, names)
  end)
  it("fills every canonical key with defaults", function()
    local canon = run(MINIMAL:format(""))
    assert.are.equal("chameleon.workflow/1", canon.format)
    local w = canon.roles[2]
    assert.are.same({ name = "worker", type = "BETA", description = "", ai_context = NULL,
      strategy = "HOMOGENEOUS", child_workflow = NULL, step = NULL }, w)
    assert.are.equal(NULL, canon.roles[1].strategy)
    assert.are.equal("json.array", getmetatable(canon.roles))
    assert.are.equal("json.array", getmetatable(canon.assignments))
  end)
  it("rejects a name that is not a string where it was written", function()
    local chunk = load('local a = alpha(42)', "@bad.lua", "t", sandbox())
    local ok, err = pcall(chunk)
    assert.is_false(ok)
    assert.are.equal('bad.lua:1: alpha: expected a name, as in alpha "name" { ... }, found a number', err)
  end)
  it("elements are read-only and take their fields once", function()
    local env = sandbox()
    assert.has_error(function() env.beta("x").name = "y" end)
    local ok, err = pcall(load('local b = beta "x" { } { }', "@twice.lua", "t", env))
    assert.is_false(ok)
    assert.are.equal('twice.lua:1: beta "x" was already given its fields', err)
  end)
  it("puts role-level routing on the first outbound component", function()
    local canon, _, errs = run(MINIMAL:format(
      ', routing = { branches = { { when = "x > 1", to = "done" } } }'))
    assert.are.same({}, errs)
    assert.are.same({ branches = { { when = "x > 1", to = "done" } }, default = NULL,
                      on_error = NULL }, canon.components[3].routing)
  end)
  it("turns functions into their source text", function()
    local canon, _, errs = run(MINIMAL:format(
      ',\n      step = function(token)\n        return { set = { n = 1 } }\n      end'))
    assert.are.same({}, errs)
    assert.are.same({ lua = "function(token)\n        return { set = { n = 1 } }\n      end" },
      canon.roles[2].step)
  end)
  it("keeps a function that is alone on its line among nested ones", function()
    local canon, _, errs = run(MINIMAL:format(
      ", step = function(t) local f = function() end return f() end"))
    assert.are.same({}, errs)
    assert.are.equal("function(t) local f = function() end return f() end",
      canon.roles[2].step.lua)
  end)
  it("drops the name of a named function", function()
    local src = "local function pick(token) return { set = { a = 1 } } end\n" ..
      MINIMAL:format(", step = pick")
    local canon, _, errs = run(src)
    assert.are.same({}, errs)
    assert.are.equal("function(token) return { set = { a = 1 } } end", canon.roles[2].step.lua)
  end)
  it("skips keywords in strings and comments when cutting a function", function()
    local canon, _, errs = run(MINIMAL:format(
      ',\n      step = function(t) -- "end" function\n        return { reasoning = "do end" }\n      end'))
    assert.are.same({}, errs)
    assert.are.equal('function(t) -- "end" function\n        return { reasoning = "do end" }\n      end',
      canon.roles[2].step.lua)
  end)
  it("supports every constructor form", function()
    local src = [[
return workflow "FORMS" {
  interactions = { "work", "side", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "work" } },
    role "worker" {
      type = "BETA", strategy = "HETEROGENEOUS",
      inbound = { { "work", name = "intake", guards = { policy "sox" "sox-basic",
                                                         approval "four-eyes" { reviewers = {} } } } },
      outbound = { "done", "side" },
      routing = function(token)
        return token.side and "side" or "done"
      end,
    },
    beta "sider" { inbound = { "side" } },
    omega "finish" { inbound = { { "done", guard = cerberus() } } },
    epsilon "doctor" { inbound = { { "ate", guard = composite "gate" {
      op = "OR", guardians = { criteria { criteria = "x > 1" }, guardian { type = "PASS_THRU" } } } } } },
    tau "clock" { inbound = { "chronos" } },
  },
  components = {
    component "side-out" { role = "sider", interaction = "done", direction = "OUTBOUND",
                           next_step_logic = { ["if"] = { { expr = "ok", ["goto"] = "done" } },
                                               default = "done" },
                           guard = pass_thru "spy" },
  },
  guardians = {
    ttl "fresh" { component = "intake", field = "at", max_age_seconds = 60, description = "d" },
  },
  actors = { actor "a" { type = "HUMAN" },
             actor "b" { type = "HUMAN", roles = { "worker", "finish", "doctor", "clock" } } },
  assignments = { assignment { actor = "a", role = "sider" }, { actor = "a", role = "clock", status = "REVOKED" } },
}
]]
    local canon, lines, errs = run(src)
    assert.are.same({}, errs)
    assert.are.same({}, validate.check(canon, { file = "forms.lua", lines = lines, expr = expr,
      json_null = NULL }))
    local g = {}
    for _, x in ipairs(canon.guardians) do g[x.name] = x end
    assert.are.same({ policy = "sox-basic" }, g.sox.config)
    assert.are.equal("json.array", getmetatable(g["four-eyes"].config.reviewers))
    assert.are.same({ op = "OR", guardians = { { type = "CRITERIA_GATE", config = { criteria = "x > 1" } },
      { type = "PASS_THRU", config = {} } } }, g.gate.config)
    assert.are.same({ component = "intake", type = "TTL_CHECK", name = "fresh", description = "d",
      ai_context = NULL, config = { field = "at", max_age_seconds = 60 } }, g.fresh)
    assert.are.equal("side-out", g.spy.component)
    assert.are.equal("HETEROGENEOUS", canon.roles[2].strategy)
    assert.are.same({ lua = "function(token)\n        return token.side and \"side\" or \"done\"\n      end" },
      canon.components[3].routing)
    assert.are.same({ next_step_logic = { ["if"] = { { expr = "ok", ["goto"] = "done" } },
      default = "done", on_error = NULL } }, canon.components[#canon.components].routing)
    assert.are.same({ { actor = "b", role = "worker", status = "ACTIVE" },
      { actor = "b", role = "finish", status = "ACTIVE" },
      { actor = "b", role = "doctor", status = "ACTIVE" },
      { actor = "b", role = "clock", status = "ACTIVE" },
      { actor = "a", role = "sider", status = "ACTIVE" },
      { actor = "a", role = "clock", status = "REVOKED" } }, canon.assignments)
    assert.are.equal(31, lines["assignment:a:sider"])
    assert.are.equal(27, lines["guardian:fresh"])
    local text, again = roundtrip(canon)
    assert.are.equal(text, json.encode(again))
  end)
  it("refuses a C function", function()
    local _, _, errs = run(MINIMAL:format(", step = print"):gsub("return", "local print = tostring return", 1))
    assert.are.equal(1, #errs)
    assert.are.equal("function-source", errs[1].rule)
  end)
end)

describe("validation", function()
  it("names the whole path of a recursive gateway chain", function()
    local a = assert(run(MINIMAL:format(', child_workflow = "CHAIN-B"'):gsub('"MINI"', '"CHAIN-A"')))
    local stored = {
      ["CHAIN-B"] = { name = "CHAIN-B", roles = { { name = "g", type = "BETA", child_workflow = "CHAIN-C" } } },
      ["CHAIN-C"] = { name = "CHAIN-C", roles = { { name = "g", type = "BETA", child_workflow = "CHAIN-A" } } },
    }
    local errs = validate.check(a, { file = "a.lua", expr = expr, json_null = NULL,
      lookup = function(n) return stored[n] end })
    assert.are.equal(1, #errs)
    assert.are.equal("a.lua: [child-recursion] role \"worker\" child_workflow: expected child " ..
      "workflows that never lead back to \"CHAIN-A\", found CHAIN-A → CHAIN-B → CHAIN-C → CHAIN-A",
      errs[1].message)
  end)
  it("accepts a cycle bounded by a stale limit or guarded by a gate", function()
    local src = read("tests/fixtures/invalid/unguarded_cycle.lua")
    local bounded = src:gsub('"rework", "done"',
      'interaction "rework" { stale_token_limit_seconds = 60 }, "done"')
    local guarded = src:gsub('inbound = { "work", "rework" }',
      'inbound = { "work", { "rework", guard = criteria "retry-once" "retries < 3" } }')
    for _, text in ipairs({ bounded, guarded }) do
      local canon, lines, errs = run(text)
      assert.are.same({}, errs)
      assert.are.same({}, validate.check(canon, { file = "x.lua", lines = lines, expr = expr,
        json_null = NULL }))
    end
  end)
  it("reports each unbounded loop once, even when a guarded loop shares its component", function()
    local src = read("tests/fixtures/invalid/unguarded_cycle_mixed.lua")
    -- a second unguarded self-loop on worker, through "again2"
    local text = src:gsub('{ "work", "again", "review"', '{ "work", "again", "again2", "review"')
      :gsub('inbound = { "work", "again", "back" }, outbound = { "done", "again", "review" }',
            'inbound = { "work", "again", "again2", "back" }, outbound = { "done", "again", "again2", "review" }')
    local canon, lines, errs = run(text)
    assert.are.same({}, errs)
    local got = validate.check(canon, { file = "x.lua", lines = lines, expr = expr, json_null = NULL })
    local cycles = {}
    for i, e in ipairs(got) do cycles[i] = e.rule .. " " .. e.element end
    assert.are.same({ "unguarded-cycle cycle worker → again → worker",
                      "unguarded-cycle cycle worker → again2 → worker" }, cycles)
  end)
  it("does not count a gate on an OUTBOUND component as bounding a cycle", function()
    -- The only guard of the loop sits where the engine never evaluates it.
    local src = read("tests/fixtures/invalid/unguarded_cycle.lua")
    local text = src:gsub('outbound = { "done", "rework" }',
      'outbound = { "done", { "rework", guard = criteria "never" "false" } }')
    local canon, lines, errs = run(text)
    assert.are.same({}, errs)
    local got = validate.check(canon, { file = "x.lua", lines = lines, expr = expr, json_null = NULL })
    assert.are.equal('x.lua:6: [unguarded-cycle] cycle worker → rework → worker: expected a ' ..
      'gating guardian on one of its INBOUND components, max_interactions on the workflow, or ' ..
      'stale_token_limit_seconds on one of its interactions whose roles all wait (no step, ' ..
      'gateway or role of "system" takes from it), found none\n' ..
      'x.lua:7: [guardian-direction] guardian "never": expected a gating guardian ' ..
      'on an INBOUND component (gates are evaluated at checkout), found CRITERIA_GATE on the ' ..
      'OUTBOUND component "worker:out:rework", where it is never evaluated; move it to ' ..
      '"worker:in:rework", the inbound component of role "worker" that takes from "rework"',
      messages(got))
  end)
  it("accepts any cycle when the workflow sets max_interactions", function()
    for _, path in ipairs({ "tests/fixtures/invalid/unguarded_cycle.lua",
                            "tests/fixtures/invalid/unguarded_cycle_mixed.lua",
                            "tests/fixtures/invalid/unguarded_cycle_step.lua" }) do
      local text = read(path):gsub('(return workflow "[%w%-]+" {\n)', "%1  max_interactions = 5,\n")
      local canon, lines, errs = run(text)
      assert.are.same({}, errs)
      assert.are.equal(5, canon.max_interactions)
      assert.are.same({}, validate.check(canon, { file = "x.lua", lines = lines, expr = expr,
        json_null = NULL }))
    end
  end)
  it("does not count a stale limit on a cycle through a role of \"system\"", function()
    local src = read("tests/fixtures/invalid/unguarded_cycle.lua")
    local text = src:gsub('"rework", "done"',
      'interaction "rework" { stale_token_limit_seconds = 60 }, "done"')
      :gsub('roles = { "worker",', 'roles = {')
      :gsub("\n}\n$", '\n  assignments = { { actor = "system", role = "worker" } },\n' ..
            '}\n', 1)
      :gsub('actors = { actor "staff"', 'actors = { actor "system" { type = "SYSTEM" }, actor "staff"')
    local canon, lines, errs = run(text)
    assert.are.same({}, errs)
    local got = validate.check(canon, { file = "x.lua", lines = lines, expr = expr, json_null = NULL })
    assert.are.equal(1, #got, messages(got))
    assert.are.equal('x.lua:6: [unguarded-cycle] cycle worker → rework → worker: expected a ' ..
      'gating guardian on one of its INBOUND components, max_interactions on the workflow, or ' ..
      'stale_token_limit_seconds on one of its interactions whose roles all wait (no step, ' ..
      'gateway or role of "system" takes from it), found stale_token_limit_seconds on ' ..
      '"rework", but role "worker", which takes from it, never waits (it is assigned to "system")', got[1].message)
  end)
  it("counts a stale limit whose roles all wait, even on a loop through a step", function()
    -- check (a step) -> review (people, stale limit) -> fix (people) -> check:
    -- every lap waits for a person, so the loop cannot run away on its own
    local text = [[
return workflow "REVIEW-LOOP" {
  interactions = { "work", interaction "review" { stale_token_limit_seconds = 3600 }, "fix", "done",
                   "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "work" } },
    beta "check" { inbound = { "work", "fix" }, outbound = { "review" },
                   step = function(token) return { set = { checked = true } } end },
    beta "reviewer" { inbound = { "review" }, outbound = { "done", "fix" },
      routing = { branches = { { when = "ok == false", to = "fix" } }, default = "done" } },
    omega "finish" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "doctor" { inbound = { { "ate", guard = pass_thru "triage" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "staff" { type = "HUMAN", roles = { "reviewer", "finish", "doctor", "clock" } } },
}
]]
    local canon, lines, errs = run(text)
    assert.are.same({}, errs)
    assert.are.same({}, validate.check(canon, { file = "x.lua", lines = lines, expr = expr,
      json_null = NULL }))
    -- the same loop with the limit on the step's own queue is refused
    local moved = text:gsub('interaction "review" { stale_token_limit_seconds = 3600 }', '"review"')
      :gsub('"fix", "done"', 'interaction "fix" { stale_token_limit_seconds = 3600 }, "done"')
    canon, lines, errs = run(moved)
    assert.are.same({}, errs)
    local got = validate.check(canon, { file = "x.lua", lines = lines, expr = expr, json_null = NULL })
    assert.are.equal(1, #got, messages(got))
    assert.truthy(got[1].message:find('found stale_token_limit_seconds on "fix", but role "check", ' ..
      'which takes from it, never waits (it has a step)', 1, true), got[1].message)
  end)
  it("names the REVOKED assignments of an unstaffed role, and leaves step roles alone", function()
    local revoked = MINIMAL:format(""):gsub('roles = { "worker", ',
      'roles = { { "worker", status = "REVOKED" }, ')
    local canon, lines, errs = run(revoked)
    assert.are.same({}, errs)
    local got = validate.check(canon, { file = "x.lua", lines = lines, expr = expr, json_null = NULL })
    assert.are.equal('x.lua:5: [role-unstaffed] role "worker": expected an actor with an ACTIVE ' ..
      'assignment, a step or a child_workflow (nothing else takes the tokens that reach it, and ' ..
      'an instance cannot add actors), found only REVOKED assignments ("staff"); assign an ' ..
      'actor to it (roles = { "worker" } on an actor) or give it a step', messages(got))
    -- A step role is the engine's (instantiation assigns it to "system").
    local stepped = MINIMAL:format(", step = function() return {} end"):gsub(
      'roles = { "worker", ', 'roles = { { "worker", status = "REVOKED" }, ')
    canon, lines, errs = run(stepped)
    assert.are.same({}, errs)
    assert.are.same({}, validate.check(canon, { file = "x.lua", lines = lines, expr = expr,
      json_null = NULL }))
  end)
  it("keeps DIRECTIONAL_FILTER and PASS_THRU allowed on OUTBOUND components", function()
    local text = MINIMAL:format(""):gsub('outbound = { "done" } }',
      'outbound = { { "done", guards = { pass_thru "spy", directional "pick" { field = "kind", ' ..
      'routes = { x = "done" } } } } } }', 1)
    local canon, lines, errs = run(text)
    assert.are.same({}, errs)
    assert.are.equal(4, #canon.guardians)
    assert.are.same({}, validate.check(canon, { file = "x.lua", lines = lines, expr = expr,
      json_null = NULL }))
  end)
  it("rejects an actor whose type differs from the same actor in a child workflow", function()
    local a = assert(run((MINIMAL:format(', child_workflow = "CHILD-X"'):gsub('"MINI"', '"PARENT-X"')
      :gsub('actors = { actor "staff"', 'actors = { actor "clerk" { type = "AI_AGENT" }, actor "staff"'))))
    local stored = {
      ["CHILD-X"] = { name = "CHILD-X", roles = {}, actors = { { name = "clerk", type = "HUMAN" } } },
    }
    local errs = validate.check(a, { file = "p.lua", expr = expr, json_null = NULL,
      lookup = function(n) return stored[n] end })
    assert.are.equal(1, #errs)
    assert.are.equal('p.lua: [actor-conflict] actor "clerk": expected the type it has in child ' ..
      'workflow "CHILD-X" (HUMAN; an instance shares actors across its workflows), found "AI_AGENT"',
      errs[1].message)
  end)
  it("never raises on garbage", function()
    local junk = { 1, "x", true, NULL, {}, { roles = 5 }, { roles = { 1, { name = {} } } },
      { format = "chameleon.workflow/1", name = "J", roles = { { name = "a", type = "BETA",
        step = { lua = 5 } } }, components = { { name = "c", role = "a", interaction = {},
        direction = "OUTBOUND", routing = { branches = { 1, { when = {} } } } } },
        guardians = { { name = "g", component = "c", type = "COMPOSITE",
          config = { guardians = { { type = "COMPOSITE", config = 7 } } } } } } }
    for _, d in ipairs(junk) do
      local ok, errs = pcall(validate.check, d, { json_null = NULL, expr = expr })
      assert.is_true(ok, tostring(errs))
      assert.is_true(#errs > 0)
      local ok2, c = pcall(normalize.from_json, d, { json_null = NULL })
      assert.is_true(ok2, tostring(c))
    end
  end)
  it("reports without a line when there is none (JSON)", function()
    local errs = check("tests/fixtures/invalid/format.json")
    assert.is_nil(errs[1].line)
  end)
end)

-- ---------------------------------------------------------------------------
-- docs/workflows.md: every Lua example is an excerpt of a checked file
-- ---------------------------------------------------------------------------

describe("docs/workflows.md", function()
  local doc = read("docs/workflows.md")
  local sources = {}
  for _, path in ipairs(REFERENCE) do sources[#sources + 1] = read(path) end
  for _, path in ipairs(ls("tests/fixtures/invalid/*.lua")) do sources[#sources + 1] = read(path) end
  -- Lines compared without their indentation or trailing spaces.
  local function norm(text)
    local out = {}
    for line in (text .. "\n"):gmatch("(.-)\n") do out[#out + 1] = line:match("^%s*(.-)%s*$") end
    return table.concat(out, "\n")
  end
  local normed = {}
  for i, s in ipairs(sources) do normed[i] = norm(s) end
  local n = 0
  for block in doc:gmatch("```lua\n(.-)```") do
    n = n + 1
    local k = n
    it("example " .. k .. " is quoted from a checked file", function()
      local want = norm(block:gsub("\n$", ""))
      local found = false
      for _, s in ipairs(normed) do
        if s:find(want, 1, true) then found = true end
      end
      assert.is_true(found, "example " .. k .. " is not in workflows/ or tests/fixtures/:\n" .. block)
    end)
  end
  it("has examples", function() assert.is_true(n > 5) end)
end)
