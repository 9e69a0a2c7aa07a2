-- lua/routing.lua — routing after a submit for the judge (lua/judge.lua):
-- compiles the four routing forms of docs/definition-format.md "Routing"
-- and DIRECTIONAL_FILTER guardians once, resolves target names to one of
-- the role's outbound components, and picks the component for a token.
-- Pure: the judge loads the role's graph; this module only evaluates it.
-- Trusted module; relies on lua/conditions.lua. See docs/guardians.md.
local conditions = require("conditions")

local M = {}

local type, ipairs, rawequal, tostring = type, ipairs, rawequal, tostring
local format, concat = string.format, table.concat
local mtype = math.type

local null = chm.json.null
local show = conditions.show

local function isnull(v) return v == nil or rawequal(v, null) end

-- ======================================================================
-- Compiling
-- ======================================================================

-- compile_branches(list, cond_key, to_key, what) -> branches | nil, err.
-- A branch whose condition does not compile is kept with .err: it counts
-- as a branch whose condition errors (skipped, recorded, on_error).
local function compile_branches(list, cond_key, to_key, what)
  if type(list) ~= "table" then
    return nil, format("%s: expected a list, got %s", what, show(list))
  end
  local out = {}
  for i, b in ipairs(list) do
    local label = format("%s[%d]", what, i)
    local br = { label = label }
    if type(b) ~= "table" then
      br.err = "expected an object, got " .. show(b)
    else
      local cond, err = conditions.compile(b[cond_key], "=" .. label)
      br.cond, br.err = cond, err
      if cond then br.label = label .. " " .. conditions.label(cond) end
      br.to = b[to_key]
      if type(br.to) ~= "string" then
        br.err = br.err or format("%s: expected a target name, got %s", to_key, show(br.to))
      end
    end
    out[i] = br
  end
  return out
end

local function optional_target(v, what)
  if isnull(v) then return nil end
  if type(v) ~= "string" then return nil, format("%s: expected a target name, got %s", what, show(v)) end
  return v
end

-- compile(r) -> router | nil. r is a component's decoded routing (nil or
-- null for none). Never raises: a malformed routing gives a router of kind
-- "invalid" whose evaluation records the error.
function M.compile(r)
  if isnull(r) then return nil end
  local function invalid(err) return { kind = "invalid", err = err } end
  if type(r) ~= "table" then return invalid("expected a routing object, got " .. show(r)) end
  if r.lua ~= nil then
    local f, err = conditions.load_function(r.lua, "=routing")
    if not f then return invalid(err) end
    return { kind = "lua", fn = f }
  elseif r.when ~= nil then
    local cond, err = conditions.compile(r.when, "=routing.when")
    if not cond then return invalid("when: " .. err) end
    return { kind = "when", cond = cond }
  elseif r.branches ~= nil or r.next_step_logic ~= nil then
    local src, cond_key, to_key, what, name = r, "when", "to", "branches", "routing"
    if r.branches == nil then
      src, cond_key, to_key, what, name = r.next_step_logic, "expr", "goto", "if", "next_step_logic"
      if type(src) ~= "table" then
        return invalid("next_step_logic: expected an object, got " .. show(src))
      end
    end
    local branches, err = compile_branches(src[what], cond_key, to_key, what)
    if not branches then return invalid(err) end
    local default, e1 = optional_target(src.default, "default")
    local on_error, e2 = optional_target(src.on_error, "on_error")
    if e1 or e2 then return invalid(e1 or e2) end
    return { kind = "branches", name = name, branches = branches, default = default,
             on_error = on_error }
  end
  return invalid("expected one of {branches, default, on_error}, {next_step_logic}, " ..
                 "{when} or {lua}, got " .. show(r))
end

