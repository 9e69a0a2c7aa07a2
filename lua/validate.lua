-- lua/validate.lua — the rules a canonical workflow definition must satisfy
-- before it is stored (docs/workflows.md has the table of rules). It reads
-- the canonical tree made by lua/normalize.lua and returns every error at
-- once, each naming file, line, rule, element, what was expected and what
-- was found. Trusted module: its dependencies (the expression compiler, the
-- meta-store lookup, the sandbox compile check) come in through ctx.
local M = {}

-- ======================================================================
-- Enumerations (the stable vocabulary of the canonical format)
-- ======================================================================

M.FORMAT = "chameleon.workflow/1"

M.ROLE_TYPES = { "ALPHA", "BETA", "OMEGA", "EPSILON", "TAU" }
M.STRATEGIES = { "HOMOGENEOUS", "HETEROGENEOUS" }
M.DIRECTIONS = { "INBOUND", "OUTBOUND" }
M.GUARDIAN_TYPES = { "PASS_THRU", "CRITERIA_GATE", "TTL_CHECK", "COMPOSITE",
  "CERBERUS", "DIRECTIONAL_FILTER", "CONDITIONAL_INJECTOR", "LUA", "POLICY",
  "APPROVAL" }
M.OPERATORS = { "GT", "GTE", "LT", "LTE", "EQ", "NE", "IN" }
M.ACTOR_TYPES = { "HUMAN", "AI_AGENT", "SYSTEM" }
M.STATUSES = { "ACTIVE", "REVOKED" }

-- Guardian types that never stop a token, so they do not count as a guard
-- on a cycle (DIRECTIONAL_FILTER routes at submit and passes at checkout);
-- and the types that cannot be nested in a COMPOSITE.
local NON_GATING = { PASS_THRU = true, CONDITIONAL_INJECTOR = true, DIRECTIONAL_FILTER = true }
local NOT_NESTABLE = { DIRECTIONAL_FILTER = true, CONDITIONAL_INJECTOR = true }

-- The Role types of which a workflow holds exactly one, and the component
-- each of them cannot do without (rule role-endpoint).
local SINGLETONS = { "ALPHA", "OMEGA", "EPSILON", "TAU" }
local ENDPOINT = {
  ALPHA = { "OUTBOUND", "an OUTBOUND component (ALPHA is the origin)" },
  OMEGA = { "INBOUND", "an INBOUND component (the Cerberus room)" },
  EPSILON = { "INBOUND", "an INBOUND component (the Ate)" },
  TAU = { "INBOUND", "an INBOUND component (Chronos)" },
}

-- Keys of every element of the canonical form, per namespace.
M.KEYS = {
  workflow = { "format", "name", "description", "ai_context", "max_interactions",
    "roles", "interactions", "components", "guardians", "actors", "assignments" },
  role = { "name", "type", "description", "ai_context", "strategy",
    "child_workflow", "step" },
  interaction = { "name", "description", "ai_context", "stale_token_limit_seconds" },
  component = { "name", "role", "interaction", "direction", "description",
    "ai_context", "routing" },
  guardian = { "name", "component", "type", "description", "ai_context", "config" },
  actor = { "name", "type", "identity_key", "description", "ai_context", "capabilities" },
  assignment = { "actor", "role", "status" },
}

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- an(word) -> "a word" or "an word" (by the first letter).
local function an(word)
  return (word:match("^[AEIOUaeiou]") and "an " or "a ") .. word
end
M.an = an

