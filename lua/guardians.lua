-- lua/guardians.lua — the guardian types of DESIGN §5 for the judge
-- (lua/judge.lua): compiles a guardian's config once into an evaluator and
-- evaluates a component's guardians into a checkout verdict. Pure except
-- CERBERUS, which counts the base token's children with one fixed query.
-- Trusted module; relies on lua/conditions.lua and `chm` (json, now).
-- Semantics and messages are documented in docs/guardians.md.
local conditions = require("conditions")

local M = {}

local type, pcall, next, error, ipairs = type, pcall, next, error, ipairs
local rawequal, tostring, tonumber = rawequal, tostring, tonumber
local format, match, concat = string.format, string.match, table.concat
local mtype = math.type

local null = chm.json.null
local show, typename, equal = conditions.show, conditions.typename, conditions.equal

-- Internal outcomes of an evaluator. ERROR is reported as REJECT at the top
-- level; inside a COMPOSITE it rejects the whole guard.
local PASS, REJECT, WAIT, ERROR = "PASS", "REJECT", "WAIT", "ERROR"

-- The children of a base token, for CERBERUS heads 2 and 3: how many,
-- how many finished, and the oldest given up (ARCHIVED) one, if any.
M.CHILDREN_SQL = "SELECT count(*) AS n, coalesce(sum(status IN " ..
  "('COMPLETED', 'REMEDIATED', 'FINALIZED')), 0) AS done, " ..
  "(SELECT a.uow_id FROM UnitsOfWork a WHERE a.parent_id = ?1 AND " ..
  "a.status = 'ARCHIVED' ORDER BY a.queue_seq LIMIT 1) AS archived " ..
  "FROM UnitsOfWork WHERE parent_id = ?1"

-- Types that never gate, so a COMPOSITE cannot hold them.
local NOT_NESTABLE = { DIRECTIONAL_FILTER = true, CONDITIONAL_INJECTOR = true }

local MAX_NESTING = 32 -- COMPOSITE inside COMPOSITE

local function isnull(v) return v == nil or rawequal(v, null) end

