-- lua/dsl.lua — the constructors a workflow file is written with
-- (docs/workflows.md is the reference). A workflow file runs in the
-- sandbox with these functions in its environment and returns
-- `workflow "NAME" { ... }`. A constructor only records what it was given
-- (kind, name, the caller's line, fields); lua/normalize.lua turns the
-- records into the canonical definition. Relies on chm.callerline only.
local M = {}

-- ======================================================================
-- Records
-- ======================================================================

-- The workflow file sees an empty, read-only proxy per element; what it
-- stands for lives here, keyed by the proxy (weak: it dies with it), so a
-- script can neither read nor forge a record.
local records = setmetatable({}, { __mode = "k" })

-- M.record(v) -> {kind, type, name, line, fields, ctor} when v was made
-- by a constructor of this module, else nil. kind is one of workflow,
-- role, interaction, component, guardian, actor, assignment; type is the
-- role or guardian type the constructor implies (nil for the generic
-- `role` and `guardian`); fields is the table the file passed (read raw).
function M.record(v)
  if type(v) ~= "table" then return nil end
  return records[v]
end

-- Shorthands: what a single non-table argument means for a guardian
-- constructor (criteria "big" "amount > 1000").
local SHORTHAND = {
  criteria = { string = "criteria", ["function"] = "criteria" },
  lua_guard = { ["function"] = "predicate" },
  policy = { string = "policy" },
}

local Proxy = {
  __metatable = false,
  __newindex = function()
    error("workflow elements are read-only (build a new one instead)", 2)
  end,
  __tostring = function(p)
    local r = records[p]
    return r and string.format("%s %q", r.ctor, r.name or "") or "element"
  end,
}

-- Calling an element with its fields: alpha "intake" { ... }.
Proxy.__call = function(p, fields)
  local r = records[p]
  if r.called then
    error(string.format('%s %q was already given its fields', r.ctor, r.name or ""), 2)
  end
  local t = type(fields)
  if t ~= "table" then
    local key = SHORTHAND[r.ctor] and SHORTHAND[r.ctor][t]
    if not key then
      error(string.format('%s %q: expected a table of fields, found a %s',
        r.ctor, r.name or "", t), 2)
    end
    fields = { [key] = fields }
  elseif records[fields] then
    error(string.format('%s %q: expected a table of fields, found %s (a missing comma?)',
      r.ctor, r.name or "", tostring(fields)), 2)
  end
  r.called = true
  local copy = {} -- raw shallow copy: later changes by the script do not count
  for k, v in next, fields do copy[k] = v end
  r.fields = copy
  return p
end

local function new(ctor, kind, etype, name, line, fields)
  local p = setmetatable({}, Proxy)
  records[p] = { ctor = ctor, kind = kind, type = etype, name = name, line = line,
                 fields = fields or {}, called = fields ~= nil }
  return p
end

-- ======================================================================
-- Constructors
-- ======================================================================

local ROLES = { alpha = "ALPHA", beta = "BETA", omega = "OMEGA", epsilon = "EPSILON",
                tau = "TAU" }
local GUARDS = { cerberus = "CERBERUS", pass_thru = "PASS_THRU", criteria = "CRITERIA_GATE",
                 ttl = "TTL_CHECK", composite = "COMPOSITE", directional = "DIRECTIONAL_FILTER",
                 injector = "CONDITIONAL_INJECTOR", lua_guard = "LUA", policy = "POLICY",
                 approval = "APPROVAL" }

-- M.names: every constructor name, sorted (for docs, linters and tests).
M.names = { "workflow", "role", "interaction", "component", "guardian", "actor",
            "assignment" }
for k in pairs(ROLES) do M.names[#M.names + 1] = k end
for k in pairs(GUARDS) do M.names[#M.names + 1] = k end
table.sort(M.names)

-- M.constructors(chm) -> {name = function}: the functions to add to a
-- workflow file's environment. chm.callerline(level) gives the current line
-- of the function `level` levels up the call stack from callerline (1 = the
-- function calling it, as in lua_getstack), so a constructor asks for 2:
-- the line of the workflow file that called the constructor.
-- Misuse a script cannot recover from (a name that is not a string) raises
-- an error pointing at the caller; everything else is left to
-- normalize/validate so that all problems are reported at once.
function M.constructors(chm)
  local c = {}
  -- named(ctor, kind, etype) -> constructor taking a name string.
  local function named(ctor, kind, etype)
    return function(name)
      local line = chm.callerline(2)
      if type(name) ~= "string" then
        error(string.format('%s: expected a name, as in %s "name" { ... }, found a %s',
          ctor, ctor, type(name)), 2)
      end
      return new(ctor, kind, etype, name, line)
    end
  end
  c.workflow = named("workflow", "workflow")
  c.role = named("role", "role")
  c.interaction = named("interaction", "interaction")
  c.component = named("component", "component")
  c.actor = named("actor", "actor")
  for ctor, t in pairs(ROLES) do c[ctor] = named(ctor, "role", t) end

  -- Guardians may be anonymous: cerberus(), criteria { ... },
  -- lua_guard(function(token) ... end).
  local function guard(ctor, etype)
    return function(arg)
      local line = chm.callerline(2)
      local t = type(arg)
      if t == "string" then
        return new(ctor, "guardian", etype, arg, line)
      elseif t == "nil" then
        return new(ctor, "guardian", etype, nil, line, {})
      elseif t == "table" and not records[arg] then
        local copy = {}
        for k, v in next, arg do copy[k] = v end
        return new(ctor, "guardian", etype, nil, line, copy)
      elseif SHORTHAND[ctor] and SHORTHAND[ctor][t] then
        return new(ctor, "guardian", etype, nil, line, { [SHORTHAND[ctor][t]] = arg })
      end
      error(string.format('%s: expected a name or a table of fields, found %s', ctor,
        records[arg] and tostring(arg) or ("a " .. t)), 2)
    end
  end
  c.guardian = guard("guardian", nil)
  for ctor, t in pairs(GUARDS) do c[ctor] = guard(ctor, t) end

  -- assignment { actor = "clerk", role = "F-03", status = "REVOKED" }
  c.assignment = function(fields)
    local line = chm.callerline(2)
    if type(fields) ~= "table" or records[fields] then
      error("assignment: expected a table { actor = ..., role = ..., status = ... }", 2)
    end
    local copy = {}
    for k, v in next, fields do copy[k] = v end
    return new("assignment", "assignment", nil, nil, line, copy)
  end
  return c
end

return M