-- compile_filter(g) -> filter. g = {guardian_id, name, config} of a
-- DIRECTIONAL_FILTER; a bad config gives a filter with .err.
function M.compile_filter(g)
  local f = { guardian_id = g.guardian_id, name = g.name }
  local cfg = g.config
  if g.config_error then f.err = g.config_error return f end
  if type(cfg) ~= "table" then f.err = "config: expected an object, got " .. show(cfg) return f end
  if type(cfg.field) ~= "string" or cfg.field == "" then
    f.err = "config.field: expected an attribute name, got " .. show(cfg.field)
    return f
  end
  if type(cfg.routes) ~= "table" then
    f.err = "config.routes: expected a table of value = interaction, got " .. show(cfg.routes)
    return f
  end
  local default, err = optional_target(cfg.default, "config.default")
  if err then f.err = err return f end
  f.field, f.get, f.routes, f.default = cfg.field, conditions.getter(cfg.field), cfg.routes, default
  return f
end

-- graph(role_name, outs) -> graph. outs are the role's outbound components
-- in position order: {component_id, name, interaction_id, interaction_name,
-- consumers = {role names}, router = compile(...) | nil, filters =
-- {compile_filter(...)}}. Target names resolve by component name, else
-- interaction name, else consuming role name (the first in order wins).
function M.graph(role_name, outs)
  local by_comp, by_inter, by_role = {}, {}, {}
  for _, o in ipairs(outs) do
    o.filters = o.filters or {}
    by_comp[o.name] = by_comp[o.name] or o
    by_inter[o.interaction_name] = by_inter[o.interaction_name] or o
    for _, r in ipairs(o.consumers or {}) do by_role[r] = by_role[r] or o end
  end
  return { role_name = role_name, outs = outs, by_comp = by_comp, by_inter = by_inter,
           by_role = by_role }
end

local function resolve(graph, name)
  return graph.by_comp[name] or graph.by_inter[name] or graph.by_role[name]
end
M.resolve = resolve

-- ======================================================================
-- Evaluating
-- ======================================================================

