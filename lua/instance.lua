-- lua/instance.lua — read-side operations on an instance store behind
-- chm_instance_describe and chm_instance_validate. Everything is rebuilt
-- from the instance's own Local_* tables (never from the meta-store, and
-- not from the cached canonical_json), so re-validation checks the graph
-- the engine will actually run.
local util = require("util")
local validate = require("validate")
local expr = require("expr")
local meta = require("meta")
local dot = require("dot")

local json = chm.json
local null = json.null
local M = {}

local function arr(t) return json.array(t or {}) end
local function jv(text) return util.jval(text) end

-- definition(db, w) -> canonical definition of local workflow row w.
local function definition(db, w)
  local def = {
    format = "chameleon.workflow/1", name = w.name, description = w.description,
    ai_context = jv(w.ai_context), max_interactions = w.max_interactions or null,
    roles = arr(), interactions = arr(), components = arr(), guardians = arr(),
    actors = arr(), assignments = arr(),
  }
  for _, r in ipairs(db:rows([[SELECT r.*, c.name AS child_name FROM Local_Roles r
                               LEFT JOIN Local_Workflows c ON c.local_workflow_id = r.linked_local_workflow_id
                               WHERE r.local_workflow_id = ? ORDER BY r.position]], w.local_workflow_id)) do
    def.roles[#def.roles + 1] = {
      name = r.name, type = r.role_type, description = r.description,
      ai_context = jv(r.ai_context), strategy = r.decomposition_strategy or null,
      child_workflow = r.child_name or null,
      step = r.step_source and { lua = r.step_source } or null,
    }
  end
  for _, x in ipairs(db:rows([[SELECT * FROM Local_Interactions WHERE local_workflow_id = ?
                               ORDER BY position]], w.local_workflow_id)) do
    def.interactions[#def.interactions + 1] = {
      name = x.name, description = x.description, ai_context = jv(x.ai_context),
      stale_token_limit_seconds = x.stale_token_limit_seconds or null,
    }
  end
  for _, c in ipairs(db:rows([[SELECT c.*, r.name AS role_name, i.name AS inter_name
                               FROM Local_Components c
                               JOIN Local_Roles r ON r.role_id = c.role_id
                               JOIN Local_Interactions i ON i.interaction_id = c.interaction_id
                               WHERE c.local_workflow_id = ? ORDER BY c.position]], w.local_workflow_id)) do
    def.components[#def.components + 1] = {
      name = c.name, role = c.role_name, interaction = c.inter_name, direction = c.direction,
      description = c.description, ai_context = jv(c.ai_context), routing = jv(c.routing),
    }
  end
  for _, g in ipairs(db:rows([[SELECT g.*, c.name AS comp_name FROM Local_Guardians g
                               JOIN Local_Components c ON c.component_id = g.component_id
                               WHERE g.local_workflow_id = ? ORDER BY g.position]], w.local_workflow_id)) do
    def.guardians[#def.guardians + 1] = {
      name = g.name, component = g.comp_name, type = g.type, description = g.description,
      ai_context = jv(g.ai_context), config = json.decode(g.attributes),
    }
  end
  local seen = {}
  for _, a in ipairs(db:rows([[SELECT a.name AS actor_name, a.type, a.identity_key, a.description,
                                      a.ai_context, a.capabilities, r.name AS role_name, s.status
                               FROM Local_Actor_Role_Assignments s
                               JOIN Local_Actors a ON a.actor_id = s.actor_id
                               JOIN Local_Roles r ON r.role_id = s.role_id
                               WHERE r.local_workflow_id = ? ORDER BY r.position, a.name]],
                             w.local_workflow_id)) do
    if not seen[a.actor_name] then
      seen[a.actor_name] = true
      def.actors[#def.actors + 1] = {
        name = a.actor_name, type = a.type, identity_key = a.identity_key or null,
        description = a.description, ai_context = jv(a.ai_context), capabilities = jv(a.capabilities),
      }
    end
    def.assignments[#def.assignments + 1] = { actor = a.actor_name, role = a.role_name, status = a.status }
  end
  return def
end
M.definition = definition

local function workflows(db)
  return db:rows([[SELECT * FROM Local_Workflows ORDER BY is_master DESC, name]])
end

-- describe(db) -> {instance, workflows = [{name, version, is_master, roles, ...}]}
function M.describe(db)
  local ctx = db:one("SELECT * FROM Instance_Context")
  if not ctx then
    return nil, "this instance store has no Instance_Context row (it was never instantiated)", "CORRUPT"
  end
  local out = { instance = ctx, workflows = arr() }
  for _, w in ipairs(workflows(db)) do
    local def = definition(db, w)
    def.local_workflow_id = w.local_workflow_id
    def.original_workflow_id = w.original_workflow_id
    def.version = w.version
    def.is_master = w.is_master == 1
    out.workflows[#out.workflows + 1] = def
  end
  return out
end

-- dot(db) -> DOT text of the master workflow with, on each interaction,
-- how many tokens ever entered it (distinct tokens in its log rows) and
-- how many are there now.
function M.dot(db)
  local w = db:one("SELECT * FROM Local_Workflows WHERE is_master = 1")
  if not w then return nil, "this instance has no master workflow", "CORRUPT" end
  local counts = {}
  for _, r in ipairs(db:rows([[
      SELECT i.name,
             (SELECT count(DISTINCT l.uow_id) FROM Interaction_Logs l
               WHERE l.interaction_id = i.interaction_id) AS seen,
             (SELECT count(*) FROM UnitsOfWork u
               WHERE u.current_interaction_id = i.interaction_id) AS here
      FROM Local_Interactions i WHERE i.local_workflow_id = ?]], w.local_workflow_id)) do
    counts[r.name] = string.format("%d tokens, %d here", r.seen, r.here)
  end
  return dot.render(definition(db, w), counts)
end

-- gateway_links(db) -> {error records} (rule gateway-link): a role marked
-- is_recursive_gateway must link to a workflow of this instance, and a
-- role that is not one must link to nothing. definition() reads the link
-- through a LEFT JOIN, so a broken link would otherwise pass as a plain
-- BETA.
local function gateway_links(db)
  local out = {}
  for _, r in ipairs(db:rows([[SELECT w.name AS wf, r.name, r.is_recursive_gateway AS gw,
                                      r.linked_local_workflow_id AS link,
                                      c.local_workflow_id AS found
                               FROM Local_Roles r
                               JOIN Local_Workflows w ON w.local_workflow_id = r.local_workflow_id
                               LEFT JOIN Local_Workflows c ON c.local_workflow_id = r.linked_local_workflow_id
                               WHERE (r.is_recursive_gateway = 1 AND c.local_workflow_id IS NULL)
                                  OR (r.is_recursive_gateway = 0 AND r.linked_local_workflow_id IS NOT NULL)
                               ORDER BY w.name, r.position]])) do
    local found
    if r.gw ~= 1 then
      found = "is_recursive_gateway = " .. tostring(r.gw) .. " with linked_local_workflow_id " .. r.link
    elseif r.link == nil then
      found = "linked_local_workflow_id NULL"
    else
      found = "linked_local_workflow_id " .. r.link .. ", which is not a workflow of this instance"
    end
    out[#out + 1] = validate.new_error("instance:" .. r.wf, nil, "gateway-link",
      "role " .. validate.quote(r.name),
      r.gw == 1 and "a recursive gateway linked to a workflow of this instance (Local_Workflows)"
        or "no linked workflow on a role that is not a recursive gateway",
      found)
  end
  return out
end

-- validate(db) -> report, [msg, "INVALID"]: re-run import validation on
-- every workflow of the instance, resolving child workflows locally.
function M.validate(db)
  local defs = {}
  for _, w in ipairs(workflows(db)) do defs[w.name] = definition(db, w) end
  local lines, errs = arr(), {}
  local names = {}
  for _, w in ipairs(workflows(db)) do
    names[#names + 1] = w.name
    local e = validate.check(defs[w.name], {
      file = "instance:" .. w.name, lines = {}, expr = expr,
      lookup = function(n) return defs[n] end, json_null = null,
      load_check = meta.load_check, chm = chm })
    for _, x in ipairs(e) do
      errs[#errs + 1] = x
      lines[#lines + 1] = x.message or tostring(x)
    end
  end
  for _, x in ipairs(gateway_links(db)) do
    errs[#errs + 1] = x
    lines[#lines + 1] = x.message
  end
  local report = { ok = #errs == 0, errors = lines, workflows = arr(names) }
  if #errs > 0 then return report, table.concat(lines, "\n"), "INVALID" end
  return report
end

return M
