-- lua/instantiate.lua — deep-copies a master workflow and every child
-- workflow it reaches through recursive gateways from the meta-store into
-- a new instance store, in one transaction: fresh UUIDv7 ids, the
-- original ids kept for traceability, exactly one master, gateways linked
-- to the local copy of their child, Lua sources copied. After this the
-- instance never reads the meta-store (the air gap).
local meta = require("meta")
local util = require("util")

local M = {}

-- reachable(mdb, root) -> list of Template_Workflows rows, root first,
-- each workflow version once, following Template_Roles.child_workflow_id;
-- and parent_of[workflow_id] = the row that first reached it.
local function reachable(mdb, root)
  local list, seen, i = { root }, { [root.workflow_id] = true }, 1
  local parent_of = {}
  while i <= #list do
    local w = list[i]
    for _, r in ipairs(mdb:rows([[SELECT DISTINCT child_workflow_id FROM Template_Roles
                                  WHERE workflow_id = ? AND child_workflow_id IS NOT NULL
                                  ORDER BY position]], w.workflow_id)) do
      if not seen[r.child_workflow_id] then
        seen[r.child_workflow_id] = true
        list[#list + 1] = mdb:one("SELECT * FROM Template_Workflows WHERE workflow_id = ?",
                                  r.child_workflow_id)
        parent_of[r.child_workflow_id] = w
      end
    end
    i = i + 1
  end
  return list, parent_of
end

