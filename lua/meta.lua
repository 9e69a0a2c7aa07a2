-- lua/meta.lua — meta-store operations behind chm_meta_*: loading a
-- workflow file (Lua in the sandbox, or JSON), validating it, storing it
-- as a new version in one transaction, listing, showing and exporting.
-- Trusted module: receives the store as `db` (dbbind.c) from the C core.
local util = require("util")
local dsl = require("dsl")
local normalize = require("normalize")
local validate = require("validate")
local expr = require("expr")
local conditions = require("conditions")
local dot = require("dot")

local json = chm.json
local null = json.null
local M = {}

-- The expression language's null is the engine's JSON null.
if expr.set_null then expr.set_null(null) end

-- Limits for running a workflow file: it only builds a table.
local LOAD_LIMITS = { instructions = 5000000, deadline_ms = 2000 }

-- load_check(src) -> true | nil, err: is a Lua function's text one the
-- engine will run (used by validation for {"lua": ...} conditions, routing
-- and steps)? It compiles and runs the source's chunk in the sandbox, as
-- the engine does, so a source that returns a closure over state of its
-- own is refused at import, not at the first token.
local function load_check(src)
  local f, err = conditions.load_function(src, "=lua")
  if not f then return nil, err end
  return true
end
M.load_check = load_check

-- latest(db, name) -> row of the newest version of workflow `name`, or nil.
local function latest(db, name)
  return db:one([[SELECT workflow_id, name, version, schema_json, created_at
                  FROM Template_Workflows WHERE name = ?
                  ORDER BY version DESC LIMIT 1]], name)
end

-- lookup function for validation: canonical definition of a stored name.
local function lookup_in(db)
  return function(name)
    local row = latest(db, name)
    if row then return json.decode(row.schema_json) end
    return nil
  end
end

-- file_error(path, err, expected) -> one error record (rule workflow-file)
-- for an error raised while loading or running a workflow file: the
-- sandbox's traceback is dropped, and the position is the user's own line
-- (the message's "file:line:" when it names the file, else the innermost
-- traceback frame in the file), never a frame of the engine's modules.
local function file_error(path, err, expected)
  local text = tostring(err)
  local msg, tb = text, ""
  local cut = text:find("\nstack traceback:", 1, true)
  if cut then msg, tb = text:sub(1, cut - 1), text:sub(cut) end
  -- is_file(chunk): the chunk id Lua printed names `path` (long ids are
  -- shortened to "...<tail>").
  local function is_file(chunk)
    if chunk == path then return true end
    return chunk:sub(1, 3) == "..." and #chunk > 3 and path:sub(-(#chunk - 3)) == chunk:sub(4)
  end
  local line
  local chunk, n, rest = msg:match("^(.-):(%d+): (.*)$")
  if chunk and not chunk:find("\n", 1, true) then
    if is_file(chunk) then line = tonumber(n) end
    msg = rest
  end
  if not line then
    for c, l in tb:gmatch("\n%s*([^\n]-):(%d+):") do
      if is_file(c) then line = tonumber(l); break end
    end
  end
  msg = validate.clean((msg:gsub("%s+$", ""):gsub("\n", " ")))
  return validate.new_error(path, line, "workflow-file", "workflow file", expected,
    "the error: " .. msg)
end

-- parse(path, text) -> canonical, lines | nil, {error records}
-- Runs a .lua file in a fresh sandbox environment extended with the DSL
-- constructors; decodes a .json file. Either way normalizes it.
function M.parse(path, text)
  if path:match("%.json$") then
    local ok, t = pcall(json.decode, text)
    if not ok then
      return nil, { { rule = "json", message = path .. ": invalid JSON: " .. tostring(t) } }
    end
    local canon, lines, errs = normalize.from_json(t, { file = path, json_null = null, chm = chm })
    if errs and #errs > 0 then return nil, errs end
    return canon, lines or {}
  end
  local env = chm.sandbox_env()
  for k, v in pairs(dsl.constructors(chm)) do env[k] = v end
  if text:sub(1, 1) == "\27" then
    return nil, { validate.new_error(path, nil, "workflow-file", "workflow file",
      "Lua source text", "a binary chunk (binary chunks are refused; give Lua source text)") }
  end
  local f, err = chm.load(text, "@" .. path, env)
  if not f then
    return nil, { file_error(path, err, "Lua source that compiles") }
  end
  local res = table.pack(chm.run(LOAD_LIMITS, f))
  if not res[1] then
    return nil, { file_error(path, res[2], "a file that runs to its end and returns a workflow") }
  end
  local canon, lines, errs = normalize.from_lua(res[2], {
    file = path, chm = chm, source_text = text, json_null = null })
  if errs and #errs > 0 then return nil, errs end
  return canon, lines or {}
