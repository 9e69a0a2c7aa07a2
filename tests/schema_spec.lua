-- tests/schema_spec.lua — checks the two store schemas (sql/meta/001_init.sql,
-- sql/instance/001_init.sql) against seed 000: exact names, descriptions,
-- v_ai_schema_guide, constraints and the append-only ledger.
-- Owned by the schema contributor. The first part applies the SQL files with
-- the sqlite3 CLI (os.execute/io.popen), so it needs no build; the last part
-- goes through `require "chameleon"` (chm.open_meta, m:query).
-- Run from the repository root: busted --lua=lua5.4 tests/schema_spec.lua

-- ---------------------------------------------------------------------------
-- Expected names (seed 000, exactly; then the documented extensions)
-- ---------------------------------------------------------------------------

local SEED_META = {
  Template_Workflows = {"workflow_id", "name", "description", "ai_context",
    "version", "schema_json", "created_at"},
  Template_Roles = {"role_id", "workflow_id", "name", "description",
    "ai_context", "role_type", "strategy", "child_workflow_id"},
  Template_Interactions = {"interaction_id", "workflow_id", "name",
    "description", "ai_context"},
  Template_Components = {"component_id", "workflow_id", "interaction_id",
    "role_id", "direction", "name", "description", "ai_context"},
  Template_Guardians = {"guardian_id", "workflow_id", "component_id", "name",
    "description", "ai_context", "type", "config"},
}

local SEED_INSTANCE = {
  Instance_Context = {"instance_id", "name", "description", "status",
    "deployment_date"},
  Local_Workflows = {"local_workflow_id", "instance_id", "original_workflow_id",
    "name", "description", "ai_context", "version", "is_active", "is_master"},
  Local_Roles = {"role_id", "local_workflow_id", "name", "description",
    "ai_context", "role_type", "decomposition_strategy", "is_recursive_gateway",
    "linked_local_workflow_id"},
  Local_Interactions = {"interaction_id", "local_workflow_id", "name",
    "description", "ai_context", "stale_token_limit_seconds"},
  Local_Components = {"component_id", "local_workflow_id", "interaction_id",
    "role_id", "direction", "name", "description", "ai_context"},
  Local_Guardians = {"guardian_id", "local_workflow_id", "component_id", "name",
    "description", "ai_context", "type", "attributes"},
  Local_Actors = {"actor_id", "instance_id", "identity_key", "name",
    "description", "ai_context", "type", "capabilities"},
  Local_Actor_Role_Assignments = {"assignment_id", "actor_id", "role_id",
    "status"},
  Local_Role_Attributes = {"memory_id", "instance_id", "role_id", "actor_id",
    "key", "value", "is_toxic", "last_accessed_at"},
  UnitsOfWork = {"uow_id", "instance_id", "local_workflow_id", "parent_id",
    "current_interaction_id", "status", "child_count", "finished_child_count"},
  UOW_Attributes = {"attribute_id", "uow_id", "instance_id", "key", "value",
    "version", "actor_id", "reasoning"},
  Interaction_Logs = {"log_id", "instance_id", "uow_id", "actor_id", "role_id",
    "interaction_id", "timestamp"},
}

-- Columns and tables the engine relies on beyond the seed (docs/schema.md).
local EXT_META = {
  Schema_Descriptions = {"table_name", "column_name", "description"},
  Template_Workflows = {"canonical_hash", "source_text", "source_name"},
  Template_Roles = {"step_source", "position"},
  Template_Interactions = {"stale_token_limit_seconds", "position"},
  Template_Components = {"routing", "position"},
  Template_Guardians = {"position"},
  Template_Actors = {"actor_id", "workflow_id", "name", "identity_key",
    "description", "ai_context", "type", "capabilities", "position"},
  Template_Actor_Role_Assignments = {"assignment_id", "workflow_id",
    "actor_id", "role_id", "status", "position"},
}