local function is_list(v)
  if type(v) ~= "table" then return false end
  local n = #v
  for k in next, v do
    if mtype(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

-- ======================================================================
-- Evaluators: COMPILE[type](cfg, depth) -> eval, pass_reason | nil, err
-- eval(view, scope, db) -> outcome [, reason]
-- ======================================================================

local COMPILE = {}

COMPILE.PASS_THRU = function()
  return function() return PASS end, "pass-through"
end

-- DIRECTIONAL_FILTER routes at submit (lua/routing.lua); at checkout it
-- has nothing to decide.
COMPILE.DIRECTIONAL_FILTER = function()
  return function() return PASS end, "routing guardian: it routes at submit and passes at checkout"
end

local function not_available(kind)
  local reason = kind .. " guardians are not available yet (issue: governance)"
  return function()
    return function() return REJECT, reason end, nil
  end
end
COMPILE.POLICY = not_available("POLICY")
COMPILE.APPROVAL = not_available("APPROVAL")

-- ---------------------------------------------------------------- criteria

local ORDER = {
  GT = function(a, b) return a > b end,
  GTE = function(a, b) return a >= b end,
  LT = function(a, b) return a < b end,
  LTE = function(a, b) return a <= b end,
}

local function criteria_condition(cond)
  local label = conditions.label(cond)
  local pass_reason = "criteria " .. label .. " holds"
  local false_reason = "criteria " .. label .. " is false"
  local fail_prefix = "criteria " .. label .. " failed: "
  if cond.kind == "expr" then
    -- Inlined conditions.test: the hot path of expression gates.
    local test, message = cond.test, conditions.message
    return function(_, scope)
      local ok, r = pcall(test, scope)
      if not ok then return ERROR, fail_prefix .. message(r) end
      if r then return PASS end
      return REJECT, false_reason
    end, pass_reason
  end
  return function(view, scope)
    local r, err = conditions.test(cond, view, scope)
    if r == nil then return ERROR, fail_prefix .. err end
    if r then return PASS end
    return REJECT, false_reason
  end, pass_reason
end

COMPILE.CRITERIA_GATE = function(cfg)
  if cfg.criteria ~= nil then
    local cond, err = conditions.compile(cfg.criteria, "=criteria")
    if not cond then return nil, "config.criteria: " .. err end
    return criteria_condition(cond)
  end
  local field, op, th = cfg.field, cfg.operator, cfg.threshold
  if type(field) ~= "string" or field == "" then
    return nil, "config.field: expected an attribute name (or config.criteria), got " .. show(field)
  end
  if not (ORDER[op] or op == "EQ" or op == "NE" or op == "IN") then
    return nil, "config.operator: expected one of GT, GTE, LT, LTE, EQ, NE, IN, got " .. show(op)
  end
  if th == nil then return nil, "config.threshold: missing" end
  local get = conditions.getter(field)
  local crit = format("%s %s %s", field, op, show(th))
  local pass_reason = "criterion " .. crit .. " holds"
  local missing = format("attribute '%s' is missing (criterion %s)", field, crit)
  local function is_false(v)
    return format("criterion %s is false (%s = %s)", crit, field, show(v))
  end
  local function mismatch(v, want)
    return format("attribute '%s' is %s, not %s (criterion %s)", field,
                  conditions.describe(v), want, crit)
  end

  local cmp = ORDER[op]
  if cmp then
    local tth = type(th)
    if tth ~= "number" and tth ~= "string" then
      return nil, "config.threshold: expected a number or a string for " .. op .. ", got " .. show(th)
    end
    local want = "a " .. tth
    return function(view)
      local v = get(view)
      if v == nil then return REJECT, missing end
      if type(v) ~= tth then return REJECT, mismatch(v, want) end
      if cmp(v, th) then return PASS end
      return REJECT, is_false(v)
    end, pass_reason
  end

  if op == "IN" then
    if not is_list(th) or th[1] == nil then
      return nil, "config.threshold: expected a non-empty list for IN, got " .. show(th)
    end
    local n = #th
    return function(view)
      local v = get(view)
      if v == nil then return REJECT, missing end
      for i = 1, n do
        if equal(v, th[i]) then return PASS end
      end
      return REJECT, is_false(v)
    end, pass_reason
  end

  -- EQ / NE: values of different types (null aside) are a mismatch.
  local want_eq = op == "EQ"
  local tn = typename(th)
  local want = tn == "object" and "an object" or ("a " .. tn)
  return function(view)
    local v = get(view)
    if v == nil then return REJECT, missing end
    local tv = typename(v)
    if tv ~= tn and tv ~= "null" and tn ~= "null" then return REJECT, mismatch(v, want) end
    if equal(v, th) == want_eq then return PASS end
    return REJECT, is_false(v)
  end, pass_reason
end

-- ---------------------------------------------------------------- TTL

-- days_from_civil(y, m, d) -> days since 1970-01-01 (Howard Hinnant).
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

local MONTH_DAYS = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- parse_iso(s) -> ms since the epoch | nil for anything but
-- YYYY-MM-DDTHH:MM:SS[.f]Z (1 to 9 fraction digits; milliseconds kept).
function M.parse_iso(s)
  local y, mo, d, h, mi, sec, frac =
    match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(.-)Z$")
  if not y then return nil end
  local ms = 0
  if frac ~= "" then
    local digits = match(frac, "^%.(%d+)$")
    if not digits or #digits > 9 then return nil end
    ms = tonumber((digits .. "00"):sub(1, 3))
  end
  y, mo, d, h, mi, sec = tonumber(y), tonumber(mo), tonumber(d), tonumber(h),
                         tonumber(mi), tonumber(sec)
  if mo < 1 or mo > 12 or d < 1 or d > MONTH_DAYS[mo] or h > 23 or mi > 59 or sec > 59 then
    return nil
  end
  if mo == 2 and d == 29 and not (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
    return nil
  end
  return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms
end

-- seconds(ms) -> "12 s" / "1.5 s" for messages.
local function seconds(ms)
  local s = ms / 1000
  if s == math.floor(s) and s < 2 ^ 53 then return format("%d s", s) end
  return format("%.3f s", s)
end

COMPILE.TTL_CHECK = function(cfg)
  local field, age = cfg.field, cfg.max_age_seconds
  if type(field) ~= "string" or field == "" then
    return nil, "config.field: expected the name of a timestamp attribute, got " .. show(field)
  end
  if type(age) ~= "number" or age ~= age or age <= 0 or age == math.huge then
    return nil, "config.max_age_seconds: expected a positive number, got " .. show(age)
  end
  local get = conditions.getter(field)
  local max_ms = age * 1000
  local limit = seconds(max_ms)
  local missing = format("attribute '%s' is missing; expected a timestamp (ms since the " ..
                         "epoch or ISO-8601 UTC) at most %s old", field, limit)
  return function(view)
    local v = get(view)
    if v == nil or rawequal(v, null) then return REJECT, missing end
    local ts
    if type(v) == "number" then
      if v ~= v or v == math.huge or v == -math.huge then ts = nil else ts = v end
    elseif type(v) == "string" then
      ts = M.parse_iso(v)
    end
    if not ts then
      return REJECT, format("attribute '%s' is %s, not a timestamp (ms since the epoch or " ..
                            "'YYYY-MM-DDTHH:MM:SS.mmmZ')", field, conditions.describe(v))
    end
    local old = chm.now() - ts
    if old <= max_ms then return PASS end
    return REJECT, format("attribute '%s' is %s old; at most %s allowed", field,
                          seconds(old), limit)
  end, format("attribute '%s' is at most %s old", field, limit)
end

-- ---------------------------------------------------------------- LUA

COMPILE.LUA = function(cfg)
  local p = cfg.predicate
  if type(p) ~= "table" or type(p.lua) ~= "string" then
    return nil, "config.predicate: expected {lua = <function source>}, got " .. show(p)
  end
  local f, err = conditions.load_function(p.lua, "=predicate")
  if not f then return nil, "config.predicate: " .. err end
  local call = conditions.call
  return function(view)
    local ok, r, why = call(f, view)
    if not ok then return ERROR, "predicate failed: " .. r end
    if r ~= nil and r ~= false and not rawequal(r, null) then return PASS end
    if type(why) == "string" and why ~= "" then return REJECT, why end
    return REJECT, "predicate returned " .. show(r)
  end, "predicate returned true"
end

-- ---------------------------------------------------------------- CERBERUS

COMPILE.CERBERUS = function(cfg)
  local require_children = cfg.require_children
  if require_children ~= nil and type(require_children) ~= "boolean" then
    return nil, "config.require_children: expected a boolean, got " .. show(require_children)
  end
  return function(view, _, db)
    local parent = view.parent_id
    if not isnull(parent) then
      return REJECT, format("Omega never receives a child: token %s is a child of %s",
                            tostring(view.uow_id), tostring(parent))
    end
    local status = view.status
    if status ~= "COMPLETED" and status ~= "REMEDIATED" then
      return WAIT, format("head 1 (base finished): the base token is %s; it waits until " ..
                          "it is COMPLETED or REMEDIATED", tostring(status))
    end
    local cc, fc = view.child_count or 0, view.finished_child_count or 0
    if require_children and cc == 0 then
      return WAIT, "head 2 (children accounted for): the base token has no children yet " ..
                   "(require_children)"
    end
    local ok, row = pcall(db.one, db, M.CHILDREN_SQL, view.uow_id)
    if not ok then error({ db_error = true, message = conditions.message(row) }, 0) end
    local archived = row and row.archived
    if not isnull(archived) then
      -- A given-up child never finishes: waiting would block the base for
      -- ever, so the join is rejected (the engine sends the base to the Ate).
      return REJECT, format("head 3 (children finished): child token %s was given up " ..
                            "(ARCHIVED), so base %s can never be joined", tostring(archived),
                            tostring(view.uow_id))
    end
    if fc ~= cc then
      return WAIT, format("head 2 (children accounted for): %d of %d children finished",
                          fc, cc)
    end
    local n, done = row and row.n or 0, row and row.done or 0
    if n ~= cc then
      return WAIT, format("head 2 (children accounted for): child_count is %d but %d %s",
                          cc, n, n == 1 and "child exists" or "children exist")
    end
    if done ~= n then
      return WAIT, format("head 3 (children finished): %d of %d children %s not " ..
                          "COMPLETED, REMEDIATED or FINALIZED", n - done, n,
                          n - done == 1 and "is" or "are")
    end
    return PASS
  end, "Cerberus: the base is finished and all its children are finished"
end

-- ---------------------------------------------------------------- COMPOSITE

local compile_nested

COMPILE.COMPOSITE = function(cfg, depth)
  depth = depth or 1
  if depth > MAX_NESTING then
    return nil, format("COMPOSITE nested more than %d levels deep", MAX_NESTING)
  end
  local op, list = cfg.op, cfg.guardians
  if op ~= "AND" and op ~= "OR" then
    return nil, "config.op: expected AND or OR, got " .. show(op)
  end
  if not is_list(list) or list[1] == nil then
    return nil, "config.guardians: expected a non-empty list of {type, config}, got " .. show(list)
  end
  local evals, labels = {}, {}
  for i, sub in ipairs(list) do
    local label = format("guardians[%d]", i)
    if type(sub) ~= "table" then
      return nil, label .. ": expected a {type, config} object, got " .. show(sub)
    end
    label = format("%s (%s)", label, tostring(sub.type))
    local ev, err = compile_nested(sub.type, sub.config, depth + 1)
    if not ev then return nil, label .. ": " .. err end
    evals[i], labels[i] = ev, label
  end
  local n = #evals
  if op == "AND" then
    return function(view, scope, db)
      for i = 1, n do
        local out, reason = evals[i](view, scope, db)
        if out ~= PASS then return out, labels[i] .. ": " .. (reason or out) end
      end
      return PASS
    end, format("all %d nested guardians passed", n)
  end
  return function(view, scope, db)
    local why, waited
    for i = 1, n do
      local out, reason = evals[i](view, scope, db)
      if out == PASS then return PASS end
      reason = labels[i] .. ": " .. (reason or out)
      if out == ERROR then return ERROR, reason end
      if out == WAIT then waited = true end
      why = why or {}
      why[#why + 1] = reason
    end
    return waited and WAIT or REJECT, format("none of %d nested guardians passed: %s", n,
                                             concat(why, "; "))
  end, "a nested guardian passed"
end

-- compile_nested(type, config, depth) -> eval | nil, err: one step of a
-- COMPOSITE.
compile_nested = function(gtype, cfg, depth)
  if NOT_NESTABLE[gtype] then
    return nil, format("a %s does not gate, so it cannot be nested", gtype)
  end
  local c = COMPILE[gtype]
  if not c then return nil, "unknown guardian type " .. show(gtype) end
  if isnull(cfg) then cfg = {} end
  if type(cfg) ~= "table" then return nil, "config: expected an object, got " .. show(cfg) end
  return c(cfg, depth)
end

-- ======================================================================
-- Injector
-- ======================================================================

local INJECT_FIELDS = { "model", "instructions", "knowledge" }

-- compile_injector(id, cfg) -> inject(view, scope) -> reason, list|nil.
-- Never gates: a broken rule is skipped and named in the reason.
local function compile_injector(id, cfg)
  local rules = cfg.rules
  if not is_list(rules) or rules[1] == nil then
    local reason = "invalid configuration: config.rules: expected a non-empty list of " ..
                   "{when, inject}, got " .. show(rules) .. "; nothing injected"
    return function() return reason end
  end
  local compiled = {}
  for i, r in ipairs(rules) do
    local rule = { index = i, entries = {} }
    if type(r) ~= "table" then
      rule.err = "expected a {when, inject} object, got " .. show(r)
    else
      local cond, err = conditions.compile(r.when, "=injector")
      if not cond then rule.err = "when: " .. err end
      rule.cond = cond
      local inj = r.inject
      if type(inj) ~= "table" then
        rule.err = rule.err or ("inject: expected a table, got " .. show(inj))
      else
        for _, f in ipairs(INJECT_FIELDS) do
          local v = inj[f]
          if not isnull(v) then
            -- Shared by every verdict: the engine only reads injections.
            rule.entries[#rule.entries + 1] =
              { guardian_id = id, rule_index = i, field = f, value = v }
          end
        end
      end
    end
    compiled[i] = rule
  end
  return function(view, scope)
    local list, matched, skipped
    for _, rule in ipairs(compiled) do
      local r, err
      if rule.err then r, err = nil, rule.err else r, err = conditions.test(rule.cond, view, scope) end
      if r == nil then
        skipped = skipped or {}
        skipped[#skipped + 1] = format("rule %d skipped: %s", rule.index, err)
      elseif r then
        matched = matched or {}
        local fields = {}
        for _, e in ipairs(rule.entries) do
          list = list or {}
          list[#list + 1] = e
          fields[#fields + 1] = e.field
        end
        matched[#matched + 1] = format("rule %d (%s)", rule.index, concat(fields, ", "))
      end
    end
    local reason = matched and ("injected: " .. concat(matched, "; ")) or "no rule matched"
    if skipped then reason = reason .. "; " .. concat(skipped, "; ") end
    return reason, list
  end
end

-- ======================================================================
-- Public API
-- ======================================================================

-- compile(g) -> guardian. g = {guardian_id, name, type, config, config_error?}
-- (config decoded from Local_Guardians.attributes). Never raises: a bad
-- config gives a guardian that rejects with the reason (an injector that
-- injects nothing). The result is what evaluate() takes.
function M.compile(g)
  local out = { guardian_id = g.guardian_id, name = g.name, type = g.type }
  local cfg = g.config
  if isnull(cfg) then cfg = {} end
  local ev, pass_reason, err
  if g.config_error then
    err = g.config_error
  elseif type(cfg) ~= "table" then
    err = "config: expected an object, got " .. show(cfg)
  elseif g.type == "CONDITIONAL_INJECTOR" then
    out.inject = compile_injector(g.guardian_id, cfg)
    return out
  elseif not COMPILE[g.type] then
    err = "unknown guardian type " .. show(g.type)
  else
    local ok
    ok, ev, pass_reason = pcall(COMPILE[g.type], cfg, 1)
    if not ok then
      ev, err = nil, "cannot compile: " .. conditions.message(ev)
    elseif not ev then
      err = pass_reason
    end
  end
  if not ev then
    if g.type == "CONDITIONAL_INJECTOR" then
      local reason = "invalid configuration: " .. err .. "; nothing injected"
      out.inject = function() return reason end
      return out
    end
    local reason = "invalid configuration: " .. err
    ev = function() return ERROR, reason end
  end
  out.eval = ev
  -- The PASS decision never changes: build it once, share it.
  out.pass_decision = { guardian_id = g.guardian_id, name = g.name, type = g.type,
                        decision = PASS, reason = pass_reason or "passed" }
  return out
end

-- evaluate(guards, view, db) -> verdict (see judge.gate). guards are
-- compiled guardians in position order. Gates run in order and the first
-- that does not pass decides; injectors add their injections, which the
-- verdict carries only when it passes. Raises only on database errors.
function M.evaluate(guards, view, db)
  local decisions, injections = {}, {}
  local scope = conditions.scope(view)
  for i = 1, #guards do
    local g = guards[i]
    local inject = g.inject
    if inject then
      local ok, reason, list = pcall(inject, view, scope)
      if not ok then reason, list = "rules failed: " .. conditions.message(reason), nil end
      decisions[#decisions + 1] = { guardian_id = g.guardian_id, name = g.name, type = g.type,
                                    decision = PASS, reason = reason }
      if list then
        for j = 1, #list do injections[#injections + 1] = list[j] end
      end
    else
      local ok, out, reason = pcall(g.eval, view, scope, db)
      if not ok then
        if type(out) == "table" and out.db_error then error(out.message, 0) end
        out, reason = ERROR, "guardian failed: " .. conditions.message(out)
      end
      if out == PASS then
        decisions[#decisions + 1] = g.pass_decision
      else
        local dec = out == WAIT and WAIT or REJECT
        reason = reason or dec
        decisions[#decisions + 1] = { guardian_id = g.guardian_id, name = g.name,
                                      type = g.type, decision = dec, reason = reason }
        return {
          pass = false, wait = dec == WAIT, reason = reason, decisions = decisions,
          injections = {},
          rejection = dec == REJECT and { guardian_id = g.guardian_id, name = g.name,
                                          type = g.type, reason = reason } or nil,
        }
      end
    end
  end
  return { pass = true, wait = false, decisions = decisions, injections = injections }
end

return M
