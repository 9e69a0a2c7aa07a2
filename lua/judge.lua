-- lua/judge.lua — the judgement the C token engine calls: judge.gate
-- (guardians at checkout), judge.route (routing after a submit) and
-- judge.step (a role's step function). Owns the SQL that loads the frozen
-- graph and the caches of loaded rows and compiled code, kept for the life
-- of the state (an instance's graph never changes after instantiation).
-- Evaluation lives in lua/guardians.lua, lua/routing.lua, lua/steps.lua.
-- Trusted module: receives the store as `db` (dbbind.c). See docs/guardians.md.
local guardians = require("guardians")
local routing = require("routing")
local steps = require("steps")
local expr = require("expr")

local M = {}

local type, pcall, ipairs, tostring = type, pcall, ipairs, tostring
local format = string.format

local json = chm.json

-- ======================================================================
-- SQL: the only statements the judge runs (guardians.CHILDREN_SQL aside)
-- ======================================================================

M.SQL = {
  guardians = "SELECT guardian_id, name, type, attributes FROM Local_Guardians " ..
              "WHERE component_id = ? ORDER BY position",
  outbound = "SELECT c.component_id AS component_id, c.name AS name, c.routing AS routing, " ..
             "c.interaction_id AS interaction_id, i.name AS interaction_name " ..
             "FROM Local_Components c JOIN Local_Interactions i " ..
             "ON i.interaction_id = c.interaction_id " ..
             "WHERE c.role_id = ? AND c.direction = 'OUTBOUND' ORDER BY c.position",
  consumers = "SELECT r.name AS name FROM Local_Components c JOIN Local_Roles r " ..
              "ON r.role_id = c.role_id " ..
              "WHERE c.interaction_id = ? AND c.direction = 'INBOUND' ORDER BY c.position",
  role = "SELECT name, step_source FROM Local_Roles WHERE role_id = ?",
  children = guardians.CHILDREN_SQL,
}

-- ======================================================================
-- Caches
-- ======================================================================

-- Rows and graphs by id, for the life of the state (reset() drops them).
local rows_by_component = {} -- component_id -> {decoded guardian rows}
local gates = {}             -- component_id -> {compiled guardians}
local graphs = {}            -- role_id -> routing graph
local roles = {}             -- role_id -> {name, step_source} | false

-- Compiled code by id and source text: a changed row recompiles.
local compiled_guardians = {} -- guardian_id -> {src, type, g}
local compiled_routers = {}   -- component_id -> {src, router}
local compiled_filters = {}   -- guardian_id -> {src, filter}
local compiled_steps = {}     -- role_id -> {src, f, err}

-- reset(): forget every loaded row (compiled code stays keyed by source).
-- For tests and for a host that changes the graph underneath.
function M.reset()
  rows_by_component, gates, graphs, roles = {}, {}, {}, {}
end

-- A host function registered since the last gate or route (expr.register,
-- chm_register_function) may make a condition compile that did not: drop
-- compiled guardians and routers (steps do not use expressions).
local generation = expr.generation
local function recompile_if_registered()
  if expr.generation == generation then return end
  generation = expr.generation
  gates, graphs = {}, {}
  compiled_guardians, compiled_routers, compiled_filters = {}, {}, {}
end

-- decode(text) -> value | nil, err for a JSON column (NULL is nil).
local function decode(text)
  if text == nil then return nil end
  local ok, v = pcall(json.decode, text)
  if not ok then return nil, "invalid JSON: " .. tostring(v) end
  return v
end

-- guardian_rows(db, component_id) -> decoded rows {guardian_id, name, type,
-- attributes (text), config, config_error}.
local function guardian_rows(db, component_id)
  local rows = rows_by_component[component_id]
  if rows then return rows end
  rows = db:rows(M.SQL.guardians, component_id)
  for _, r in ipairs(rows) do
    r.config, r.config_error = decode(r.attributes or "{}")
  end
  rows_by_component[component_id] = rows
  return rows
end

-- ======================================================================
-- judge.gate
-- ======================================================================

-- load_gate(db, component_id) -> the component's compiled guardians.
local function load_gate(db, component_id)
  local list = {}
  for i, r in ipairs(guardian_rows(db, component_id)) do
    local c = compiled_guardians[r.guardian_id]
    if not c or c.src ~= r.attributes or c.type ~= r.type or c.name ~= r.name then
      c = { src = r.attributes, type = r.type, name = r.name, g = guardians.compile(r) }
      compiled_guardians[r.guardian_id] = c
    end
    list[i] = c.g
  end
  gates[component_id] = list
  return list
end

-- judge.gate(db, component_id, view) -> verdict
-- view = {uow_id, parent_id, status, version, child_count,
-- finished_child_count, workflow, attrs}. verdict = {pass, wait, reason?,
-- rejection = {guardian_id, name, type, reason} | nil, decisions =
-- {{guardian_id, name, type, decision, reason}}, injections =
-- {{guardian_id, rule_index, field, value}}}. Guardians run in position
-- order; the first gate that does not pass decides (REJECT, or WAIT for
-- CERBERUS); injections are returned only when the verdict passes.
-- Verdicts are read-only (PASS decisions and injections are shared).
-- Raises only on database errors.
function M.gate(db, component_id, view)
  recompile_if_registered()
  local list = gates[component_id] or load_gate(db, component_id)
  return guardians.evaluate(list, view, db)
end

-- ======================================================================
-- judge.route
-- ======================================================================

local function load_role(db, role_id)
  local r = roles[role_id]
  if r == nil then
    r = db:one(M.SQL.role, role_id) or false
    roles[role_id] = r
  end
  return r or nil
end

local function load_graph(db, role_id)
  local role = load_role(db, role_id)
  local outs = {}
  for i, row in ipairs(db:rows(M.SQL.outbound, role_id)) do
    local consumers = {}
    for j, c in ipairs(db:rows(M.SQL.consumers, row.interaction_id)) do consumers[j] = c.name end
    local cr = compiled_routers[row.component_id]
    if not cr or cr.src ~= row.routing then
      local value, err = decode(row.routing)
      local router
      if err then
        router = { kind = "invalid", err = "routing: " .. err }
      else
        router = routing.compile(value)
      end
      cr = { src = row.routing, router = router }
      compiled_routers[row.component_id] = cr
    end
    local filters = {}
    for _, g in ipairs(guardian_rows(db, row.component_id)) do
      if g.type == "DIRECTIONAL_FILTER" then
        local cf = compiled_filters[g.guardian_id]
        if not cf or cf.src ~= g.attributes or cf.name ~= g.name then
          cf = { src = g.attributes, name = g.name, filter = routing.compile_filter(g) }
          compiled_filters[g.guardian_id] = cf
        end
        filters[#filters + 1] = cf.filter
      end
    end
    outs[i] = { component_id = row.component_id, name = row.name,
                interaction_id = row.interaction_id, interaction_name = row.interaction_name,
                consumers = consumers, router = cr.router, filters = filters }
  end
  local g = routing.graph(role and role.name or tostring(role_id), outs)
  graphs[role_id] = g
  return g
end

-- judge.route(db, role_id, view) -> {component_id, interaction_id, reason,
-- errors = {{component_id, message}}, decisions = nil | {{guardian_id, name,
-- type = "DIRECTIONAL_FILTER", decision = the interaction chosen or
-- "NO_ROUTE", reason}}, one per filter tried}. component_id is nil when nothing
-- matched (reason lists what was tried) or the role has no outbound
-- component (reason "no outbound"). Raises only on database errors.
function M.route(db, role_id, view)
  recompile_if_registered()
  local g = graphs[role_id] or load_graph(db, role_id)
  return routing.route(g, view)
end

-- ======================================================================
-- judge.step
-- ======================================================================

-- judge.step(db, role_id, view, ctx) -> true, result | false, err, code
-- ctx = {now, seed, memory, skills, actor}. Runs the role's step function
-- (compiled once per role) under the step limits. result has only the keys
-- set, reasoning, children, teach, fail, give_up, end. code is "SCRIPT",
-- "BUDGET" or "MEMORY".
function M.step(db, role_id, view, ctx)
  local role = load_role(db, role_id)
  if not role then
    return false, format("unknown role %s", tostring(role_id)), "SCRIPT"
  end
  local src = role.step_source
  if type(src) ~= "string" then
    return false, format("role '%s' has no step function", role.name), "SCRIPT"
  end
  local c = compiled_steps[role_id]
  if not c or c.src ~= src then
    local f, err = steps.compile(src, role.name)
    c = { src = src, f = f, err = err }
    compiled_steps[role_id] = c
  end
  if not c.f then return false, c.err, "SCRIPT" end
  return steps.run(c.f, role.name, view, ctx)
end

return M