-- "A, B or C" from a list of words.
local function either(list)
  if #list == 1 then return list[1] end
  return table.concat(list, ", ", 1, #list - 1) .. " or " .. list[#list]
end
M.either = either

-- ======================================================================
-- Messages
-- ======================================================================

-- clean(s) -> s when it is valid UTF-8, else s with every byte above 127
-- written as \ddd (messages travel as JSON, which only carries UTF-8).
local function clean(s)
  if utf8.len(s) then return s end
  return (s:gsub("[\128-\255]", function(c) return "\\" .. c:byte() end))
end
M.clean = clean

-- quote(s) -> s in double quotes, with quotes, backslashes and control
-- characters escaped and long strings shortened.
local function quote(s)
  if #s > 80 then
    local cut = 77
    while cut > 1 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do cut = cut - 1 end
    s = s:sub(1, cut) .. "..."
  end
  s = s:gsub('[\\"]', "\\%0"):gsub("%c", function(c)
    if c == "\n" then return "\\n" end
    return string.format("\\%d", c:byte())
  end)
  return '"' .. clean(s) .. '"'
end
M.quote = quote

-- show(v [, null]) -> a short readable rendering of a found value for a
-- message: strings quoted, numbers and booleans as written, nil and the
-- json null sentinel as `null`, tables by kind.
function M.show(v, null)
  if v == nil or (null ~= nil and rawequal(v, null)) then return "null" end
  local t = type(v)
  if t == "string" then return quote(v) end
  if t == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    return string.format("%.14g", v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then
    if next(v) == nil then return "an empty table" end
    if rawget(v, 1) ~= nil then return "a list" end
    return "a table"
  end
  return an(t)
end

-- new_error(file, line, rule, element, expected, found) -> error record
-- {rule, element, line, expected, found, message}. line may be nil (JSON
-- input has none); the message then reads "<file>: [rule] ...".
function M.new_error(file, line, rule, element, expected, found)
  local where = (file or "?") .. (line and (":" .. line) or "") .. ": "
  return {
    rule = rule, element = element, line = line, expected = expected, found = found,
    message = string.format("%s[%s] %s: expected %s, found %s", where, rule,
      element, expected, found),
  }
end

-- distance(a, b) -> edit distance counting a swap of two neighbours as one
-- edit (optimal string alignment); names are short, O(#a * #b).
local function distance(a, b)
  local d = {}
  for i = 0, #a do d[i] = { [0] = i } end
  for j = 0, #b do d[0][j] = j end
  for i = 1, #a do
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
        v = math.min(v, d[i - 2][j - 2] + 1)
      end
      d[i][j] = v
    end
  end
  return d[#a][#b]
end

-- suggest(name, names) -> ' (did you mean "x"?)' for the closest of the
-- names (a set or a list) within a typo's distance, or "".
function M.suggest(name, names)
  if type(name) ~= "string" then return "" end
  local best, bestd
  local list = {}
  if names[1] ~= nil then list = names else
    for k in pairs(names) do list[#list + 1] = k end
    table.sort(list)
  end
  for _, cand in ipairs(list) do
    if type(cand) == "string" and cand ~= name then
      local d = distance(name:lower(), cand:lower())
      if d <= math.max(1, #name // 3) and (not bestd or d < bestd) then
        best, bestd = cand, d
      end
    end
  end
  return best and (" (did you mean " .. quote(best) .. "?)") or ""
end

-- ======================================================================
-- The checker: state shared by the rules
-- ======================================================================

local Checker = {}
Checker.__index = Checker

-- isnull(v): absent or the json null sentinel.
function Checker:isnull(v)
  return v == nil or (self.null ~= nil and rawequal(v, self.null))
end

function Checker:show(v) return M.show(v, self.null) end

-- add(rule, line, element, expected, found): record one error.
function Checker:add(rule, line, element, expected, found)
  local e = M.new_error(self.file, line, rule, element, expected, found)
  e.seq = #self.errors + 1
  self.errors[#self.errors + 1] = e
end

-- list(t) -> iterator over the array part of t (raw, metatables ignored);
-- nothing when t is not a table.
local function list(t)
  local i = 0
  return function()
    if type(t) ~= "table" then return nil end
    i = i + 1
    local v = rawget(t, i)
    if v == nil then return nil end
    return i, v
  end
end

-- keys_of(t) -> the keys of t sorted as strings (messages in a stable order).
local function keys_of(t)
  local ks = {}
  for k in next, t do ks[#ks + 1] = k end
  table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- is_array(t): a table whose keys are exactly 1..n (n may be 0).
local function is_array(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for k in next, t do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  return n == rawlen(t)
end

-- is_object(t): a table whose keys are all strings (may be empty).
local function is_object(t)
  if type(t) ~= "table" then return false end
  for k in next, t do if type(k) ~= "string" then return false end end
  return true
end

local function is_name(v) return type(v) == "string" and v ~= "" end

local function is_posint(v)
  return math.type(v) == "integer" and v > 0
end

-- ======================================================================
-- Namespaces: names, duplicates, line numbers
-- ======================================================================

-- label(kind, e, i) -> 'role "F-02"', or 'role #3' when the name is unusable.
local function label(kind, e, i)
  if type(e) == "table" and type(e.name) == "string" and e.name ~= "" then
    return kind .. " " .. quote(e.name)
  end
  return kind .. " #" .. i
end

-- index(kind, plural, items) -> {by name}, registering every element's
-- label and line; reports unusable names (rule name) and duplicates
-- (rule name-duplicate). Lines come from ctx.lines: "kind:name" for the
-- first element of a name, "kind:name#k" for the k-th.
function Checker:index(kind, plural, items)
  local by, seen = {}, {}
  for i, e in list(items) do
    if type(e) ~= "table" then
      self:add("shape", nil, kind .. " #" .. i, an(kind) .. " object", self:show(e))
    else
      local key = kind .. ":" .. tostring(e.name)
      seen[key] = (seen[key] or 0) + 1
      local line = self.lines[seen[key] == 1 and key or (key .. "#" .. seen[key])]
      self.where[e] = { label = label(kind, e, i), line = line }
      self:keys(kind, e)
      if not is_name(e.name) then
        self:add("name", line, self.where[e].label, "a non-empty name string", self:show(e.name))
      elseif by[e.name] then
        local first = self.where[by[e.name]].line
        self:add("name-duplicate", line, self.where[e].label,
          "a name used once among " .. plural,
          "a second " .. kind .. " of that name" ..
          ((first and first ~= line) and (" (first at line " .. first .. ")") or ""))
      else
        by[e.name] = e
      end
    end
  end
  return by
end

-- keys(kind, e): every canonical key of the element present (absent
-- optional values are null, never missing) and no other key.
function Checker:keys(kind, e)
  local w = self.where[e]
  local allowed = set_of(M.KEYS[kind])
  for _, k in ipairs(keys_of(e)) do
    if not allowed[k] then
      self:add("shape", w.line, w.label, "only the keys " .. table.concat(M.KEYS[kind], ", "),
        "key " .. self:show(k) .. M.suggest(k, M.KEYS[kind]))
    end
  end
end

-- text(e, key): description-like fields must be strings.
function Checker:text(e, key)
  local v = e[key]
  if type(v) ~= "string" then
    local w = self.where[e]
    self:add("shape", w.line, w.label .. " " .. key, "a string", self:show(v))
  end
end

-- enum(rule, e, key, values, what) -> the value when valid, else reports.
function Checker:enum(rule, e, key, values, what)
  local v = e[key]
  for _, ok in ipairs(values) do if v == ok then return v end end
  local w = self.where[e]
  self:add(rule, w.line, w.label, (what or key) .. " " .. either(values),
    self:show(v) .. M.suggest(v, values))
  return nil
end

-- ======================================================================
-- Conditions and Lua sources
-- ======================================================================

-- lua_source(element, path, v, rule, line) -> true when v is {"lua": text}
-- whose text compiles (ctx.load_check, or a syntax check with load).
function Checker:lua_source(element, v, rule, line)
  local src = type(v) == "table" and v.lua
  if type(src) ~= "string" then
    self:add(rule, line, element, "a Lua function", self:show(v))
    return false
  end
  for _, k in ipairs(keys_of(v)) do
    if k ~= "lua" then
      self:add(rule, line, element, "{lua = <source>} and nothing else", "key " .. self:show(k))
      return false
    end
  end
  if not src:match("^%s*function%f[^%w_]") then
    self:add(rule, line, element, "the source of a Lua function (function(...) ... end)",
      self:show(src))
    return false
  end
  local ok, err
  if self.load_check then
    ok, err = self.load_check(src)
  elseif load then
    ok, err = load("return " .. src, "=lua", "t", {})
  else
    ok = true
  end
  if not ok then
    self:add(rule, line, element, "a Lua function that compiles", tostring(err))
    return false
  end
  return true
end

-- expression(element, src, line): an expression string that compiles.
function Checker:expression(element, src, line)
  if type(src) ~= "string" then
    self:add("condition", line, element, "an expression string", self:show(src))
    return
  end
  if not self.expr then return end
  local ok, compiled, err = pcall(self.expr.compile, src)
  if not ok then err, compiled = compiled, nil end
  if not compiled then
    self:add("condition", line, element, "a valid expression",
      self:show(src) .. " (" .. tostring(err) .. ")")
  end
end

-- condition(element, v, line): an expression string or {"lua": source}.
function Checker:condition(element, v, line)
  if type(v) == "string" then
    self:expression(element, v, line)
  elseif type(v) == "table" and v.lua ~= nil then
    self:lua_source(element, v, "condition", line)
  else
    self:add("condition", line, element, "an expression string or a Lua function",
      self:show(v))
  end
end

-- ======================================================================
-- Guardian configurations (docs/definition-format.md, "Guardian configs")
-- ======================================================================

-- config_keys(elem, cfg, allowed, line) -> false when cfg has a key
-- outside allowed (reported).
function Checker:config_keys(elem, cfg, allowed, line)
  local set, good = set_of(allowed), true
  for _, k in ipairs(keys_of(cfg)) do
    k = tostring(k)
    if not set[k] then
      self:add("guardian-config", line, elem,
        #allowed == 0 and "no keys" or ("only the keys " .. table.concat(allowed, ", ")),
        "key " .. quote(k) .. M.suggest(k, allowed))
      good = false
    end
  end
  return good
end

-- Per-type checks. Each gets (checker, elem label, config table, line,
-- component) and reports rule guardian-config; `component` is the canonical
-- component the guardian sits on (nil inside a COMPOSITE).
local CONFIG = {}

CONFIG.PASS_THRU = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, {}, line)
end

CONFIG.CERBERUS = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "require_children" }, line)
  if cfg.require_children ~= nil and type(cfg.require_children) ~= "boolean" then
    c:add("guardian-config", line, elem .. " config.require_children", "a boolean",
      c:show(cfg.require_children))
  end
end

CONFIG.CRITERIA_GATE = function(c, elem, cfg, line)
  if cfg.criteria ~= nil then
    c:config_keys(elem, cfg, { "criteria" }, line)
    c:condition(elem .. " config.criteria", cfg.criteria, line)
    return
  end
  c:config_keys(elem, cfg, { "field", "operator", "threshold" }, line)
  if not is_name(cfg.field) then
    c:add("guardian-config", line, elem .. " config.field",
      "an attribute name (or config.criteria)", c:show(cfg.field))
  end
  local op = cfg.operator
  if not set_of(M.OPERATORS)[op] then
    c:add("guardian-config", line, elem .. " config.operator", "one of " .. either(M.OPERATORS),
      c:show(op) .. M.suggest(op, M.OPERATORS))
    op = nil
  end
  local th = cfg.threshold
  if th == nil then
    c:add("guardian-config", line, elem .. " config.threshold", "a threshold value", "none")
  elseif op == "IN" and not (is_array(th) and next(th) ~= nil) then
    c:add("guardian-config", line, elem .. " config.threshold",
      "a non-empty list for operator IN", c:show(th))
  elseif op and op ~= "IN" and op ~= "EQ" and op ~= "NE"
      and type(th) ~= "number" and type(th) ~= "string" then
    c:add("guardian-config", line, elem .. " config.threshold",
      "a number or string for operator " .. op, c:show(th))
  end
end

CONFIG.TTL_CHECK = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "field", "max_age_seconds" }, line)
  if not is_name(cfg.field) then
    c:add("guardian-config", line, elem .. " config.field",
      "the name of a timestamp attribute", c:show(cfg.field))
  end
  local age = cfg.max_age_seconds
  if type(age) ~= "number" or age ~= age or age <= 0 or age == math.huge then
    c:add("guardian-config", line, elem .. " config.max_age_seconds", "a positive number",
      c:show(age))
  end
end

CONFIG.COMPOSITE = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "op", "guardians" }, line)
  if cfg.op ~= "AND" and cfg.op ~= "OR" then
    c:add("guardian-config", line, elem .. " config.op", "AND or OR", c:show(cfg.op))
  end
  local gs = cfg.guardians
  if not is_array(gs) or next(gs) == nil then
    c:add("guardian-config", line, elem .. " config.guardians",
      "a non-empty list of {type, config}", c:show(gs))
    return
  end
  for i, g in list(gs) do
    local at = elem .. " config.guardians[" .. i .. "]"
    if type(g) ~= "table" then
      c:add("guardian-config", line, at, "a {type, config} object", c:show(g))
    else
      c:config_keys(at, g, { "type", "config" }, line)
      local t = g.type
      if not set_of(M.GUARDIAN_TYPES)[t] or NOT_NESTABLE[t] then
        local gates = {}
        for _, x in ipairs(M.GUARDIAN_TYPES) do
          if not NOT_NESTABLE[x] then gates[#gates + 1] = x end
        end
        c:add("guardian-config", line, at .. ".type", "a gating type " .. either(gates),
          c:show(t) .. M.suggest(t, gates))
      else
        c:guardian_config(at, t, g.config, line, nil)
      end
    end
  end
end

CONFIG.DIRECTIONAL_FILTER = function(c, elem, cfg, line, comp)
  c:config_keys(elem, cfg, { "field", "routes", "default" }, line)
  if not is_name(cfg.field) then
    c:add("guardian-config", line, elem .. " config.field", "an attribute name",
      c:show(cfg.field))
  end
  -- Targets must be interactions this component's role produces into.
  local reach, names = nil, {}
  if comp and c.outs_of[comp.role] then
    reach = {}
    for _, o in ipairs(c.outs_of[comp.role]) do
      reach[o.interaction] = true
      names[#names + 1] = o.interaction
    end
  end
  local function target(at, v)
    if not is_name(v) then
      c:add("guardian-config", line, at, "an interaction name", c:show(v))
    elseif reach and not reach[v] then
      c:add("guardian-config", line, at, "an interaction that role " .. quote(comp.role) ..
        " has an OUTBOUND component to (" .. either(names) .. ")", c:show(v) .. M.suggest(v, names))
    end
  end
  local routes = cfg.routes
  if not is_object(routes) or next(routes) == nil then
    c:add("guardian-config", line, elem .. " config.routes",
      "a non-empty table of value = interaction", c:show(routes))
  else
    for _, k in ipairs(keys_of(routes)) do
      target(elem .. " config.routes[" .. quote(k) .. "]", routes[k])
    end
  end
  if not c:isnull(cfg.default) then target(elem .. " config.default", cfg.default) end
end

CONFIG.CONDITIONAL_INJECTOR = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "rules" }, line)
  local rules = cfg.rules
  if not is_array(rules) or next(rules) == nil then
    c:add("guardian-config", line, elem .. " config.rules",
      "a non-empty list of {when, inject}", c:show(rules))
    return
  end
  for i, r in list(rules) do
    local at = elem .. " config.rules[" .. i .. "]"
    if not is_object(r) then
      c:add("guardian-config", line, at, "a {when, inject} object", c:show(r))
    else
      c:config_keys(at, r, { "when", "inject" }, line)
      c:condition(at .. ".when", r.when, line)
      local inj = r.inject
      if not is_object(inj) or next(inj) == nil then
        c:add("guardian-config", line, at .. ".inject",
          "a table with model, instructions and/or knowledge", c:show(inj))
      else
        c:config_keys(at .. ".inject", inj, { "model", "instructions", "knowledge" }, line)
        for _, k in ipairs({ "model", "instructions" }) do
          if inj[k] ~= nil and type(inj[k]) ~= "string" then
            c:add("guardian-config", line, at .. ".inject." .. k, "a string", c:show(inj[k]))
          end
        end
      end
    end
  end
end

CONFIG.LUA = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "predicate" }, line)
  c:lua_source(elem .. " config.predicate", cfg.predicate, "guardian-config", line)