local EXT_INSTANCE = {
  Schema_Descriptions = {"table_name", "column_name", "description"},
  Local_Workflows = {"canonical_json", "max_interactions"},
  Local_Roles = {"step_source", "position", "original_role_id"},
  Local_Interactions = {"position", "original_interaction_id"},
  Local_Components = {"routing", "position", "original_component_id"},
  Local_Guardians = {"position", "original_guardian_id"},
  Local_Role_Attributes = {"created_at"},
  UnitsOfWork = {"version", "lease_holder_actor_id", "lease_expires_at",
    "entered_at", "queue_seq", "checkout_count", "max_interactions",
    "paused_from_status", "last_role_id", "failure_reason", "created_at",
    "updated_at", "return_uow_id", "context_json"},
  UOW_Attributes = {"created_at", "lineage_attribute_id"},
  Interaction_Logs = {"from_status", "to_status", "event", "decision",
    "guardian_id", "details", "prev_hash", "hash"},
  Token_Rejections = {"rejection_id", "uow_id", "guardian_id", "guardian_name",
    "guardian_type", "reason", "created_at"},
  Context_Injections = {"injection_id", "uow_id", "guardian_id", "rule_index",
    "field", "value", "created_at"},
}

-- ---------------------------------------------------------------------------
-- Helpers: paths, temp dirs, the sqlite3 CLI
-- ---------------------------------------------------------------------------