-- key_of(v) -> the routes key for an attribute value: strings as they are,
-- integral numbers without a fraction, booleans as "true"/"false".
local function key_of(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if mtype(v) == "float" and v == math.floor(v) and v > -2 ^ 63 and v < 2 ^ 63 then
      return format("%d", v)
    end
    return tostring(v)
  end
  return nil
end

-- try(o, view, scope, errors) -> target name | true (this component) | nil,
-- how (words for the reason).
local function try_router(o, view, scope, errors)
  local rt = o.router
  local where = format("component '%s'", o.name)
  local function fail(msg)
    errors[#errors + 1] = { component_id = o.component_id, message = where .. " " .. msg }
  end
  if rt.kind == "invalid" then
    fail("routing is invalid: " .. rt.err)
    return nil, "invalid routing"
  elseif rt.kind == "when" then
    local r, err = conditions.test(rt.cond, view, scope)
    if r == nil then fail("routing when " .. conditions.label(rt.cond) .. " failed: " .. err)
      return nil, "when: error"
    end
    if r then return true, "when " .. conditions.label(rt.cond) .. " holds" end
    return nil, "when " .. conditions.label(rt.cond) .. " is false"
  elseif rt.kind == "lua" then
    local ok, r = conditions.call(rt.fn, view)
    if not ok then fail("Lua routing failed: " .. r) return nil, "Lua routing: error" end
    if isnull(r) or r == false then return nil, "Lua routing returned no target" end
    if type(r) ~= "string" then
      fail("Lua routing returned " .. show(r) .. "; expected a target name or nil")
      return nil, "Lua routing: error"
    end
    return r, "Lua routing chose '" .. r .. "'"
  end
  -- branches / next_step_logic
  local errored = 0
  for _, b in ipairs(rt.branches) do
    local r, err
    if b.err then r, err = nil, b.err else r, err = conditions.test(b.cond, view, scope) end
    if r == nil then
      errored = errored + 1
      fail(format("%s %s failed: %s", rt.name, b.label, err))
    elseif r then
      return b.to, format("%s %s chose '%s'", rt.name, b.label, b.to)
    end
  end
  if errored > 0 and rt.on_error then
    return rt.on_error, format("%s on_error chose '%s' (%d condition%s failed)", rt.name,
                               rt.on_error, errored, errored == 1 and "" or "s")
  end
  if rt.default then
    return rt.default, format("%s default chose '%s'", rt.name, rt.default)
  end
  return nil, format("%s: no branch matched%s, no default", rt.name,
                     errored > 0 and format(" (%d failed)", errored) or "")
end

local function try_filter(f, o, view, errors)
  local where = format("directional filter '%s'", tostring(f.name))
  if f.err then
    errors[#errors + 1] = { component_id = o.component_id,
                            message = where .. " is invalid: " .. f.err }
    return nil, where .. ": invalid"
  end
  local v = f.get(view)
  local key = key_of(v)
  local to = key and f.routes[key]
  if type(to) == "string" then
    return to, format("%s: %s = %s chose '%s'", where, f.field, show(v), to)
  end
  if f.default then
    return f.default, format("%s: %s = %s has no route; default chose '%s'", where, f.field,
                             show(v), f.default)
  end
  return nil, format("%s: %s = %s has no route, no default", where, f.field, show(v))
end

-- route(graph, view) -> {component_id, interaction_id, reason, errors,
-- decisions} (see judge.route). Tries the outbound components in order: a component's
-- routing first, then its DIRECTIONAL_FILTER guardians; the first target
-- wins. Components with neither are only reached as targets, except the
-- single outbound component of a role.
function M.route(graph, view)
  local outs, errors = graph.outs, {}
  if #outs == 0 then
    return { component_id = nil, interaction_id = nil, reason = "no outbound", errors = errors }
  end
  if #outs == 1 and not outs[1].router and #outs[1].filters == 0 then
    local o = outs[1]
    return { component_id = o.component_id, interaction_id = o.interaction_id,
             reason = format("single outbound component '%s'", o.name), errors = errors }
  end
  local scope = conditions.scope(view)
  local tried, decisions = {}, nil
  for _, o in ipairs(outs) do
    local found, how = false, {}
    local function take(target, words)
      local dest = target == true and o or resolve(graph, target)
      if dest then
        return { component_id = dest.component_id, interaction_id = dest.interaction_id,
                 reason = format("component '%s' %s", o.name, words), errors = errors,
                 decisions = decisions }, dest
      end
      errors[#errors + 1] = { component_id = o.component_id, message = format(
        "component '%s' %s, but '%s' names no outbound component of role '%s' (by " ..
        "component, interaction or consuming role name)", o.name, words, target,
        graph.role_name) }
      how[#how + 1] = words .. " (unknown target)"
    end
    if o.router then
      found = true
      local target, words = try_router(o, view, scope, errors)
      if target then
        local res = take(target, words)
        if res then return res end
      else
        how[#how + 1] = words
      end
    end
    for _, f in ipairs(o.filters) do
      found = true
      local target, words = try_filter(f, o, view, errors)
      local res, dest
      if target then res, dest = take(target, words) end
      -- each filter's decision is a log row of its own: the interaction
      -- it chose, or NO_ROUTE
      decisions = decisions or {}
      decisions[#decisions + 1] = {
        guardian_id = f.guardian_id, name = f.name, type = "DIRECTIONAL_FILTER",
        decision = dest and dest.interaction_name or "NO_ROUTE",
        -- a target that names no outbound component: say so, not "routes to"
        reason = (target and not dest) and errors[#errors].message or words }
      if res then
        res.decisions = decisions
        return res
      end
      if not target then how[#how + 1] = words end
    end
    if not found then how[1] = "no routing" end
    tried[#tried + 1] = format("'%s' (%s)", o.name, concat(how, "; "))
  end
  return { component_id = nil, interaction_id = nil, errors = errors, decisions = decisions,
           reason = format("no route matched for role '%s': tried %s", graph.role_name,
                           concat(tried, ", ")) }
end

return M