end

CONFIG.POLICY = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "policy" }, line)
  if not is_name(cfg.policy) then
    c:add("guardian-config", line, elem .. " config.policy", "a policy name", c:show(cfg.policy))
  end
end

CONFIG.APPROVAL = function(c, elem, cfg, line)
  c:config_keys(elem, cfg, { "reviewers" }, line)
  local rv = cfg.reviewers
  if rv ~= nil then
    local ok = is_array(rv)
    for _, r in list(rv) do if not is_name(r) then ok = false end end
    if not ok then
      c:add("guardian-config", line, elem .. " config.reviewers", "a list of reviewer names",
        c:show(rv))
    end
  end
end

-- guardian_config(elem, type, cfg, line, comp): dispatch on the type.
function Checker:guardian_config(elem, gtype, cfg, line, comp)
  if self:isnull(cfg) then cfg = {} end
  if not is_object(cfg) then
    self:add("guardian-config", line, elem .. " config", "a config object", self:show(cfg))
    return
  end
  CONFIG[gtype](self, elem, cfg, line, comp)
end

-- ======================================================================
-- Routing
-- ======================================================================

-- resolve(role, target) -> number of the role's outbound components the
-- target names: by component name, else interaction name, else the name of
-- a role consuming the interaction.
function Checker:resolve(role, target)
  local outs = self.outs_of[role] or {}
  local by_comp, by_inter, by_consumer = 0, 0, 0
  for _, o in ipairs(outs) do
    if o.name == target then by_comp = by_comp + 1 end
    if o.interaction == target then by_inter = by_inter + 1 end
    for _, r in ipairs(self.consumers[o.interaction] or {}) do
      if r == target then by_consumer = by_consumer + 1 end
    end
  end
  if by_comp > 0 then return by_comp end
  if by_inter > 0 then return by_inter end
  return by_consumer
