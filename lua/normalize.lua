-- lua/normalize.lua — turns what a workflow file returned (DSL records
-- from lua/dsl.lua) or a decoded JSON definition into the canonical
-- definition of docs/definition-format.md: every key present, absent
-- values as json null, arrays in declaration order and marked as arrays,
-- Lua functions replaced by {lua = <their source text>}. It also maps each
-- element to its source line for messages. Values are judged later by
-- lua/validate.lua; this module only reports what it cannot represent.
-- Reads user tables raw (no metamethod of a script ever runs here).
local dsl = require("dsl")
local validate = require("validate")

local M = {}

M.FORMAT = validate.FORMAT
local KEYS = validate.KEYS
local MAX_DEPTH = 64 -- nesting of data values (also stops cycles)

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local quote = validate.quote

-- raw(t) -> a shallow copy of t read with next (no metamethods).
local function raw(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- ======================================================================
-- A run: the state of one normalization
-- ======================================================================

local Run = {}
Run.__index = Run

-- new_run(ctx) -> run. Raises (misuse) when no json null is given.
local function new_run(ctx)
  ctx = ctx or {}
  local chm = ctx.chm
  local json = chm and chm.json
  local null = ctx.json_null
  if null == nil then null = ctx.null end
  if null == nil and json then null = json.null end
  if null == nil then
    error("normalize: ctx.json_null (or ctx.chm.json.null) is required", 3)
  end
  local array = ctx.array or (json and json.array) or function(t) return t end
  local r = setmetatable({
    file = ctx.file or "?", null = null, array = array, errors = {}, lines = {},
    seen = {}, visiting = {}, source = ctx.source_text, funcinfo = ctx.funcinfo or (chm and chm.funcinfo),
    tokens = nil,
  }, Run)
  r.mark = getmetatable(array({}))
  return r
end

-- err(line, element, expected, found [, rule]): record one error (rule
-- shape unless given).
function Run:err(line, element, expected, found, rule)
  self.errors[#self.errors + 1] = validate.new_error(self.file, line, rule or "shape",
    element, expected, found)
end

-- line(key, line): remember where an element was written. The k-th
-- element of a name gets "key#k" (validation reports duplicates there).
function Run:line(key, line)
  local n = (self.seen[key] or 0) + 1
  self.seen[key] = n
  if line then self.lines[n == 1 and key or (key .. "#" .. n)] = line end
end

-- describe(v) -> how a found value reads in a message.
function Run:describe(v)
  if dsl.record(v) then return tostring(v) end
  return validate.show(v, self.null)
end

-- ======================================================================
-- Lua functions -> {lua = source}
-- ======================================================================

-- lex(src) -> list of {word, pos, line} for the keywords that open and
-- close blocks (function, if, do, end), skipping strings and comments.
local function lex(src)
  local out, i, line, n = {}, 1, 1, #src
  local function long_bracket(at)
    local eq = src:match("^%[(=*)%[", at)
    if not eq then return nil end
    local close = "]" .. eq .. "]"
    local _, e = src:find(close, at + #eq + 2, true)
    e = e or n
    local body = src:sub(at, e)
    local _, nl = body:gsub("\n", "")
    return e + 1, nl
  end
  while i <= n do
    local ch = src:sub(i, i)
    if ch == "\n" then
      line = line + 1; i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local nexti, nl = long_bracket(i + 2)
      if nexti then
        i, line = nexti, line + nl
      else
        local e = src:find("\n", i, true) or (n + 1)
        i = e
      end
    elseif ch == "[" and src:match("^%[=*%[", i) then
      local nexti, nl = long_bracket(i)
      i, line = nexti, line + nl
    elseif ch == '"' or ch == "'" then
      local j = i + 1
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          if src:sub(j + 1, j + 1) == "\n" then line = line + 1 end
          j = j + 2
        elseif d == ch or d == "\n" then
          break
        else
          j = j + 1
        end
      end
      i = j + 1
    elseif ch:match("[%a_]") then
      local w = src:match("^[%a_][%w_]*", i)
      if w == "function" or w == "if" or w == "do" or w == "end" then
        out[#out + 1] = { word = w, pos = i, line = line }
      end
      i = i + #w
    elseif ch:match("%d") then
      i = i + #src:match("^%d[%w_%.]*", i)
    else
      i = i + 1
    end
  end
  return out
end

-- functions(src) -> list of {s, e, first, last}: every `function ... end`
-- of the text as byte range and line range (a stack over block keywords).
local function functions(src)
  local stack, found = {}, {}
  for _, t in ipairs(lex(src)) do
    if t.word == "end" then
      local open = table.remove(stack)
      if open and open.word == "function" then
        found[#found + 1] = { s = open.pos, e = t.pos + 2, first = open.line, last = t.line }
      end
    else
      stack[#stack + 1] = t
    end
  end
  return found
end

-- func(f, at, line) -> {lua = source text} or null (error recorded). The
-- text runs from the `function` keyword on the function's first line to
-- the `end` on its last; a named function loses its name. It must not
-- capture upvalues other than _ENV: it is recompiled on its own.
function Run:func(f, at, line)
  local info = self.funcinfo and self.funcinfo(f)
  if type(info) ~= "table" or type(info.linedefined) ~= "number" or info.linedefined <= 0 then
    self:err(line, at, "a Lua function written in the workflow file",
      "a built-in or C function", "function-source")
    return self.null
  end
  local fline = info.linedefined
  for _, name in ipairs(info.upvalues or {}) do
    if name ~= "_ENV" then
      self:err(fline, at, "a self-contained function (conditions and steps are recompiled " ..
        "on their own)", "a function that captures upvalue '" .. tostring(name) .. "'",
        "function-upvalue")
      return self.null
    end
  end
  local src = self.source
  if type(src) ~= "string" then
    self:err(fline, at, "the workflow file's text to read the function from",
      "none (ctx.source_text missing)", "function-source")
    return self.null
  end
  if not self.tokens then self.tokens = functions(src) end
  local cands = {}
  for _, fn in ipairs(self.tokens) do
    if fn.first == fline and fn.last == info.lastlinedefined then cands[#cands + 1] = fn end
  end
  -- Keep the outermost candidates: a function nested in another on the
  -- same lines is not the one asked for.
  local outer = {}
  for _, a in ipairs(cands) do
    local inside = false
    for _, b in ipairs(cands) do
      if b ~= a and b.s <= a.s and b.e >= a.e then inside = true end
    end
    if not inside then outer[#outer + 1] = a end
  end
  if #outer ~= 1 then
    self:err(fline, at, "one function starting on this line and ending on line " ..
      tostring(info.lastlinedefined),
      #outer == 0 and "none in the file's text" or (#outer .. " (put each function on its own lines)"),
      "function-source")
    return self.null
  end
  local text = src:sub(outer[1].s, outer[1].e)
  text = text:gsub("^function%s+[%a_][%w_%.]*%s*%(", "function(", 1)
  return { lua = text }
end

-- ======================================================================
-- Data values
-- ======================================================================

-- is_list(t): marked as a JSON array, or keys exactly 1..n with n >= 1.
function Run:is_list(t)
  if self.mark ~= nil and rawequal(getmetatable(t), self.mark) then return true end
  local n = rawlen(t)
  if n == 0 then return false end
  local count = 0
  for _ in next, t do count = count + 1 end
  return count == n
end

-- value(v, at, line, fn_ok, depth) -> the JSON-able copy of v: nil and
-- null -> null, lists -> marked arrays, tables -> objects with string
-- keys; functions -> {lua = ...} when fn_ok (conditions, steps, routing,
-- guardian configs), an error elsewhere.
function Run:value(v, at, line, fn_ok, depth)
  depth = depth or 0
  if v == nil or rawequal(v, self.null) then return self.null end
  local t = type(v)
  if t == "string" or t == "boolean" then return v end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then
      self:err(line, at, "a finite number", tostring(v))
      return self.null
    end
    return v
  end
  if t == "function" then
    if fn_ok then return self:func(v, at, line) end
    self:err(line, at, "data (functions are allowed only in steps, conditions, routing " ..
      "and guardian configs)", "a function")
    return self.null
  end
  if t ~= "table" then
    self:err(line, at, "JSON data", validate.an(t))
    return self.null
  end
  if dsl.record(v) then
    self:err(line, at, "data", tostring(v))
    return self.null
  end
  if self.visiting[v] then
    self:err(line, at, "data without cycles", "a table that contains itself")
    return self.null
  end
  if depth >= MAX_DEPTH then
    self:err(line, at, "data nested at most " .. MAX_DEPTH .. " deep", "deeper nesting")
    return self.null
  end
  self.visiting[v] = true
  local out
  if self:is_list(v) then
    out = {}
    for i = 1, rawlen(v) do
      out[i] = self:value(rawget(v, i), at .. "[" .. i .. "]", line, fn_ok, depth + 1)
    end
    out = self.array(out)
  else
    local keys = {}
    out = {}
    for k in next, v do keys[#keys + 1] = k end
    table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      if type(k) ~= "string" then
        self:err(line, at, "a list or a table with string keys",
          "a table with key " .. validate.show(k) .. " (list items mixed with named keys?)")
      else
        out[k] = self:value(rawget(v, k), at .. "." .. k, line, fn_ok, depth + 1)
      end
    end
  end
  self.visiting[v] = nil
  return out
end

-- text(v, at, line) -> "" for nothing, else the value (validate checks
-- that it is a string).
function Run:text(v, at, line)
  if v == nil then return "" end
  return self:value(v, at, line)
end

-- int(v, at, line) -> an integral float becomes an integer; null for nil.
function Run:int(v, at, line)
  if math.type(v) == "float" and math.tointeger(v) then return math.tointeger(v) end
  return self:value(v, at, line)
end

-- items(v, at, line) -> the list items of v (raw), reporting anything
-- that is not a list. nil gives an empty list.
function Run:items(v, at, line)
  if v == nil or rawequal(v, self.null) then return {} end
  if type(v) ~= "table" or dsl.record(v) then
    self:err(line, at, "a list", self:describe(v))
    return {}
  end
  local out = {}
  for k in next, v do
    if math.type(k) ~= "integer" or k < 1 or k > rawlen(v) then
      self:err(line, at, "a list", "key " .. validate.show(k))
    end
  end
  for i = 1, rawlen(v) do out[i] = rawget(v, i) end
  return out
end

-- fields(t, allowed, at, line, positional) -> true when every key of the
-- DSL table t is allowed (positional: how many list items are allowed).
function Run:fields(t, allowed, at, line, positional)
  local ok, keys = true, {}
  for k in next, t do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local set = set_of(allowed)
  for _, k in ipairs(keys) do
    if math.type(k) == "integer" then
      if not positional or k < 1 or k > positional then
        self:err(line, at, positional and ("at most " .. positional .. " list item") or
          "named fields only", "list item " .. k .. " (" .. self:describe(rawget(t, k)) .. ")")
        ok = false
      end
    elseif not set[k] then
      self:err(line, at, "one of the fields " .. table.concat(allowed, ", "),
        "field " .. validate.show(k) .. validate.suggest(k, allowed))
      ok = false
    end
  end
  return ok
end

-- ======================================================================
-- Routing and guardian configs (shared by both inputs)
-- ======================================================================

-- routing(v, at, line) -> canonical routing: functions -> {lua}, and the
-- optional keys of the branch and next_step_logic forms filled with null.
function Run:routing(v, at, line)
  if v == nil or rawequal(v, self.null) then return self.null end
  if type(v) == "function" then return self:func(v, at, line) end
  local r = self:value(v, at, line, true)
  local function empty(t) return type(t) == "table" and not rawequal(t, self.null) and next(t) == nil end
  if rawequal(r, self.null) or type(r) ~= "table" then return r end
  if r.branches ~= nil then
    if empty(r.branches) then r.branches = self.array({}) end
    if r.default == nil then r.default = self.null end
    if r.on_error == nil then r.on_error = self.null end
  elseif type(r.next_step_logic) == "table" and not rawequal(r.next_step_logic, self.null) then
    local n = r.next_step_logic
    if empty(n["if"]) then n["if"] = self.array({}) end
    if n.on_error == nil then n.on_error = self.null end
    if n.default == nil then n.default = self.null end
  end
  return r
end

-- Config keys that are lists even when empty.
local LIST_KEYS = { COMPOSITE = "guardians", CONDITIONAL_INJECTOR = "rules",
                    APPROVAL = "reviewers" }

-- config(gtype, cfg, at, line) -> canonical config (functions -> {lua};
-- nested DSL guardians of a COMPOSITE -> {type, config}).
function Run:config(gtype, cfg, at, line)
  if cfg == nil then return {} end
  if type(cfg) ~= "table" or rawequal(cfg, self.null) or dsl.record(cfg) then
    return self:value(cfg, at, line, true)
  end
  local nested = gtype == "COMPOSITE" and rawget(cfg, "guardians")
  if type(nested) == "table" and not dsl.record(nested) and not rawequal(nested, self.null) then
    cfg = raw(cfg)
    cfg.guardians = nil
  else
    nested = nil
  end
  local out = self:value(cfg, at, line, true)
  if type(out) ~= "table" or rawequal(out, self.null) then return out end
  if nested then
    local list = self.array({})
    for i, g in ipairs(self:items(nested, at .. ".guardians", line)) do
      list[i] = self:nested(g, at .. ".guardians[" .. i .. "]", line)
    end
    out.guardians = list
  end
  local lk = LIST_KEYS[gtype]
  if lk and type(out[lk]) == "table" and not rawequal(out[lk], self.null)
      and next(out[lk]) == nil then
    out[lk] = self.array({})
  end
  return out
end

-- nested(g, at, line) -> {type, config} of a guardian inside a COMPOSITE.
function Run:nested(g, at, line)
  local rec = dsl.record(g)
  if not rec then
    if type(g) == "table" and not rawequal(g, self.null) and rawget(g, "type") ~= nil then
      g = raw(g)
      self:fields(g, { "type", "config" }, at, line)
      return { type = self:value(g.type, at .. ".type", line),
               config = self:config(g.type, g.config, at .. ".config", line) }
    end
    return self:value(g, at, line, true)
  end
  if rec.kind ~= "guardian" then
    self:err(line, at, "a guardian", tostring(g))
    return self.null
  end
  local gtype, cfg = self:guard_parts(rec, at, rec.line, true)
  return { type = gtype, config = self:config(gtype, cfg, at .. ".config", rec.line) }
end

-- Fields of a guardian constructor that are not config.
local GUARD_OWN = { "description", "ai_context", "component" }

-- guard_parts(rec, at, line, nested) -> type, raw config table: for the
-- typed constructors every field except description/ai_context/component
-- is config (COMPOSITE list items are its nested guardians); the generic
-- `guardian` takes type and config explicitly.
function Run:guard_parts(rec, at, line, nested)
  local f = rec.fields
  if rec.type == nil then
    local allowed = nested and { "type", "config" } or
      { "type", "config", "description", "ai_context", "component" }
    self:fields(f, allowed, at, line)
    return self:value(f.type, at .. ".type", line), f.config
  end
  local cfg = {}
  local own = set_of(GUARD_OWN)
  for k, v in next, f do
    if type(k) == "string" and not own[k] then cfg[k] = v end
  end
  if nested then
    for _, k in ipairs(GUARD_OWN) do
      if f[k] ~= nil then
        self:err(line, at, "type and config only (a guardian inside a COMPOSITE has no " ..
          k .. ")", "field " .. quote(k))
      end
    end
  end
  local n = rawlen(f)
  if rec.type == "COMPOSITE" and n > 0 then
    if f.guardians ~= nil then
      self:err(line, at, "nested guardians either as list items or as guardians = {...}",
        "both")
    end
    local list = {}
    for i = 1, n do list[i] = rawget(f, i) end
    cfg.guardians = list
  elseif n > 0 then
    self:err(line, at, "named config fields", "list item 1 (" .. self:describe(rawget(f, 1)) .. ")")
  end
  return rec.type, cfg
end

-- ======================================================================
-- From DSL records
-- ======================================================================

local function canon_component(r, name, role, interaction, direction)
  return { name = name, role = role, interaction = interaction, direction = direction,
           description = "", ai_context = r.null, routing = r.null }
end

-- guardian(proxy, comp, at, i, explicit) -> canonical guardian, or nil.
function Run:guardian(g, comp, at, i, explicit)
  local rec = dsl.record(g)
  if not rec or rec.kind ~= "guardian" then
    self:err(nil, at, "a guardian (cerberus, criteria, ttl, ... or guardian)", self:describe(g))
    return nil
  end
  local name = rec.name
  if name == nil then
    if not comp then
      self:err(rec.line, at, 'a named guardian (a guardian in the guardians list needs ' ..
        'a name and a component)', "an anonymous guardian")
      return nil
    end
    name = comp .. ":guard:" .. i
  end
  local label = "guardian " .. quote(name)
  local gtype, cfg = self:guard_parts(rec, label, rec.line, false)
  local f = rec.fields
  local component = comp
  if explicit then
    component = self:value(f.component, label .. " component", rec.line)
  elseif f.component ~= nil and f.component ~= comp then
    self:err(rec.line, label, "no component field (it guards " .. quote(comp) .. ")",
      "component " .. self:describe(f.component))
  end
  self:line("guardian:" .. name, rec.line)
  return {
    name = name, component = component, type = gtype,
    description = self:text(f.description, label .. " description", rec.line),
    ai_context = self:value(f.ai_context, label .. " ai_context", rec.line),
    config = self:config(gtype, cfg, label .. " config", rec.line),
  }
end

-- guards(f, comp, at, line, out): the guard/guards fields of a component.
function Run:guards(f, comp, at, line, out)
  local list = {}
  if f.guard ~= nil then list[1] = f.guard end
  for _, g in ipairs(self:items(f.guards, at .. " guards", line)) do list[#list + 1] = g end
  for i, g in ipairs(list) do
    local canon = self:guardian(g, comp, at .. " guard", i, false)
    if canon then out[#out + 1] = canon end
  end
end

-- component_routing(f, at, line) -> canonical routing from the routing,
-- next_step_logic or when field (at most one of them).
function Run:component_routing(f, at, line)
  local given = {}
  for _, k in ipairs({ "routing", "next_step_logic", "when" }) do
    if f[k] ~= nil then given[#given + 1] = k end
  end
  if #given > 1 then
    self:err(line, at, "one of routing, next_step_logic, when", table.concat(given, " and "))
  end
  if f.routing ~= nil then return self:routing(f.routing, at .. " routing", line) end
  if f.next_step_logic ~= nil then
    return self:routing({ next_step_logic = f.next_step_logic }, at .. " routing", line)
  end
  if f.when ~= nil then return self:routing({ when = f.when }, at .. " routing", line) end
  return self.null
end

local INLINE_IN = { "name", "description", "ai_context", "guard", "guards" }
local INLINE_OUT = { "name", "description", "ai_context", "guard", "guards", "routing",
                     "next_step_logic", "when" }

-- inline(role, entry, direction, line, comps, guards): one inbound or
-- outbound entry of a role -> a component named "<role>:in:<interaction>"
-- or "<role>:out:<interaction>" (unless it names itself) and its guards.
function Run:inline(role, entry, direction, line, comps, guards, at)
  local short = direction == "INBOUND" and "in" or "out"
  local inter, f
  if type(entry) == "string" then
    inter, f = entry, {}
  elseif type(entry) == "table" and not dsl.record(entry) then
    f = raw(entry)
    inter = f[1]
    self:fields(f, direction == "INBOUND" and INLINE_IN or INLINE_OUT, at, line, 1)
    if type(inter) ~= "string" then
      self:err(line, at, 'the interaction name first, as in { "queue", guard = ... }',
        self:describe(inter))
      return
    end
  else
    self:err(line, at, 'an interaction name or { "interaction", ... }', self:describe(entry))
    return
  end
  local name = f.name
  if name == nil then name = role .. ":" .. short .. ":" .. inter end
  local comp = canon_component(self, name, role, inter, direction)
  local label = "component " .. (type(name) == "string" and quote(name) or self:describe(name))
  comp.description = self:text(f.description, label .. " description", line)
  comp.ai_context = self:value(f.ai_context, label .. " ai_context", line)
  if direction == "OUTBOUND" then comp.routing = self:component_routing(f, label, line) end
  self:line("component:" .. tostring(name), line)
  comps[#comps + 1] = comp
  self:guards(f, tostring(name), label, line, guards)
end

local ROLE_FIELDS = { "description", "ai_context", "strategy", "child_workflow", "step",
                      "inbound", "outbound", "routing", "next_step_logic" }
local GENERIC_ROLE_FIELDS = { "type", "description", "ai_context", "strategy",
                              "child_workflow", "step", "inbound", "outbound", "routing",
                              "next_step_logic" }

-- role(proxy, at, def, pending): one role record -> canonical role plus
-- its inline components and guardians; role-level routing is queued in
-- pending for the role's first outbound component.
function Run:role(p, at, def, pending)
  local rec = dsl.record(p)
  if not rec or rec.kind ~= "role" then
    self:err(nil, at, "a role (alpha, beta, omega, epsilon, tau or role)", self:describe(p))
    return
  end
  local f, line, name = rec.fields, rec.line, rec.name
  local label = "role " .. quote(name)
  self:fields(f, rec.type and ROLE_FIELDS or GENERIC_ROLE_FIELDS, label, line)
  local rtype = rec.type or self:value(f.type, label .. " type", line)
  local strategy = f.strategy
  if strategy == nil then
    strategy = rtype == "BETA" and "HOMOGENEOUS" or self.null
  else
    strategy = self:value(strategy, label .. " strategy", line)
  end
  local step = self.null
  if f.step ~= nil then step = self:value(f.step, label .. " step", line, true) end
  self:line("role:" .. name, line)
  def.roles[#def.roles + 1] = {
    name = name, type = rtype,
    description = self:text(f.description, label .. " description", line),
    ai_context = self:value(f.ai_context, label .. " ai_context", line),
    strategy = strategy,
    child_workflow = self:value(f.child_workflow, label .. " child_workflow", line),
    step = step,
  }
  for i, e in ipairs(self:items(f.inbound, label .. " inbound", line)) do
    self:inline(name, e, "INBOUND", line, def.components, def.guardians,
      label .. " inbound[" .. i .. "]")
  end
  for i, e in ipairs(self:items(f.outbound, label .. " outbound", line)) do
    self:inline(name, e, "OUTBOUND", line, def.components, def.guardians,
      label .. " outbound[" .. i .. "]")
  end
  if f.routing ~= nil or f.next_step_logic ~= nil then
    pending[#pending + 1] = { role = name, line = line, label = label,
                              routing = self:component_routing(f, label, line) }
  end
end

local COMPONENT_FIELDS = { "role", "interaction", "direction", "description", "ai_context",
                           "routing", "next_step_logic", "when", "guard", "guards" }

-- component(proxy, at, def): an explicit component record.
function Run:component(p, at, def)
  local rec = dsl.record(p)
  if not rec or rec.kind ~= "component" then
    self:err(nil, at, "a component", self:describe(p))
    return
  end
  local f, line, name = rec.fields, rec.line, rec.name
  local label = "component " .. quote(name)
  self:fields(f, COMPONENT_FIELDS, label, line)
  local comp = canon_component(self, name, self:value(f.role, label .. " role", line),
    self:value(f.interaction, label .. " interaction", line),
    self:value(f.direction, label .. " direction", line))
  comp.description = self:text(f.description, label .. " description", line)
  comp.ai_context = self:value(f.ai_context, label .. " ai_context", line)
  comp.routing = self:component_routing(f, label, line)
  self:line("component:" .. name, line)
  def.components[#def.components + 1] = comp
  self:guards(f, name, label, line, def.guardians)
end

local INTERACTION_FIELDS = { "description", "ai_context", "stale_token_limit_seconds" }

-- interaction(v, at, line, def): a name string or an interaction record.
function Run:interaction(v, at, wline, def)
  local name, f, line = v, {}, wline
  if type(v) ~= "string" then
    local rec = dsl.record(v)
    if not rec or rec.kind ~= "interaction" then
      self:err(wline, at, 'an interaction name or interaction "name" { ... }', self:describe(v))
      return
    end
    name, f, line = rec.name, rec.fields, rec.line
  end
  local label = "interaction " .. quote(name)
  self:fields(f, INTERACTION_FIELDS, label, line)
  self:line("interaction:" .. name, line)
  def.interactions[#def.interactions + 1] = {
    name = name,
    description = self:text(f.description, label .. " description", line),
    ai_context = self:value(f.ai_context, label .. " ai_context", line),
    stale_token_limit_seconds = self:int(f.stale_token_limit_seconds,
      label .. " stale_token_limit_seconds", line),
  }
end

local ACTOR_FIELDS = { "type", "identity_key", "description", "ai_context", "capabilities",
                       "roles" }

-- actor(proxy, at, def): an actor record; its roles become assignments.
function Run:actor(p, at, def)
  local rec = dsl.record(p)
  if not rec or rec.kind ~= "actor" then
    self:err(nil, at, 'an actor "name" { ... }', self:describe(p))
    return
  end
  local f, line, name = rec.fields, rec.line, rec.name
  local label = "actor " .. quote(name)
  self:fields(f, ACTOR_FIELDS, label, line)
  self:line("actor:" .. name, line)
  local key = f.identity_key
  def.actors[#def.actors + 1] = {
    name = name, type = self:value(f.type, label .. " type", line),
    identity_key = key == nil and name or self:value(key, label .. " identity_key", line),
    description = self:text(f.description, label .. " description", line),
    ai_context = self:value(f.ai_context, label .. " ai_context", line),
    capabilities = self:value(f.capabilities, label .. " capabilities", line),
  }
  for i, e in ipairs(self:items(f.roles, label .. " roles", line)) do
    local role, status = e, "ACTIVE"
    if type(e) == "table" and not dsl.record(e) then
      e = raw(e)
      self:fields(e, { "status" }, label .. " roles[" .. i .. "]", line, 1)
      role = e[1]
      if e.status ~= nil then status = self:value(e.status, label .. " status", line) end
    end
    if type(role) ~= "string" then
      self:err(line, label .. " roles[" .. i .. "]",
        'a role name or { "role", status = "REVOKED" }', self:describe(role))
    else
      self:line("assignment:" .. name .. ":" .. role, line)
      def.assignments[#def.assignments + 1] = { actor = name, role = role, status = status }
    end
  end
end

-- assignment(v, at, wline, def): assignment { ... } or a plain table.
function Run:assignment(v, at, wline, def)
  local f, line
  local rec = dsl.record(v)
  if rec then
    if rec.kind ~= "assignment" then
      self:err(wline, at, "assignment { actor = ..., role = ... }", self:describe(v))
      return
    end
    f, line = rec.fields, rec.line
  elseif type(v) ~= "table" then
    self:err(wline, at, "assignment { actor = ..., role = ... }", self:describe(v))
    return
  else
    f, line = raw(v), wline
  end
  self:fields(f, KEYS.assignment, at, line)
  local s = {
    actor = self:value(f.actor, at .. " actor", line),
    role = self:value(f.role, at .. " role", line),
    status = f.status == nil and "ACTIVE" or self:value(f.status, at .. " status", line),
  }
  self:line("assignment:" .. tostring(s.actor) .. ":" .. tostring(s.role), line)
  def.assignments[#def.assignments + 1] = s
end

local WORKFLOW_FIELDS = { "description", "ai_context", "max_interactions", "roles",
                          "interactions", "components", "guardians", "actors", "assignments" }

local function empty_def(r, name)
  return {
    format = M.FORMAT, name = name, description = "", ai_context = r.null,
    max_interactions = r.null, roles = r.array({}), interactions = r.array({}),
    components = r.array({}), guardians = r.array({}), actors = r.array({}),
    assignments = r.array({}),
  }
end

-- M.from_lua(value, ctx) -> canonical | nil, lines, errors
-- value: what the workflow file returned (workflow "NAME" { ... }).
-- ctx: file (for messages), chm (json.null, json.array, funcinfo),
-- source_text (the file's text: function sources are cut from it);
-- json_null/null, array and funcinfo override chm's. lines maps
-- "workflow", "role:<name>", "interaction:<name>", "component:<name>",
-- "guardian:<name>", "actor:<name>", "assignment:<actor>:<role>" to line
-- numbers ("<key>#<k>" for the k-th element of a repeated name). errors
-- is a list of validate error records (empty when the value could be
-- represented); canonical is nil only when value is not a workflow.
-- Raises only on misuse (no json null available).
function M.from_lua(value, ctx)
  local r = new_run(ctx)
  local rec = dsl.record(value)
  if not rec or rec.kind ~= "workflow" then
    r:err(nil, "workflow file", 'the file to return workflow "NAME" { ... }',
      value == nil and "nothing" or r:describe(value))
    return nil, r.lines, r.errors
  end
  local f, line = rec.fields, rec.line
  local label = "workflow " .. quote(rec.name)
  r:fields(f, WORKFLOW_FIELDS, label, line)
  r:line("workflow", line)
  local def = empty_def(r, rec.name)
  def.description = r:text(f.description, label .. " description", line)
  def.ai_context = r:value(f.ai_context, label .. " ai_context", line)
  def.max_interactions = r:int(f.max_interactions, label .. " max_interactions", line)

  for i, v in ipairs(r:items(f.interactions, label .. " interactions", line)) do
    r:interaction(v, label .. " interactions[" .. i .. "]", line, def)
  end
  local pending = {}
  for i, v in ipairs(r:items(f.roles, label .. " roles", line)) do
    r:role(v, label .. " roles[" .. i .. "]", def, pending)
  end
  for i, v in ipairs(r:items(f.components, label .. " components", line)) do
    r:component(v, label .. " components[" .. i .. "]", def)
  end
  for i, v in ipairs(r:items(f.guardians, label .. " guardians", line)) do
    local g = r:guardian(v, nil, label .. " guardians[" .. i .. "]", i, true)
    if g then def.guardians[#def.guardians + 1] = g end
  end
  -- Role-level routing goes onto the role's first outbound component.
  for _, p in ipairs(pending) do
    local first
    for _, c in ipairs(def.components) do
      if c.role == p.role and c.direction == "OUTBOUND" then first = c; break end
    end
    if not first then
      r:err(p.line, p.label .. " routing", "an outbound component to carry it", "none")
    elseif not rawequal(first.routing, r.null) then
      r:err(p.line, p.label .. " routing", "routing on the role or on its first outbound " ..
        "component " .. quote(first.name) .. ", not both", "both")
    else
      first.routing = p.routing
    end
  end
  for i, v in ipairs(r:items(f.actors, label .. " actors", line)) do
    r:actor(v, label .. " actors[" .. i .. "]", def)
  end
  for i, v in ipairs(r:items(f.assignments, label .. " assignments", line)) do
    r:assignment(v, label .. " assignments[" .. i .. "]", line, def)
  end
  return def, r.lines, r.errors
end

-- ======================================================================
-- From decoded JSON
-- ======================================================================

-- element(kind, t, at, defaults) -> canonical copy of one JSON element:
-- known keys copied (absent -> default or null), unknown keys reported.
function Run:element(kind, t, at, defaults, skip)
  if type(t) ~= "table" or rawequal(t, self.null) or self:is_list(t) then
    self:err(nil, at, validate.an(kind) .. " object", self:describe(t))
    return nil
  end
  self:fields(t, KEYS[kind], at, nil)
  local out = {}
  for _, k in ipairs(KEYS[kind]) do
    local v = rawget(t, k)
    if skip and skip[k] then
      out[k] = nil
    elseif v == nil and defaults[k] ~= nil then
      v = defaults[k]
      if type(v) == "function" then v = v(t) end
      out[k] = v
    elseif k == "routing" then
      out[k] = self:routing(v, at .. " routing", nil)
    elseif k == "config" then
      out[k] = self:config(rawget(t, "type"), v, at .. " config", nil)
    elseif k == "stale_token_limit_seconds" or k == "max_interactions" then
      out[k] = self:int(v, at .. " " .. k, nil)
    elseif k == "description" then
      out[k] = self:text(v, at .. " description", nil)
    else
      out[k] = self:value(v, at .. " " .. k, nil)
    end
  end
  return out
end

-- M.from_json(tbl, ctx) -> canonical | nil, lines (empty), errors
-- tbl: a decoded JSON definition (json null sentinel, marked arrays).
-- ctx: file, json_null/null or chm. Absent keys take the same defaults as
-- the DSL (description "", strategy HOMOGENEOUS for BETA, identity_key =
-- name, status ACTIVE, format chameleon.workflow/1, others null); so the
-- JSON export of any canonical definition comes back equal.
function M.from_json(tbl, ctx)
  local r = new_run(ctx)
  if type(tbl) ~= "table" or rawequal(tbl, r.null) or dsl.record(tbl) or r:is_list(tbl) then
    r:err(nil, "workflow", "a JSON object", r:describe(tbl))
    return nil, r.lines, r.errors
  end
  local def = r:element("workflow", tbl, "workflow", { format = M.FORMAT }, set_of({
    "roles", "interactions", "components", "guardians", "actors", "assignments" }))
  local label = "workflow " .. (type(def.name) == "string" and quote(def.name) or "?")
  local defaults = {
    role = { strategy = function(t)
      return rawget(t, "type") == "BETA" and "HOMOGENEOUS" or r.null end },
    actor = { identity_key = function(t) return r:value(rawget(t, "name"), "", nil) end },
    assignment = { status = "ACTIVE" },
    guardian = { config = function() return {} end },
  }
  for _, k in ipairs({ "roles", "interactions", "components", "guardians", "actors",
                       "assignments" }) do
    local kind = k == "assignments" and "assignment" or k:sub(1, -2)
    local list = r.array({})
    for i, e in ipairs(r:items(rawget(tbl, k), label .. " " .. k, nil)) do
      local at = kind .. " #" .. i
      local ename = type(e) == "table" and rawget(e, "name")
      if type(ename) == "string" and ename ~= "" then at = kind .. " " .. quote(ename) end
      local canon = r:element(kind, e, at, defaults[kind] or {})
      if canon then list[#list + 1] = canon end
    end
    def[k] = list
  end
  return def, r.lines, r.errors
end

return M