end

-- check(db, path, canon, lines) -> {error records}
local function check(db, path, canon, lines)
  return validate.check(canon, {
    file = path, lines = lines, expr = expr, lookup = lookup_in(db),
    json_null = null, load_check = load_check, chm = chm })
end

-- messages(errs) -> one line per error.
local function messages(errs)
  local out = {}
  for i, e in ipairs(errs) do out[i] = e.message or tostring(e) end
  return table.concat(out, "\n")
end

-- validate(db, path, text) -> report, [msg, "INVALID"]
function M.validate(db, path, text)
  local canon, lines_or_errs = M.parse(path, text)
  local errs
  if not canon then
    errs = lines_or_errs
  else
    errs = check(db, path, canon, lines_or_errs)
  end
  local list = json.array({})
  for i, e in ipairs(errs) do list[i] = e.message or tostring(e) end
  local report = { file = path, name = canon and canon.name or null,
                   ok = #errs == 0, errors = list }
  if #errs > 0 then
    return report, messages(errs), "INVALID"
  end
  return report
end

-- Inserts the elements of a canonical definition under workflow_id.
local function store_elements(db, wid, canon)
  local role_ids, inter_ids, comp_ids, actor_ids = {}, {}, {}, {}
  for i, r in ipairs(canon.roles) do
    local id = chm.uuid()
    role_ids[r.name] = id
    local child_id = nil
    if util.nn(r.child_workflow) then
      local row = latest(db, r.child_workflow)
      if not row then error("child workflow '" .. r.child_workflow .. "' vanished during import") end
      child_id = row.workflow_id
    end
    local step = util.nn(r.step)
    db:exec([[INSERT INTO Template_Roles (role_id, workflow_id, name, description,
              ai_context, role_type, strategy, child_workflow_id, step_source, position)
              VALUES (?,?,?,?,?,?,?,?,?,?)]],
      id, wid, r.name, r.description, util.jcol(r.ai_context), r.type,
      util.nn(r.strategy), child_id, step and step.lua or nil, i)
  end
  for i, x in ipairs(canon.interactions) do
    local id = chm.uuid()
    inter_ids[x.name] = id
    db:exec([[INSERT INTO Template_Interactions (interaction_id, workflow_id, name,
              description, ai_context, stale_token_limit_seconds, position)
              VALUES (?,?,?,?,?,?,?)]],
      id, wid, x.name, x.description, util.jcol(x.ai_context),
      util.nn(x.stale_token_limit_seconds), i)
  end
  for i, c in ipairs(canon.components) do
    local id = chm.uuid()
    comp_ids[c.name] = id
    db:exec([[INSERT INTO Template_Components (component_id, workflow_id, interaction_id,
              role_id, direction, name, description, ai_context, routing, position)
              VALUES (?,?,?,?,?,?,?,?,?,?)]],
      id, wid, inter_ids[c.interaction], role_ids[c.role], c.direction, c.name,
      c.description, util.jcol(c.ai_context), util.jcol(c.routing), i)
  end
  for i, g in ipairs(canon.guardians) do
    db:exec([[INSERT INTO Template_Guardians (guardian_id, workflow_id, component_id,
              name, description, ai_context, type, config, position)
              VALUES (?,?,?,?,?,?,?,?,?)]],
      chm.uuid(), wid, comp_ids[g.component], g.name, g.description,
      util.jcol(g.ai_context), g.type, util.jcol(g.config) or "{}", i)
  end
  for i, a in ipairs(canon.actors) do
    local id = chm.uuid()
    actor_ids[a.name] = id
    db:exec([[INSERT INTO Template_Actors (actor_id, workflow_id, name, identity_key,
              description, ai_context, type, capabilities, position)
              VALUES (?,?,?,?,?,?,?,?,?)]],
      id, wid, a.name, util.nn(a.identity_key), a.description,
      util.jcol(a.ai_context), a.type, util.jcol(a.capabilities), i)
  end
  for i, s in ipairs(canon.assignments) do
    db:exec([[INSERT INTO Template_Actor_Role_Assignments (assignment_id, workflow_id,
              actor_id, role_id, status, position) VALUES (?,?,?,?,?,?)]],
      chm.uuid(), wid, actor_ids[s.actor], role_ids[s.role], s.status, i)
  end
end

-- stale_children(db, wid) -> {"child C now version N", ...}: the child
-- workflows stored version `wid` is bound to that have a newer version.
-- A version binds each gateway to the newest child when it is imported
-- and keeps that binding; re-importing the same definition makes a new
-- version bound to the newest children when this list is not empty.
local function stale_children(db, wid)
  local out = {}
  for _, c in ipairs(db:rows([[SELECT DISTINCT c.name, c.workflow_id FROM Template_Roles r
                               JOIN Template_Workflows c ON c.workflow_id = r.child_workflow_id
                               WHERE r.workflow_id = ? ORDER BY c.name]], wid)) do
    local now = latest(db, c.name)
    if now and now.workflow_id ~= c.workflow_id then
      out[#out + 1] = string.format("child %s now version %d", c.name, now.version)
    end
  end
  return out
end

-- import(db, path, text) -> {name, version, status, workflow_id} | nil, msg, code
-- Atomic: a rejected file writes nothing; an unchanged definition writes
-- nothing; a changed one becomes version N+1, and so does an unchanged one
-- whose children have newer versions (report.rebound names them).
function M.import(db, path, text)
  local canon, lines_or_errs = M.parse(path, text)
  if not canon then return nil, messages(lines_or_errs), "INVALID" end
  local errs = check(db, path, canon, lines_or_errs)
  if #errs > 0 then return nil, messages(errs), "INVALID" end
  local doc = json.encode(canon, true)
  db:begin()
  local last = latest(db, canon.name)
  local rebound = last and stale_children(db, last.workflow_id) or {}
  if last and last.schema_json == doc and #rebound == 0 then
    db:rollback()
    return { name = canon.name, version = last.version, status = "unchanged",
             workflow_id = last.workflow_id }
  end
  local wid = chm.uuid()
  local version = (last and last.version or 0) + 1
  db:exec([[INSERT INTO Template_Workflows (workflow_id, name, description, ai_context,
            version, schema_json, created_at, canonical_hash, source_text, source_name)
            VALUES (?,?,?,?,?,?,?,?,?,?)]],
    wid, canon.name, canon.description, util.jcol(canon.ai_context), version, doc,
    util.now_iso(), chm.sha256(doc), text, path)
  store_elements(db, wid, canon)
  db:commit()
  local report = { name = canon.name, version = version, status = "created", workflow_id = wid }
  if #rebound > 0 then report.rebound = table.concat(rebound, ", ") end
  return report
end

-- list(db) -> [{name, latest, versions = [{version, workflow_id, created_at}]}]
function M.list(db)
  local out, by = json.array({}), {}
  for _, r in ipairs(db:rows([[SELECT name, version, workflow_id, created_at, description
                               FROM Template_Workflows ORDER BY name, version]])) do
    local w = by[r.name]
    if not w then
      w = { name = r.name, versions = json.array({}) }
      by[r.name] = w
      out[#out + 1] = w
    end
    w.latest = r.version
    w.description = r.description
    w.versions[#w.versions + 1] = { version = r.version, workflow_id = r.workflow_id,
                                     created_at = r.created_at }
  end
  return out
end

-- find(db, name, version) -> row | nil, msg, "NOTFOUND"
local function find(db, name, version)
  version = tonumber(version) or 0
  local row
  if version > 0 then
    row = db:one([[SELECT * FROM Template_Workflows WHERE name = ? AND version = ?]],
                 name, version)
  else
    row = db:one([[SELECT * FROM Template_Workflows WHERE name = ?
                   ORDER BY version DESC LIMIT 1]], name)
  end
  if not row then
    local what = version > 0 and (" version " .. version) or ""
    return nil, "workflow '" .. name .. "'" .. what ..
      " is not in the meta-store (import it first; `chameleon list` shows what is there)",
      "NOTFOUND"
  end
  return row
end
M.find = find

-- show(db, name, version) -> the stored definition with ids and version.
function M.show(db, name, version)
  local row, msg, code = find(db, name, version)
  if not row then return nil, msg, code end
  local canon = json.decode(row.schema_json)
  canon.workflow_id = row.workflow_id
  canon.version = row.version
  canon.created_at = row.created_at
  canon.canonical_hash = row.canonical_hash
  canon.source_name = row.source_name
  return canon
end

-- export(db, name, version, fmt) -> canonical JSON text or DOT text.
function M.export(db, name, version, fmt)
  local row, msg, code = find(db, name, version)
  if not row then return nil, msg, code end
  local canon = json.decode(row.schema_json)
  if fmt == "dot" then return dot.render(canon) end
  return json.encode(canon, true) .. "\n"
end

return M