end

-- target(comp, at, v, line, nullable): a routing target that resolves.
function Checker:target(comp, at, v, line, nullable)
  if nullable and self:isnull(v) then return end
  local elem = self.where[comp].label .. " " .. at
  if not is_name(v) then
    self:add("routing-target", line, elem, "the name of a target", self:show(v))
    return
  end
  local n = self:resolve(comp.role, v)
  if n == 1 then return end
  local names = {}
  for _, o in ipairs(self.outs_of[comp.role] or {}) do
    names[#names + 1] = o.name
    names[#names + 1] = o.interaction
    for _, r in ipairs(self.consumers[o.interaction] or {}) do names[#names + 1] = r end
  end
  if n == 0 then
    self:add("routing-target", line, elem, "one of role " .. quote(comp.role) ..
      "'s outbound components (by component, interaction or consuming role name)",
      self:show(v) .. M.suggest(v, names))
  else
    self:add("routing-target", line, elem, "a target naming exactly one outbound component",
      self:show(v) .. " (it names " .. n .. ")")
  end
end

-- routing(comp): the four forms of docs/definition-format.md "Routing".
function Checker:routing(comp)
  local r = comp.routing
  if self:isnull(r) then return end
  local w = self.where[comp]
  local line, elem = w.line, w.label .. " routing"
  if comp.direction == "INBOUND" then
    self:add("routing-direction", line, w.label, "routing only on an OUTBOUND component",
      "routing on an INBOUND component")
    return
  end
  if not is_object(r) then
    self:add("routing-shape", line, elem, "a routing table or a Lua function", self:show(r))
    return
  end
  local function only(keys)
    local set = set_of(keys)
    for _, k in ipairs(keys_of(r)) do
      if not set[k] then
        self:add("routing-shape", line, elem, "only the keys " .. table.concat(keys, ", "),
          "key " .. self:show(k) .. M.suggest(k, keys))
      end
    end
  end
  if r.lua ~= nil then
    self:lua_source(elem, r, "condition", line)
  elseif r.when ~= nil then
    only({ "when" })
    self:condition(elem .. ".when", r.when, line)
  elseif r.branches ~= nil then
    only({ "branches", "default", "on_error" })
    if not is_array(r.branches) then
      self:add("routing-shape", line, elem .. ".branches", "a list of {when, to}",
        self:show(r.branches))
    else
      for i, b in list(r.branches) do
        local at = "routing.branches[" .. i .. "]"
        if not is_object(b) then
          self:add("routing-shape", line, w.label .. " " .. at, "a {when, to} object", self:show(b))
        else
          for _, k in ipairs(keys_of(b)) do
            if k ~= "when" and k ~= "to" then
              self:add("routing-shape", line, w.label .. " " .. at, "only the keys when, to",
                "key " .. self:show(k))
            end
          end
          self:condition(w.label .. " " .. at .. ".when", b.when, line)
          self:target(comp, at .. ".to", b.to, line)
        end
      end
    end
    self:target(comp, "routing.default", r.default, line, true)
    self:target(comp, "routing.on_error", r.on_error, line, true)
  elseif r.next_step_logic ~= nil then
    only({ "next_step_logic" })
    local n = r.next_step_logic
    if not is_object(n) then
      self:add("routing-shape", line, elem .. ".next_step_logic",
        'a table {"if" = [...], on_error, default}', self:show(n))
      return
    end
    for _, k in ipairs(keys_of(n)) do
      if k ~= "if" and k ~= "on_error" and k ~= "default" then
        self:add("routing-shape", line, elem .. ".next_step_logic", "only the keys if, on_error, default",
          "key " .. self:show(k))
      end
    end
    if not is_array(n["if"]) then
      self:add("routing-shape", line, elem .. ".next_step_logic.if", "a list of {expr, goto}",
        self:show(n["if"]))
    else
      for i, b in list(n["if"]) do
        local at = "next_step_logic.if[" .. i .. "]"
        if not is_object(b) then
          self:add("routing-shape", line, w.label .. " " .. at, "an {expr, goto} object",
            self:show(b))
        else
          for _, k in ipairs(keys_of(b)) do
            if k ~= "expr" and k ~= "goto" then
              self:add("routing-shape", line, w.label .. " " .. at, "only the keys expr, goto",
                "key " .. self:show(k))
            end
          end
          self:expression(w.label .. " " .. at .. ".expr", b.expr, line)
          self:target(comp, at .. ".goto", b["goto"], line)
        end
      end
    end
    self:target(comp, "next_step_logic.on_error", n.on_error, line, true)
    self:target(comp, "next_step_logic.default", n.default, line, true)
  else
    local keys = {}
    for _, k in ipairs(keys_of(r)) do keys[#keys + 1] = tostring(k) end
    self:add("routing-shape", line, elem, "one of {branches, default, on_error}, " ..
      "{next_step_logic}, {when} or a Lua function",
      #keys == 0 and "an empty table" or ("a table with keys " .. table.concat(keys, ", ")))
  end
end

-- ======================================================================
-- Where guardians act, who acts in a role
-- ======================================================================

-- outbound_guardian(w, gtype, comp, takers): a gate or an injector on an
-- OUTBOUND component is never used (rule guardian-direction): the engine
-- evaluates gates and injectors at checkout, on INBOUND components, and
-- reads only DIRECTIONAL_FILTER on the outbound side. w: the guardian's
-- label and line; takers: the INBOUND components on comp's interaction,
-- or nil. The message names where to move it.
function Checker:outbound_guardian(w, gtype, comp, takers)
  local want = gtype == "CONDITIONAL_INJECTOR"
    and "a CONDITIONAL_INJECTOR on an INBOUND component (injectors act at checkout)"
    or "a gating guardian on an INBOUND component (gates are evaluated at checkout)"
  local move
  if takers and #takers == 1 then
    move = "move it to " .. quote(takers[1].name) .. ", the inbound component of role " ..
      quote(takers[1].role) .. " that takes from " .. self:show(comp.interaction)
  elseif takers then
    local names = {}
    for i, cp in ipairs(takers) do names[i] = quote(cp.name) end
    move = "move it to the inbound components that take from " .. self:show(comp.interaction) ..
      " (" .. table.concat(names, ", ") .. ")"
  else
    move = "move it to an inbound component that takes from " .. self:show(comp.interaction)
  end
  self:add("guardian-direction", w.line, w.label, want, gtype .. " on the OUTBOUND component " ..
    quote(comp.name) .. ", where it is never evaluated; " .. move)
end

-- staffing(roles, assignments): every role that waits for an actor has an
-- assignment that is not REVOKED (rule role-unstaffed). ALPHA roles, roles
-- with a step and gateways need none: instantiation assigns them to the
-- engine's "system" actor. An instance cannot add actors, so tokens that
-- reach an unstaffed role stay there for ever. An assignment whose status
-- or actor is invalid still counts here (those rules report it).
function Checker:staffing(roles, assignments)
  local staffed, revoked = {}, {}
  for _, s in list(assignments) do
    if type(s) == "table" and type(s.role) == "string" then
      if s.status == "REVOKED" then
        revoked[s.role] = revoked[s.role] or {}
        table.insert(revoked[s.role], self:show(s.actor))
      else
        staffed[s.role] = true
      end
    end
  end
  local types = set_of(M.ROLE_TYPES)
  for _, r in ipairs(roles) do
    if types[r.type] and r.type ~= "ALPHA" and self:isnull(r.step)
        and self:isnull(r.child_workflow) and not staffed[r.name] then
      local w = self.where[r]
      local found = revoked[r.name]
        and ("only REVOKED assignments (" .. table.concat(revoked[r.name], ", ") .. ")")
        or "none"
      self:add("role-unstaffed", w.line, w.label,
        "an actor with an ACTIVE assignment" ..
        (r.type == "BETA" and ", a step or a child_workflow" or " or a step") ..
        " (nothing else takes the tokens that reach it, and an instance cannot add actors)",
        found .. "; assign an actor to it (roles = { " .. quote(r.name) ..
        " } on an actor) or give it a step")
    end
  end
end

-- ======================================================================
-- Cycles (Tarjan's strongly connected components over roles+interactions)
-- ======================================================================

-- automated(c, roles, assignments) -> role name -> why the role never waits:
-- it has a step, it is a gateway, or "system" holds it (chm_run takes its
-- tokens as soon as they arrive).
local function automated(c, roles, assignments)
  local out = {}
  for _, s in list(assignments) do
    if type(s) == "table" and s.actor == "system" and s.status ~= "REVOKED"
        and type(s.role) == "string" then
      out[s.role] = "it is assigned to \"system\""
    end
  end
  for _, r in ipairs(roles) do
    if not c:isnull(r.step) then out[r.name] = "it has a step"
    elseif not c:isnull(r.child_workflow) then out[r.name] = "it is a gateway" end
  end
  return out
end

-- sccs(edges, order) -> node -> the set of nodes of its strongly connected
-- component (Tarjan).
local function sccs(edges, order)
  local index, low, onstack, stack, comp_of, nextidx = {}, {}, {}, {}, {}, 0
  local function connect(v)
    nextidx = nextidx + 1
    index[v], low[v] = nextidx, nextidx
    stack[#stack + 1] = v; onstack[v] = true
    for _, e in ipairs(edges[v]) do
      if not index[e.to] then
        connect(e.to)
        low[v] = math.min(low[v], low[e.to])
      elseif onstack[e.to] then
        low[v] = math.min(low[v], index[e.to])
      end
    end
    if low[v] == index[v] then
      local scc = {}
      repeat
        local w = table.remove(stack)
        onstack[w] = nil
        scc[w] = true
        comp_of[w] = scc
      until w == v
    end
  end
  for _, v in ipairs(order) do if not index[v] then connect(v) end end
  return comp_of
end

local BOUNDS = "a gating guardian on one of its INBOUND components, max_interactions on " ..
  "the workflow, or stale_token_limit_seconds on one of its interactions whose roles all " ..
  "wait (no step, gateway or role of \"system\" takes from it)"

-- cycles(roles, interactions, comps, guards_of, assignments): every cycle
-- of the role/interaction graph is bounded (rule unguarded-cycle; the
-- caller skips the rule when the workflow sets max_interactions, which
-- bounds every cycle): by a gating guardian on one of its INBOUND
-- components (the engine gates at checkout only), or by a stale limit on
-- one of its interactions whose consuming roles all wait for someone (a
-- stale limit bounds a wait in a queue; a step, a gateway or a role of
-- "system" takes a token at once, so a limit on its queue never fires).
-- A loop with a person on every lap cannot run away on its own.
function Checker:cycles(roles, interactions, comps, guards_of, assignments)
  -- Nodes: "r:<role>" and "i:<interaction>"; edges from components in
  -- declaration order (so the reported path is deterministic).
  local all, order = {}, {}
  local function node(n)
    if not all[n] then all[n] = {}; order[#order + 1] = n end
  end
  for _, r in ipairs(roles) do node("r:" .. r.name) end
  for _, x in ipairs(interactions) do node("i:" .. x.name) end
  local consumers = {}
  for _, cp in ipairs(comps) do
    local from, to = "i:" .. cp.interaction, "r:" .. cp.role
    if cp.direction == "OUTBOUND" then from, to = to, from end
    table.insert(all[from], { from = from, to = to, comp = cp })
    if cp.direction == "INBOUND" then
      consumers[from] = consumers[from] or {}
      table.insert(consumers[from], cp.role)
    end
  end

  -- A stale limit bounds the loops through its interaction when every role
  -- taking from it waits; `waits_not[x]` names one that does not.
  local auto = automated(self, roles, assignments)
  local stale, waits_not = {}, {}
  for _, x in ipairs(interactions) do
    local n = "i:" .. x.name
    if not self:isnull(x.stale_token_limit_seconds) then
      stale[n] = true
      for _, r in ipairs(consumers[n] or {}) do
        if auto[r] and not waits_not[n] then waits_not[n] = r end
      end
    end
  end
  local function guarded(cp)
    if cp.direction ~= "INBOUND" then return false end
    for _, g in ipairs(guards_of[cp.name] or {}) do
      if not NON_GATING[g.type] then return true end
    end
    return false
  end
  local function bounding(n) return stale[n] and not waits_not[n] end
  local edges = {}
  for _, v in ipairs(order) do
    edges[v] = {}
    for _, e in ipairs(all[v]) do
      if not guarded(e.comp) and not bounding(v) and not bounding(e.to) then
        table.insert(edges[v], e)
      end
    end
  end

  -- One message per cycle: from each start role in declaration order, for
  -- each of its edges not yet on a reported cycle, the shortest way back to
  -- the role (BFS inside its component). Every unbounded loop is thus
  -- named, and the number of messages stays below the number of components.
  local covered = {}
  local comp_of = sccs(edges, order)
  for _, start in ipairs(order) do
    local scc = comp_of[start]
    local size = 0
    for _ in pairs(scc) do size = size + 1 end
    if size > 1 and start:sub(1, 2) == "r:" then
      for _, first in ipairs(edges[start]) do
        if scc[first.to] and not covered[first] then
          local prev, queue, head = { [first.to] = false }, { first.to }, 1
          local last
          while head <= #queue and not last do
            local v = queue[head]; head = head + 1
            for _, e in ipairs(edges[v]) do
              if e.to == start then last = e; break end
              if scc[e.to] and prev[e.to] == nil then
                prev[e.to] = e
                queue[#queue + 1] = e.to
              end
            end
          end
          -- Walk back from the closing edge to `first`, marking edges.
          local path, limited, e = {}, nil, last
          while e do
            covered[e] = true
            table.insert(path, 1, e.to:sub(3))
            if stale[e.to] then limited = e.to end
            e = (e ~= first) and (prev[e.from] or first) or nil
          end
          table.insert(path, 1, start:sub(3))
          local role = self.roles_by[start:sub(3)]
          local found = "none"
          if limited then
            local r = waits_not[limited]
            found = "stale_token_limit_seconds on " .. quote(limited:sub(3)) .. ", but role " ..
              quote(r) .. ", which takes from it, never waits (" .. auto[r] .. ")"
          end
          if last then
            self:add("unguarded-cycle", role and self.where[role].line,
              "cycle " .. table.concat(path, " → "), BOUNDS, found)
          end
        end
      end
    end
  end
end

-- ======================================================================
-- Child workflows (recursive gateways)
-- ======================================================================

-- children(def): every gateway's child exists; no chain of gateways leads
-- back to this workflow.
function Checker:children(def, roles)
  local lookup = self.lookup
  local cache = {}
  local function get(name)
    if name == def.name then return def end
    if cache[name] == nil then
      local ok, d = pcall(lookup or function() return nil end, name)
      cache[name] = (ok and type(d) == "table") and d or false
    end
    return cache[name] or nil
  end
  local function gateways(d)
    local out = {}
    for _, r in list(d.roles) do
      if type(r) == "table" and is_name(r.child_workflow) then out[#out + 1] = r.child_workflow end
    end
    return out
  end
  -- way_back(name, path, seen) -> path list from name back to def.name, or nil.
  local function way_back(name, path, seen)
    if name == def.name then return path end
    if seen[name] then return nil end
    seen[name] = true
    local d = get(name)
    if not d then return nil end
    for _, child in ipairs(gateways(d)) do
      path[#path + 1] = child
      local p = way_back(child, path, seen)
      if p then return p end
      path[#path] = nil
    end
    return nil
  end
  for _, r in ipairs(roles) do
    local child = r.child_workflow
    if is_name(child) and r.type == "BETA" then
      local w = self.where[r]
      if not get(child) then
        self:add("child-workflow", w.line, w.label .. " child_workflow",
          "an imported workflow named " .. quote(child), "none (import the child first)")
      else
        local path = way_back(child, { def.name, child }, {})
        if path then
          self:add("child-recursion", w.line, w.label .. " child_workflow",
            "child workflows that never lead back to " .. quote(def.name),
            table.concat(path, " → "))
        end
      end
    end
  end
end

-- actors_across(def, actors): an actor named "system" is the engine's own
-- and must be SYSTEM (rule actor-system); an actor declared in this
-- workflow and in a child workflow it reaches must have one type there and
-- here, since an instance shares actors (rule actor-conflict). Children
-- come from self.lookup (their latest stored version).
function Checker:actors_across(def, actors)
  for _, a in ipairs(actors) do
    if a.name == "system" and a.type ~= "SYSTEM" and set_of(M.ACTOR_TYPES)[a.type] then
      local w = self.where[a]
      self:add("actor-system", w.line, w.label,
        "type SYSTEM (the engine runs steps and gateways as \"system\"; rename this actor)",
        self:show(a.type))
    end
  end
  if not self.lookup or not is_name(def.name) then return end
  local seen, queue, head = { [def.name] = true }, {}, 1
  for _, r in list(def.roles) do
    if type(r) == "table" and is_name(r.child_workflow) and not seen[r.child_workflow] then
      seen[r.child_workflow] = true
      queue[#queue + 1] = r.child_workflow
    end
  end
  local theirs = {} -- actor name -> {type, workflow}, first declaration wins
  while head <= #queue do
    local name = queue[head]; head = head + 1
    local ok, d = pcall(self.lookup, name)
    if ok and type(d) == "table" then
      for _, a in list(d.actors) do
        if type(a) == "table" and is_name(a.name) and not theirs[a.name] then
          theirs[a.name] = { type = a.type, workflow = name }
        end
      end
      for _, r in list(d.roles) do
        if type(r) == "table" and is_name(r.child_workflow) and not seen[r.child_workflow] then
          seen[r.child_workflow] = true
          queue[#queue + 1] = r.child_workflow
        end
      end
    end
  end
  for _, a in ipairs(actors) do
    local t = theirs[a.name]
    if t and t.type ~= a.type and set_of(M.ACTOR_TYPES)[a.type] then
      local w = self.where[a]
      self:add("actor-conflict", w.line, w.label,
        "the type it has in child workflow " .. quote(t.workflow) .. " (" ..
        tostring(t.type) .. "; an instance shares actors across its workflows)",
        self:show(a.type))
    end
  end
end

-- utf8(def): every string of the definition, keys included, is valid
-- UTF-8 (the stores hold JSON text, which cannot carry anything else).
-- Rule utf8; the element is named by its label and a path inside it.
function Checker:utf8(def)
  local function bad(s)
    local ok, n, at = pcall(utf8.len, s)
    if ok and n then return nil end
    return ok and at or 1
  end
  local function walk(v, path, w, depth)
    if type(v) == "string" then
      local at = bad(v)
      if at then
        self:add("utf8", w.line, w.label .. (path ~= "" and (" " .. path) or ""),
          "UTF-8 text", "invalid UTF-8 at byte " .. at)
      end
    elseif type(v) == "table" and depth < 64 then
      for _, k in ipairs(keys_of(v)) do
        local kp
        if type(k) == "string" then
          if bad(k) then
            self:add("utf8", w.line, w.label .. (path ~= "" and (" " .. path) or ""),
              "UTF-8 keys", "a key with invalid UTF-8 at byte " .. bad(k))
            kp = path .. "[?]"
          else
            kp = path == "" and k or (path .. "." .. k)
          end
        else
          kp = path .. "[" .. tostring(k) .. "]"
        end
        walk(rawget(v, k), kp, w, depth + 1)
      end
    end
  end
  local wl = self.where[def]
  for _, k in ipairs(keys_of(def)) do
    local v = rawget(def, k)
    local ns = { roles = true, interactions = true, components = true, guardians = true,
                 actors = true, assignments = true }
    if ns[k] and type(v) == "table" then
      for i, e in list(v) do
        local w = self.where[e] or { label = k .. "[" .. i .. "]", line = wl.line }
        walk(e, "", w, 1)
      end
    else
      walk({ [k] = v }, "", wl, 0)
    end
  end
end

-- ======================================================================
-- check
-- ======================================================================

-- M.check(def, ctx) -> {error records}, empty when the definition is valid.
-- def: a canonical definition (lua/normalize.lua). ctx fields, all optional:
--   file       name used in messages ("?" when absent)
--   lines      element key -> line (from normalize; JSON has none)
--   expr       the expression compiler (expr.compile); without it,
--              expression strings are not compiled
--   load_check function(src) -> true | nil, err for Lua function sources
--              (default: a syntax check with load)
--   lookup     function(name) -> canonical definition of the latest stored
--              version, or nil (default: nothing is stored)
--   json_null  the json null sentinel (also ctx.null / ctx.chm.json.null)
-- Errors are sorted by line (stable); each has {rule, element, line,
-- expected, found, message}. Never raises on a malformed definition.
function M.check(def, ctx)
  ctx = ctx or {}
  local c = setmetatable({
    file = ctx.file or "?", lines = ctx.lines or {}, expr = ctx.expr,
    load_check = ctx.load_check, lookup = ctx.lookup,
    null = ctx.json_null or ctx.null or (ctx.chm and ctx.chm.json and ctx.chm.json.null),
    errors = {}, where = {}, outs_of = {}, consumers = {},
  }, Checker)
  if type(def) ~= "table" then
    c:add("shape", nil, "workflow", "a workflow definition", c:show(def))
    return c.errors
  end
  local wline = c.lines.workflow
  local wlabel = "workflow " .. (type(def.name) == "string" and quote(def.name) or "?")
  c.where[def] = { label = wlabel, line = wline }

  -- Workflow fields.
  c:keys("workflow", def)
  if def.format ~= M.FORMAT then
    c:add("format", wline, wlabel, "format " .. quote(M.FORMAT), c:show(def.format))
  end
  if not is_name(def.name) then
    c:add("name", wline, wlabel, "a non-empty name string", c:show(def.name))
  end
  c:text(def, "description")
  if not c:isnull(def.max_interactions) and not is_posint(def.max_interactions) then
    c:add("max-interactions", wline, wlabel .. " max_interactions",
      "a positive integer or null", c:show(def.max_interactions))
  end
  for _, k in ipairs({ "roles", "interactions", "components", "guardians", "actors", "assignments" }) do
    if not is_array(def[k]) then
      c:add("shape", wline, wlabel .. " " .. k, "a list", c:show(def[k]))
    end
  end

  -- Namespaces.
  local roles_by = c:index("role", "roles", def.roles)
  local inter_by = c:index("interaction", "interactions", def.interactions)
  local comps_by = c:index("component", "components", def.components)
  c:index("guardian", "guardians", def.guardians)
  local actors_by = c:index("actor", "actors", def.actors)
  c.roles_by = roles_by

  -- Roles (the valid ones, in order, for the graph rules).
  local roles = {}
  local role_names = {}
  for _, r in list(def.roles) do
    if type(r) == "table" and is_name(r.name) then role_names[#role_names + 1] = r.name end
  end
  for _, r in list(def.roles) do
    if type(r) == "table" then
      local w = c.where[r]
      c:text(r, "description")
      local t = c:enum("role-type", r, "type", M.ROLE_TYPES, "type")
      if t == "BETA" then
        c:enum("beta-strategy", r, "strategy", M.STRATEGIES, "strategy")
      elseif not c:isnull(r.strategy) then
        c:add("beta-strategy", w.line, w.label, "no strategy (only BETA roles decompose)",
          c:show(r.strategy))
      end
      if not c:isnull(r.child_workflow) then
        if not is_name(r.child_workflow) then
          c:add("gateway", w.line, w.label .. " child_workflow", "a workflow name",
            c:show(r.child_workflow))
        elseif t and t ~= "BETA" then
          c:add("gateway", w.line, w.label, "child_workflow only on a BETA role",
            an(t) .. " role with child_workflow " .. quote(r.child_workflow))
        elseif not c:isnull(r.step) then
          c:add("gateway", w.line, w.label, "either child_workflow or step", "both")
        end
      end
      if not c:isnull(r.step) then c:lua_source(w.label .. " step", r.step, "step", w.line) end
      if roles_by[r.name] == r then roles[#roles + 1] = r end
    end
  end

  -- Interactions.
  local interactions = {}
  for _, x in list(def.interactions) do
    if type(x) == "table" then
      c:text(x, "description")
      local s = x.stale_token_limit_seconds
      if not c:isnull(s) and not is_posint(s) then
        local w = c.where[x]
        c:add("stale-limit", w.line, w.label .. " stale_token_limit_seconds",
          "a positive integer or null", c:show(s))
      end
      if inter_by[x.name] == x then interactions[#interactions + 1] = x end
    end
  end
  local inter_names = {}
  for _, x in ipairs(interactions) do inter_names[#inter_names + 1] = x.name end

  -- Components: references, direction; collect the valid graph edges.
  local comps = {}
  for _, cp in list(def.components) do
    if type(cp) == "table" then
      local w = c.where[cp]
      c:text(cp, "description")
      local ok = true
      if not roles_by[cp.role] then
        c:add("reference", w.line, w.label .. " role", "a declared role",
          c:show(cp.role) .. M.suggest(cp.role, role_names))
        ok = false
      end
      if not inter_by[cp.interaction] then
        c:add("reference", w.line, w.label .. " interaction", "a declared interaction",
          c:show(cp.interaction) .. M.suggest(cp.interaction, inter_names))
        ok = false
      end
      if not c:enum("direction", cp, "direction", M.DIRECTIONS, "direction") then ok = false end
      if ok and comps_by[cp.name] == cp then comps[#comps + 1] = cp end
    end
  end
  local ins_of, outs_of, producers, consumers, ins_by_inter = {}, {}, {}, {}, {}
  for _, cp in ipairs(comps) do
    if cp.direction == "OUTBOUND" then
      outs_of[cp.role] = outs_of[cp.role] or {}
      table.insert(outs_of[cp.role], cp)
      producers[cp.interaction] = (producers[cp.interaction] or 0) + 1
    else
      ins_of[cp.role] = ins_of[cp.role] or {}
      table.insert(ins_of[cp.role], cp)
      consumers[cp.interaction] = consumers[cp.interaction] or {}
      table.insert(consumers[cp.interaction], cp.role)
      ins_by_inter[cp.interaction] = ins_by_inter[cp.interaction] or {}
      table.insert(ins_by_inter[cp.interaction], cp)
    end
  end
  c.outs_of, c.consumers = outs_of, consumers

  -- Guardians: reference, type, placement, config.
  local guards_of = {}
  local comp_names = {}
  for _, cp in list(def.components) do
    if type(cp) == "table" and is_name(cp.name) then comp_names[#comp_names + 1] = cp.name end
  end
  for _, g in list(def.guardians) do
    if type(g) == "table" then
      local w = c.where[g]
      c:text(g, "description")
      local comp = comps_by[g.component]
      if not comp then
        c:add("reference", w.line, w.label .. " component", "a declared component",
          c:show(g.component) .. M.suggest(g.component, comp_names))
      end
      local t = c:enum("guardian-type", g, "type", M.GUARDIAN_TYPES, "type")
      if comp then
        guards_of[comp.name] = guards_of[comp.name] or {}
        table.insert(guards_of[comp.name], g)
      end
      if comp and t then
        if t == "CERBERUS" and comp.direction == "OUTBOUND" then
          c:add("guardian-placement", w.line, w.label, "CERBERUS on an INBOUND component",
            "it on OUTBOUND component " .. quote(comp.name))
        elseif t == "DIRECTIONAL_FILTER" and comp.direction == "INBOUND" then
          c:add("guardian-placement", w.line, w.label, "DIRECTIONAL_FILTER on an OUTBOUND component",
            "it on INBOUND component " .. quote(comp.name))
        elseif comp.direction == "OUTBOUND" and t ~= "DIRECTIONAL_FILTER" and t ~= "PASS_THRU" then
          c:outbound_guardian(w, t, comp, ins_by_inter[comp.interaction])
        end
      end
      if t then c:guardian_config(w.label, t, g.config, w.line, comp) end
    end
  end

  -- Exactly one of each special role, and the component it needs.
  local of_type = {}
  for _, r in ipairs(roles) do
    of_type[r.type] = of_type[r.type] or {}
    table.insert(of_type[r.type], r)
  end
  for _, t in ipairs(SINGLETONS) do
    local rs = of_type[t] or {}
    if #rs ~= 1 then
      local names = {}
      for _, r in ipairs(rs) do names[#names + 1] = quote(r.name) end
      c:add("role-singleton", #rs > 1 and c.where[rs[2]].line or wline, wlabel,
        "exactly one " .. t .. " role",
        #rs == 0 and "none" or (#rs .. " (" .. table.concat(names, ", ") .. ")"))
    end
  end
  for _, r in ipairs(roles) do
    local need = ENDPOINT[r.type]
    if need then
      local have = need[1] == "OUTBOUND" and outs_of[r.name] or ins_of[r.name]
      if not have then
        c:add("role-endpoint", c.where[r].line, c.where[r].label, need[2], "none")
      end
    end
  end

  -- Ate and Chronos: inbound interactions of EPSILON and TAU.
  local engine_fed = {}
  for _, r in ipairs(roles) do
    if r.type == "EPSILON" or r.type == "TAU" then
      for _, cp in ipairs(ins_of[r.name] or {}) do engine_fed[cp.interaction] = true end
    end
  end
  for _, x in ipairs(interactions) do
    local w = c.where[x]
    if not producers[x.name] and not engine_fed[x.name] then
      c:add("interaction-producer", w.line, w.label,
        "at least one producer (an OUTBOUND component)", "none")
    end
    if not consumers[x.name] then
      c:add("interaction-consumer", w.line, w.label,
        "at least one consumer (an INBOUND component)", "none")
    end
  end

  -- Guards required on the inbound side of EPSILON and OMEGA.
  for _, r in ipairs(roles) do
    for _, cp in ipairs(ins_of[r.name] or {}) do
      local gs = guards_of[cp.name] or {}
      local w = c.where[cp]
      if r.type == "EPSILON" and #gs == 0 then
        c:add("epsilon-guard", w.line, w.label,
          "a guardian on EPSILON's inbound component (it triages the Ate)", "none")
      elseif r.type == "OMEGA" then
        local has, other = false, {}
        for _, g in ipairs(gs) do
          if g.type == "CERBERUS" then has = true else other[#other + 1] = g.type end
        end
        if not has then
          c:add("omega-cerberus", w.line, w.label,
            "a CERBERUS guardian on OMEGA's inbound component",
            #other == 0 and "none" or ("only " .. table.concat(other, ", ")))
        end
      end
    end
  end

  -- Routing: required on roles with several outbound components; valid.
  for _, r in ipairs(roles) do
    local outs = outs_of[r.name] or {}
    if #outs > 1 then
      local routed = false
      for _, cp in ipairs(outs) do
        if not c:isnull(cp.routing) then routed = true end
        for _, g in ipairs(guards_of[cp.name] or {}) do
          if g.type == "DIRECTIONAL_FILTER" then routed = true end
        end
      end
      if not routed then
        c:add("routing-required", c.where[r].line, c.where[r].label,
          "routing on at least one of its " .. #outs .. " outbound components", "none")
      end
    end
  end
  for _, cp in list(def.components) do
    if type(cp) == "table" and c.where[cp] then c:routing(cp) end
  end

  -- Actors and assignments.
  for _, a in list(def.actors) do
    if type(a) == "table" then
      c:text(a, "description")
      c:enum("actor-type", a, "type", M.ACTOR_TYPES, "type")
      if not c:isnull(a.identity_key) and type(a.identity_key) ~= "string" then
        local w = c.where[a]
        c:add("shape", w.line, w.label .. " identity_key", "a string or null", c:show(a.identity_key))
      end
    end
  end
  local actor_names = {}
  for _, a in list(def.actors) do
    if type(a) == "table" and is_name(a.name) then actor_names[#actor_names + 1] = a.name end
  end
  local pairs_seen = {}
  local akeys = {}
  for i, s in list(def.assignments) do
    if type(s) ~= "table" then
      c:add("shape", nil, "assignment #" .. i, "an assignment object", c:show(s))
    else
      local key = "assignment:" .. tostring(s.actor) .. ":" .. tostring(s.role)
      akeys[key] = (akeys[key] or 0) + 1
      local line = c.lines[akeys[key] == 1 and key or (key .. "#" .. akeys[key])]
      local lbl = "assignment " .. c:show(s.actor) .. " → " .. c:show(s.role)
      c.where[s] = { label = lbl, line = line }
      c:keys("assignment", s)
      if not actors_by[s.actor] then
        c:add("reference", line, lbl, "a declared actor",
          c:show(s.actor) .. M.suggest(s.actor, actor_names))
      end
      if not roles_by[s.role] then
        c:add("reference", line, lbl, "a declared role",
          c:show(s.role) .. M.suggest(s.role, role_names))
      end
      c:enum("assignment-status", s, "status", M.STATUSES, "status")
      if akeys[key] > 1 and not pairs_seen[key] then
        pairs_seen[key] = true
        c:add("name-duplicate", line, lbl, "each actor assigned to a role once",
          "a second assignment")
      end
    end
  end

  -- Roles nobody can act in.
  c:staffing(roles, def.assignments)

  -- Graph-wide rules.
  if not is_posint(def.max_interactions) then
    c:cycles(roles, interactions, comps, guards_of, def.assignments)
  end
  if is_name(def.name) then c:children(def, roles) end
  local actors = {}
  for _, a in list(def.actors) do
    if type(a) == "table" and actors_by[a.name] == a then actors[#actors + 1] = a end
  end
  c:actors_across(def, actors)
  c:utf8(def)

  -- Stable sort by line (errors without a line first).
  table.sort(c.errors, function(a, b)
    local la, lb = a.line or 0, b.line or 0
    if la ~= lb then return la < lb end
    return a.seq < b.seq
  end)
  for _, e in ipairs(c.errors) do e.seq = nil end
  return c.errors
end

return M