-- two_versions(root, old, new, parent_of) -> the message for a master
-- that reaches two versions of one child: which parent holds each, and
-- the re-imports (bottom up) that bind everything to the newest version.
local function two_versions(root, old, new, parent_of)
  if old.version > new.version then old, new = new, old end
  local function via(w)
    local p = parent_of[w.workflow_id]
    return string.format("version %d through '%s' version %d", w.version, p.name, p.version)
  end
  local chain, p = {}, parent_of[old.workflow_id]
  while p do
    chain[#chain + 1] = "'" .. p.name .. "'"
    p = parent_of[p.workflow_id]
  end
  return string.format("workflow '%s' reaches two versions of child workflow '%s' " ..
    "(%s, %s); an instance holds one workflow per name. Import binds a gateway to the " ..
    "newest version of its child, and re-importing a parent whose child has a newer " ..
    "version makes a new version of the parent: re-import %s (in that order), then " ..
    "instantiate again", root.name, old.name, via(old), via(new),
    table.concat(chain, ", then "))
end

-- run(mdb, idb, name, version, path, instance_name) -> report | nil, msg, code
function M.run(mdb, idb, name, version, path, instance_name)
  local root, msg, code = meta.find(mdb, name, version)
  if not root then return nil, msg, code end
  local wfs, parent_of = reachable(mdb, root)
  local names = {}
  for _, w in ipairs(wfs) do
    if names[w.name] then
      return nil, two_versions(root, names[w.name], w, parent_of), "INVALID"
    end
    names[w.name] = w
  end

  local now = util.now_iso()
  local instance_id = chm.uuid()
  instance_name = instance_name or (root.name .. "@" .. instance_id:sub(1, 13))
  idb:begin()
  idb:exec([[INSERT INTO Instance_Context (instance_id, name, description, status, deployment_date)
             VALUES (?,?,?,?,?)]], instance_id, instance_name,
    "instance of " .. root.name .. " version " .. root.version, "ACTIVE", now)

  local wf_map, role_map, report_wfs = {}, {}, chm.json.array({})
  for i, w in ipairs(wfs) do
    local lid = chm.uuid()
    wf_map[w.workflow_id] = lid
    local canon = chm.json.decode(w.schema_json)
    idb:exec([[INSERT INTO Local_Workflows (local_workflow_id, instance_id, original_workflow_id,
               name, description, ai_context, version, is_active, is_master, canonical_json,
               max_interactions) VALUES (?,?,?,?,?,?,?,1,?,?,?)]],
      lid, instance_id, w.workflow_id, w.name, w.description, w.ai_context, w.version,
      i == 1 and 1 or 0, w.schema_json, util.nn(canon.max_interactions))
    report_wfs[i] = { name = w.name, version = w.version, local_workflow_id = lid,
                      original_workflow_id = w.workflow_id, is_master = i == 1 }
  end

  local actors = {} -- name -> {id, type}
  local automated = {} -- local role ids the engine's actor must hold
  for _, w in ipairs(wfs) do
    local lid = wf_map[w.workflow_id]
    local inter_map, comp_map, actor_map = {}, {}, {}
    for _, r in ipairs(mdb:rows("SELECT * FROM Template_Roles WHERE workflow_id = ? ORDER BY position",
                                w.workflow_id)) do
      local id = chm.uuid()
      role_map[r.role_id] = id
      idb:exec([[INSERT INTO Local_Roles (role_id, local_workflow_id, name, description, ai_context,
                 role_type, decomposition_strategy, is_recursive_gateway, linked_local_workflow_id,
                 step_source, position, original_role_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)]],
        id, lid, r.name, r.description, r.ai_context, r.role_type, r.strategy,
        r.child_workflow_id and 1 or 0,
        r.child_workflow_id and wf_map[r.child_workflow_id] or nil,
        r.step_source, r.position, r.role_id)
      if r.role_type == "ALPHA" or r.step_source or r.child_workflow_id then
        automated[#automated + 1] = id
      end
    end
    for _, x in ipairs(mdb:rows("SELECT * FROM Template_Interactions WHERE workflow_id = ? ORDER BY position",
                                w.workflow_id)) do
      local id = chm.uuid()
      inter_map[x.interaction_id] = id
      idb:exec([[INSERT INTO Local_Interactions (interaction_id, local_workflow_id, name, description,
                 ai_context, stale_token_limit_seconds, position, original_interaction_id)
                 VALUES (?,?,?,?,?,?,?,?)]],
        id, lid, x.name, x.description, x.ai_context, x.stale_token_limit_seconds, x.position,
        x.interaction_id)
    end
    for _, c in ipairs(mdb:rows("SELECT * FROM Template_Components WHERE workflow_id = ? ORDER BY position",
                                w.workflow_id)) do
      local id = chm.uuid()
      comp_map[c.component_id] = id
      idb:exec([[INSERT INTO Local_Components (component_id, local_workflow_id, interaction_id, role_id,
                 direction, name, description, ai_context, routing, position, original_component_id)
                 VALUES (?,?,?,?,?,?,?,?,?,?,?)]],
        id, lid, inter_map[c.interaction_id], role_map[c.role_id], c.direction, c.name,
        c.description, c.ai_context, c.routing, c.position, c.component_id)
    end
    for _, g in ipairs(mdb:rows("SELECT * FROM Template_Guardians WHERE workflow_id = ? ORDER BY position",
                                w.workflow_id)) do
      idb:exec([[INSERT INTO Local_Guardians (guardian_id, local_workflow_id, component_id, name,
                 description, ai_context, type, attributes, position, original_guardian_id)
                 VALUES (?,?,?,?,?,?,?,?,?,?)]],
        chm.uuid(), lid, comp_map[g.component_id], g.name, g.description, g.ai_context, g.type,
        g.config, g.position, g.guardian_id)
    end
    for _, a in ipairs(mdb:rows("SELECT * FROM Template_Actors WHERE workflow_id = ? ORDER BY position",
                                w.workflow_id)) do
      local have = actors[a.name]
      if have and have.type ~= a.type then
        idb:rollback()
        return nil, string.format("actor '%s' is declared as %s in one workflow and as %s in " ..
          "workflow '%s'; actors are shared by the whole instance, so give them one type",
          a.name, have.type, a.type, w.name), "INVALID"
      end
      if not have then
        have = { id = chm.uuid(), type = a.type }
        actors[a.name] = have
        idb:exec([[INSERT INTO Local_Actors (actor_id, instance_id, identity_key, name, description,
                   ai_context, type, capabilities) VALUES (?,?,?,?,?,?,?,?)]],
          have.id, instance_id, a.identity_key, a.name, a.description, a.ai_context, a.type,
          a.capabilities)
      end
      actor_map[a.actor_id] = have.id
    end
    for _, s in ipairs(mdb:rows([[SELECT * FROM Template_Actor_Role_Assignments WHERE workflow_id = ?
                                  ORDER BY position]], w.workflow_id)) do
      idb:exec([[INSERT INTO Local_Actor_Role_Assignments (assignment_id, actor_id, role_id, status)
                 VALUES (?,?,?,?)]], chm.uuid(), actor_map[s.actor_id], role_map[s.role_id], s.status)
    end
  end
  -- The engine's own actor: "system" (SYSTEM), created when no workflow
  -- declares it, and assigned to every ALPHA, step and gateway role (an
  -- explicit REVOKED assignment in a definition is kept as it is).
  local sys = actors.system
  if sys and sys.type ~= "SYSTEM" then
    idb:rollback()
    return nil, "actor 'system' must be of type SYSTEM (found " .. sys.type ..
      "): the engine runs step functions as 'system'; rename that actor", "INVALID"
  end
  if not sys then
    sys = { id = chm.uuid(), type = "SYSTEM" }
    idb:exec([[INSERT INTO Local_Actors (actor_id, instance_id, identity_key, name, description,
               type) VALUES (?,?,?,?,?,?)]], sys.id, instance_id, "chameleon:system", "system",
      "the engine's own actor: runs step functions, gateways and genesis", "SYSTEM")
  end
  for _, rid in ipairs(automated) do
    idb:exec([[INSERT OR IGNORE INTO Local_Actor_Role_Assignments (assignment_id, actor_id, role_id, status)
               VALUES (?,?,?,'ACTIVE')]], chm.uuid(), sys.id, rid)
  end
  idb:commit()
  return { instance_id = instance_id, name = instance_name, path = path, workflows = report_wfs }
end

return M