-- Repository root: two levels above this file, or the current directory.
local ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/tests/[^/]*$")) or "."
local META_SQL = ROOT .. "/sql/meta/001_init.sql"
local INSTANCE_SQL = ROOT .. "/sql/instance/001_init.sql"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function readfile(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function writefile(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

-- A fresh empty directory under the system temp dir; rmdir removes it.
local function mktempdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -m 700 " .. q(path)), "cannot create " .. path)
  return path
end

local function rmdir(path) os.execute("rm -rf " .. q(path)) end

local NULL = "\1NULL\1"                      -- -nullvalue marker
local US, RS = "\31", "\30"                  -- -ascii column/row separators

-- sqlite(db, sql) -> true, rows | false, message
-- Runs `sql` with the sqlite3 CLI (foreign_keys=ON, stop at the first error);
-- rows are tables column name -> string value (nil for NULL), from the
-- output of the last statement that printed rows.
local sql_file
local function sqlite(db, sql)
  writefile(sql_file, sql)
  local p = assert(io.popen("sqlite3 -bail -batch -ascii -header -nullvalue "
    .. q(NULL) .. " -cmd 'PRAGMA foreign_keys=ON' " .. q(db) .. " < "
    .. q(sql_file) .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  if not ok then
    return false, (out:gsub("%s+$", ""))
  end
  local rows, header = {}, nil
  for line in out:gmatch("([^" .. RS .. "]*)" .. RS) do
    local fields = {}
    for field in (line .. US):gmatch("([^" .. US .. "]*)" .. US) do
      fields[#fields + 1] = field
    end
    if header == nil then
      header = fields
    else
      local row = {}
      for i, name in ipairs(header) do
        if fields[i] ~= NULL then row[name] = fields[i] end
      end
      rows[#rows + 1] = row
    end
  end
  return true, rows
end

-- Like sqlite(), but any error fails the test with the CLI's message.
local function rows(db, sql)
  local ok, res = sqlite(db, sql)
  assert(ok, res)
  return res
end

-- Applies the shared version-1 file (sql/common) and then `file`, as the
-- library does for each schema version.
local COMMON_SQL = ROOT .. "/sql/common/001_schema_guide.sql"
local function apply(db, file)
  local p = assert(io.popen("cat " .. q(COMMON_SQL) .. " " .. q(file)
    .. " | sqlite3 -bail -batch -cmd 'PRAGMA foreign_keys=ON' " .. q(db) .. " 2>&1"))
  local out = p:read("a")
  return p:close(), out
end

local function columns(db, tbl)
  local names = {}
  for _, r in ipairs(rows(db, "SELECT name FROM pragma_table_info('" .. tbl
      .. "') ORDER BY cid;")) do
    names[#names + 1] = r.name
  end
  return names
end

local function tables(db)
  local set = {}
  for _, r in ipairs(rows(db, "SELECT name FROM sqlite_schema "
      .. "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\';")) do
    set[r.name] = true
  end
  return set
end

-- Names in `expected` (table -> columns) missing from the store, sorted.
local function missing_columns(db, expected)
  local missing, have_tables = {}, tables(db)
  for tbl, cols in pairs(expected) do
    if not have_tables[tbl] then
      missing[#missing + 1] = tbl .. " (table)"
    else
      local have = {}
      for _, c in ipairs(columns(db, tbl)) do have[c] = true end
      for _, c in ipairs(cols) do
        if not have[c] then missing[#missing + 1] = tbl .. "." .. c end
      end
    end
  end
  table.sort(missing)
  return missing
end

-- Rows of v_ai_schema_guide without a description, as "Table.column".
local function undescribed(guide_rows)
  local bad = {}
  for _, r in ipairs(guide_rows) do
    if type(r.description) ~= "string" or r.description == "" then
      bad[#bad + 1] = r.table_name .. "." .. r.column_name
    end
  end
  table.sort(bad)
  return bad
end

local UNDESCRIBED_SQL = [[
SELECT table_name, column_name, description FROM v_ai_schema_guide
 WHERE description IS NULL OR description = '';]]

-- Descriptions naming a table or column that does not exist (typos).
local ORPHANS_SQL = [[
SELECT d.table_name, d.column_name FROM Schema_Descriptions AS d
 WHERE NOT EXISTS (SELECT 1 FROM v_ai_schema_guide AS v
                    WHERE v.table_name = d.table_name
                      AND v.column_name = d.column_name);]]

local function names_of(rs)
  local out = {}
  for _, r in ipairs(rs) do out[#out + 1] = r.table_name .. "." .. r.column_name end
  return out
end

local function uuid(n) return string.format("00000000-0000-7000-8000-%012d", n) end
local TS = "2026-11-22T10:00:00.123Z"

-- ---------------------------------------------------------------------------
-- Part 1: the SQL files, applied with the sqlite3 CLI
-- ---------------------------------------------------------------------------

describe("schema files (sqlite3 CLI)", function()
  local dir, meta, inst

  setup(function()
    dir = mktempdir()
    sql_file = dir .. "/stmt.sql"
    meta, inst = dir .. "/meta.db", dir .. "/instance.db"
    local ok, out = apply(meta, META_SQL)
    assert(ok, "applying " .. META_SQL .. ": " .. out)
    ok, out = apply(inst, INSTANCE_SQL)
    assert(ok, "applying " .. INSTANCE_SQL .. ": " .. out)
  end)

  teardown(function() rmdir(dir) end)

  -- A scratch copy of the instance store for tests that write rows.
  local function scratch(name)
    local path = dir .. "/" .. name .. ".db"
    local ok, out = apply(path, INSTANCE_SQL)
    assert(ok, out)
    return path
  end

  local function seed_instance(db)
    rows(db, ([[
INSERT INTO Instance_Context (instance_id, name, deployment_date)
  VALUES ('%s', 'inst', '%s');
INSERT INTO Local_Workflows (local_workflow_id, instance_id, name, version, is_master)
  VALUES ('%s', '%s', 'wf', 1, 1), ('%s', '%s', 'child', 1, 0);
INSERT INTO Local_Roles (role_id, local_workflow_id, name, role_type, position)
  VALUES ('%s', '%s', 'F-02', 'BETA', 1);
INSERT INTO Local_Interactions (interaction_id, local_workflow_id, name, position)
  VALUES ('%s', '%s', 'q', 1);
INSERT INTO UnitsOfWork (uow_id, instance_id, local_workflow_id,
    current_interaction_id, entered_at, queue_seq, created_at, updated_at)
  VALUES ('%s', '%s', '%s', '%s', 1, 1, 1, 1);
INSERT INTO Interaction_Logs (instance_id, uow_id, timestamp, event, prev_hash, hash)
  VALUES ('%s', '%s', '%s', 'GENESIS', 'p', 'h');
]]):format(uuid(1), TS, uuid(2), uuid(1), uuid(3), uuid(1), uuid(4), uuid(2),
      uuid(5), uuid(2), uuid(6), uuid(1), uuid(2), uuid(5), uuid(1), uuid(6), TS))
  end

  it("contain no transaction, user_version or journal_mode statements", function()
    for _, file in ipairs({META_SQL, INSTANCE_SQL, COMMON_SQL}) do
      local text = readfile(file):gsub("%-%-[^\n]*", ""):upper()
      for _, word in ipairs({"BEGIN TRANSACTION", "BEGIN;", "COMMIT", "USER_VERSION",
          "JOURNAL_MODE", "ROLLBACK;"}) do
        assert.is_nil(text:find(word, 1, true), file .. " contains " .. word)
      end
    end
    assert.same({{user_version = "0"}}, rows(inst, "PRAGMA user_version;"))
  end)

  it("leave both stores consistent", function()
    for _, db in ipairs({meta, inst}) do
      assert.same({{integrity_check = "ok"}}, rows(db, "PRAGMA integrity_check;"))
      assert.same({}, rows(db, "PRAGMA foreign_key_check;"))
    end
  end)

  it("have every seed table and column of the meta-store, names exact", function()
    assert.same({}, missing_columns(meta, SEED_META))
  end)

  it("have every seed table and column of the instance store, names exact", function()
    assert.same({}, missing_columns(inst, SEED_INSTANCE))
  end)

  it("have the extension columns and tables the engine uses", function()
    assert.same({}, missing_columns(meta, EXT_META))
    assert.same({}, missing_columns(inst, EXT_INSTANCE))
  end)

  it("describe every table and column of both stores", function()
    for _, db in ipairs({meta, inst}) do
      local guide = rows(db, "SELECT * FROM v_ai_schema_guide;")
      assert.is_true(#guide > 0, "v_ai_schema_guide is empty in " .. db)
      local bad = undescribed(guide)
      assert(#bad == 0, "columns without a description: " .. table.concat(bad, ", "))
      local orphans = names_of(rows(db, ORPHANS_SQL))
      assert(#orphans == 0, "descriptions of nothing: " .. table.concat(orphans, ", "))
    end
  end)

  it("list every column of every table in v_ai_schema_guide", function()
    for _, db in ipairs({meta, inst}) do
      local guide = {}
      for _, r in ipairs(rows(db, "SELECT * FROM v_ai_schema_guide;")) do
        guide[r.table_name .. "." .. r.column_name] = true
      end
      local absent = {}
      for tbl in pairs(tables(db)) do
        if not guide[tbl .. "."] then absent[#absent + 1] = tbl end
        for _, c in ipairs(columns(db, tbl)) do
          if not guide[tbl .. "." .. c] then absent[#absent + 1] = tbl .. "." .. c end
        end
      end
      assert(#absent == 0, "missing from v_ai_schema_guide: " .. table.concat(absent, ", "))
    end
  end)

  it("answer v_ai_schema_guide for Local_Roles with every column described", function()
    local guide = rows(inst, "SELECT * FROM v_ai_schema_guide WHERE table_name = 'Local_Roles';")
    local names, by = {}, {}
    for _, r in ipairs(guide) do
      names[#names + 1] = r.column_name
      by[r.column_name] = r
    end
    assert.same({"", "role_id", "local_workflow_id", "name", "description",
      "ai_context", "role_type", "decomposition_strategy", "is_recursive_gateway",
      "linked_local_workflow_id", "step_source", "position", "original_role_id"}, names)
    assert.same({}, undescribed(guide))
    assert.equal("TABLE", by[""].data_type)
    assert.equal("1", by.role_id.is_primary_key)
    assert.equal("0", by.name.is_primary_key)
    assert.equal("TEXT", by.role_id.data_type)
    assert.equal("INTEGER", by.position.data_type)
    assert.equal("Local_Workflows.local_workflow_id", by.local_workflow_id.foreign_key_target)
    assert.equal("Local_Workflows.local_workflow_id",
      by.linked_local_workflow_id.foreign_key_target)
    assert.is_nil(by.name.foreign_key_target)
    assert.equal("Role Name. Must be unique within the local_workflow_id namespace.",
      by.name.description)
  end)

  it("reject a duplicate role name within one workflow, not across workflows", function()
    local db = scratch("dup_role")
    seed_instance(db)
    local ok, err = sqlite(db, ("INSERT INTO Local_Roles (role_id, local_workflow_id,"
      .. " name, role_type, position) VALUES ('%s', '%s', 'F-02', 'BETA', 2);")
      :format(uuid(10), uuid(2)))
    assert.is_false(ok)
    assert.matches("UNIQUE constraint failed: Local_Roles.local_workflow_id, Local_Roles.name",
      err, 1, true)
    rows(db, ("INSERT INTO Local_Roles (role_id, local_workflow_id, name, role_type,"
      .. " position) VALUES ('%s', '%s', 'F-02', 'BETA', 1);"):format(uuid(11), uuid(3)))
  end)

  it("reject a duplicate template (name, version), not a new version", function()
    local db = dir .. "/dup_wf.db"
    assert(apply(db, META_SQL))
    local ins = "INSERT INTO Template_Workflows (workflow_id, name, version, schema_json,"
      .. " created_at) VALUES ('%s', 'WF', %d, '{}', '" .. TS .. "');"
    rows(db, ins:format(uuid(1), 1))
    local ok, err = sqlite(db, ins:format(uuid(2), 1))
    assert.is_false(ok)
    assert.matches("UNIQUE constraint failed: Template_Workflows.name, Template_Workflows.version",
      err, 1, true)
    rows(db, ins:format(uuid(3), 2))
  end)

  it("allow only one master workflow per instance", function()
    local db = scratch("master")
    seed_instance(db)
    local ok, err = sqlite(db, ("UPDATE Local_Workflows SET is_master = 1"
      .. " WHERE local_workflow_id = '%s';"):format(uuid(3)))
    assert.is_false(ok)
    assert.matches("UNIQUE constraint failed", err, 1, true)
  end)

  it("refuse UPDATE and DELETE on Interaction_Logs", function()
    local db = scratch("ledger")
    seed_instance(db)
    local ok, err = sqlite(db, "UPDATE Interaction_Logs SET event = 'X';")
    assert.is_false(ok)
    assert.matches("Interaction_Logs is append-only", err, 1, true)
    ok, err = sqlite(db, "DELETE FROM Interaction_Logs;")
    assert.is_false(ok)
    assert.matches("Interaction_Logs is append-only", err, 1, true)
    assert.same({{n = "1"}}, rows(db, "SELECT count(*) AS n FROM Interaction_Logs;"))
    ok, err = sqlite(db, "DELETE FROM UnitsOfWork;")       -- logged token stays
    assert.is_false(ok)
    assert.matches("FOREIGN KEY constraint failed", err, 1, true)
  end)

  it("reject a dangling Local_Roles.local_workflow_id", function()
    local db = scratch("dangling")
    seed_instance(db)
    local ok, err = sqlite(db, ("INSERT INTO Local_Roles (role_id, local_workflow_id,"
      .. " name, role_type, position) VALUES ('%s', '%s', 'r', 'ALPHA', 1);")
      :format(uuid(20), uuid(999)))
    assert.is_false(ok)
    assert.matches("FOREIGN KEY constraint failed", err, 1, true)
  end)

  it("check enums, JSON and timestamps", function()
    local db = scratch("checks")
    seed_instance(db)
    local cases = {
      {("UPDATE Local_Roles SET role_type = 'GAMMA';"), "role_type IN"},
      {("UPDATE UnitsOfWork SET status = 'DONE';"), "status IN"},
      {("UPDATE Local_Roles SET ai_context = '{bad';"), "json_valid"},
      {("UPDATE Instance_Context SET deployment_date = '2026-11-22 10:00:00';"),
        "CHECK constraint failed: deployment_date_iso8601"},
    }
    for _, case in ipairs(cases) do
      local ok, err = sqlite(db, case[1])
      assert.is_false(ok, case[1])
      assert.matches(case[2], err, 1, true)
    end
  end)
end)

-- ---------------------------------------------------------------------------
-- Part 2: the same schema through the library (require "chameleon")
-- ---------------------------------------------------------------------------

local chm = require("chameleon")

describe("meta-store opened by the library", function()
  local dir, m

  setup(function()
    dir = mktempdir()
    m = assert(chm.open_meta(dir .. "/meta.db"))
  end)

  teardown(function()
    if m then m:close() end
    rmdir(dir)
  end)

  it("is at schema version 1", function()
    assert.equal(1, tonumber(m:query("PRAGMA user_version")[1].user_version))
  end)

  it("describes every table and column", function()
    assert.is_true(#m:query("SELECT * FROM v_ai_schema_guide") > 0,
      "v_ai_schema_guide is empty")
    local bad = names_of(m:query(UNDESCRIBED_SQL))
    assert(#bad == 0, "columns without a description: " .. table.concat(bad, ", "))
  end)

  it("has every seed column with its exact name", function()
    local missing = {}
    for tbl, cols in pairs(SEED_META) do
      local have = {}
      for _, r in ipairs(m:query("SELECT column_name FROM v_ai_schema_guide"
          .. " WHERE table_name = '" .. tbl .. "'")) do
        have[r.column_name] = true
      end
      for _, c in ipairs(cols) do
        if not have[c] then missing[#missing + 1] = tbl .. "." .. c end
      end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)
end)
