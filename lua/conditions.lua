-- lua/conditions.lua — conditions and token views for the judge
-- (lua/judge.lua): compiles a condition (an expression string through
-- lua/expr.lua, or {lua = "function(token) ... end"} into a sandbox) once,
-- and evaluates it against a token view; builds the views Lua code sees
-- (fields plus a deep copy of the attributes). Trusted module: relies on
-- `chm` (load, run, sandbox_env, json) and never touches the store.
local expr = require("expr")

local M = {}

local type, pcall, next, tostring, select = type, pcall, next, tostring, select
local rawget, rawequal, error = rawget, rawequal, error
local setmetatable, getmetatable = setmetatable, getmetatable
local format, find, sub, gmatch = string.format, string.find, string.sub, string.gmatch

local json = chm.json
local null = json.null
local jarray = json.array

-- The expression language's null is the engine's JSON null (lua/meta.lua
-- does the same; set_null is idempotent in effect).
if expr.null ~= null then expr.set_null(null) end

-- Limits for one call of a {lua = ...} condition, routing function or
-- predicate, and for running the chunk that defines it.
M.LIMITS = { instructions = 1000000, deadline_ms = 1000 }

-- Token fields an expression (and a structured field name) resolves before
-- attributes (DESIGN §7).
local RESERVED = { uow_id = true, parent_id = true, status = true, child_count = true,
                   finished_child_count = true }
M.RESERVED = RESERVED

local EMPTY = setmetatable({}, { __newindex = function() error("read-only table", 2) end,
                                 __metatable = false })

-- ======================================================================
-- Messages
-- ======================================================================

-- show(v) -> a short printable rendering of a value for reasons.
function M.show(v)
  local t = type(v)
  if rawequal(v, null) then return "null" end
  if t == "string" then
    if #v > 60 then v = sub(v, 1, 57) .. "..." end
    return '"' .. v .. '"'
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    local ok, s = pcall(json.encode, v)
    if not ok then return "a table" end
    if #s > 80 then s = sub(s, 1, 77) .. "..." end
    return s
  elseif t == "nil" then
    return "nothing"
  end
  return "a " .. t
end

-- describe(v) -> "null" or "the <type> <value>": a value in a reason.
function M.describe(v)
  if rawequal(v, null) then return "null" end
  return "the " .. expr.typename(v) .. " " .. M.show(v)
end

-- message(e) -> the text of an error value (expression error objects carry
-- .message), cut before a traceback so reasons stay one paragraph.
function M.message(e)
  local s
  if type(e) == "table" and type(rawget(e, "message")) == "string" then
    s = rawget(e, "message")
  else
    s = tostring(e)
  end
  local at = find(s, "\nstack traceback:", 1, true)
  if at then s = sub(s, 1, at - 1) end
  return s
end

-- ======================================================================
-- Values: field lookup, copies, equality
-- ======================================================================

-- getter(name) -> function(view) -> value | nil. The field of a structured
-- guardian config: a reserved token field first, then the attribute of that
-- exact name, then a dotted path into nested objects ("output.pass").
function M.getter(name)
  if RESERVED[name] then
    return function(view)
      local v = view[name]
      if v ~= nil then return v end
      if name == "parent_id" then return null end
      local a = view.attrs
      return a and a[name]
    end
  end
  local segs = {}
  for s in gmatch(name, "[^.]+") do segs[#segs + 1] = s end
  if #segs <= 1 then
    return function(view)
      local a = view.attrs
      return a and a[name]
    end
  end
  local n = #segs
  return function(view)
    local a = view.attrs
    if not a then return nil end
    local v = a[name]
    if v ~= nil then return v end
    v = a[segs[1]]
    for i = 2, n do
      if type(v) ~= "table" then return nil end
      v = rawget(v, segs[i])
    end
    return v
  end
end

-- The deepest nesting of arrays and objects an attribute or memory value
-- may have (a scalar is 0 deep, [] is 1). The engine refuses deeper values
-- where they enter (VALUE_DEPTH in engine/src/tokenlua.c, the same number),
-- so the copies below never meet one unless a store was written otherwise.
M.MAX_DEPTH = 200
local MAX_DEPTH = M.MAX_DEPTH

-- copy(v [, noun [, key]]) -> a deep copy of a JSON-like value (arrays
-- stay marked as arrays). Raises "<noun> '<key>' is nested more than 200
-- levels deep..." (no position) on a deeper value or a cycle; without a
-- noun, "a value". The name is only formatted when raising.
local function copy(v, noun, key, depth)
  if type(v) ~= "table" or rawequal(v, null) then return v end
  depth = (depth or 0) + 1
  if depth > MAX_DEPTH then
    local name = noun and format("%s '%s'", noun, tostring(key)) or "a value"
    error(format("%s is nested more than %d levels deep; at most %d are allowed",
                 name, MAX_DEPTH, MAX_DEPTH), 0)
  end
  local t = {}
  for k, x in next, v do t[k] = copy(x, noun, key, depth) end
  if getmetatable(v) == "json.array" then jarray(t) end
  return t
end
M.copy = function(v) return copy(v) end

-- copy_map(m, noun) -> a copy of the table m of named values (attributes,
-- memory), each value copied as copy(v, noun, key).
local function copy_map(m, noun)
  local t = {}
  for k, x in next, m do
    if type(x) == "table" and not rawequal(x, null) then x = copy(x, noun, k) end
    t[k] = x
  end
  return t
end
M.copy_map = copy_map

-- equal(a, b) -> deep equality of JSON-like values (1 == 1.0).
local function equal(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  depth = (depth or 0) + 1
  if depth > 100 then return false end
  for k, x in next, a do
    local y = rawget(b, k)
    if y == nil or not equal(x, y, depth) then return false end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
  end
  return true
end
M.equal = equal

-- typename(v) -> "number", "string", "boolean", "null", "list", "object".
M.typename = expr.typename

-- ======================================================================
-- Views
-- ======================================================================

-- The expression scope is one reused table: judge calls never nest (Lua
-- code run by a condition cannot reach the judge), so filling it per call
-- costs no allocation.
local FIELDS = {}
local SCOPE = { fields = FIELDS, attrs = EMPTY }

-- scope(view) -> the expression scope for view (valid until the next call).
-- A base token's parent_id reads as null rather than an unknown name.
function M.scope(view)
  FIELDS.uow_id = view.uow_id
  local p = view.parent_id
  if p == nil then p = null end
  FIELDS.parent_id = p
  FIELDS.status = view.status
  FIELDS.child_count = view.child_count
  FIELDS.finished_child_count = view.finished_child_count
  SCOPE.attrs = view.attrs or EMPTY
  return SCOPE
end

-- token.amount falls back to token.attrs.amount. Shared and protected, so
-- a script can neither read nor change what every view uses.
local TOKEN_MT = {
  __index = function(t, k)
    local a = rawget(t, "attrs")
    if type(a) == "table" then return a[k] end
    return nil
  end,
  __metatable = "token",
}

-- token_view(view) -> a fresh table {uow_id, parent_id, status, version,
-- child_count, finished_child_count, workflow, failure_reason, attrs = deep
-- copy}; reading
-- any other key reads the attribute. Nothing the script does to it reaches
-- the engine.
function M.token_view(view)
  return setmetatable({
    uow_id = view.uow_id, parent_id = view.parent_id, status = view.status,
    version = view.version, child_count = view.child_count,
    finished_child_count = view.finished_child_count, workflow = view.workflow,
    failure_reason = view.failure_reason, attrs = copy_map(view.attrs or {}, "attribute"),
  }, TOKEN_MT)
end

-- ======================================================================
-- Lua functions in the sandbox
-- ======================================================================

-- A function's globals are a proxy over its own sandbox environment that
-- refuses new globals, and every library table it can reach (string,
-- table, math, json...) is a read-only view of its copy: conditions, routing
-- functions and steps must not keep state from one token to the next
-- (replay gives the same decisions). The two ways around a __newindex are
-- closed too: `rawset` refuses those tables, and `load` without an explicit
-- environment loads into the function's proxy, not the raw environment
-- behind it. __metatable = false locks every proxy, so setmetatable and
-- getmetatable cannot reach what it hides.
local function refuse(_, k, level)
  error(format("assignment to global '%s': conditions and steps cannot keep " ..
               "state between calls (use a local)", tostring(k)), level or 2)
end

local function refuse_field(_, k, level)
  error(format("assignment to field '%s' of a library table: conditions and " ..
               "steps cannot keep state between calls (use a local table)",
               tostring(k)), level or 2)
end

-- The read-only tables a function sees -> the table each one shows
-- (weak: they die with the function). Reading goes through (__index,
-- __pairs, __len, and the wrapped next/rawget/rawlen); writing is refused.
local behind = setmetatable({}, { __mode = "k" })

local function readonly(t)
  local view = setmetatable({}, {
    __index = t, __newindex = refuse_field, __metatable = false,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
  })
  behind[view] = t
  return view
end

-- function_env() -> the globals of one sandboxed function (see above).
local function function_env()
  local base = chm.sandbox_env()
  for k, v in next, base do
    if type(v) == "table" then base[k] = readonly(v) end
  end
  local env = setmetatable({}, {
    __index = base, __newindex = refuse, __metatable = false,
    __pairs = function() return next, base, nil end,
  })
  behind[env] = base
  local raw_rawset, raw_load = base.rawset, base.load
  local raw_next, raw_rawget, raw_rawlen = base.next, base.rawget, base.rawlen
  base.rawset = function(t, k, v)
    if behind[t] then
      if t == env then refuse(t, k, 3) end
      refuse_field(t, k, 3)
    end
    return raw_rawset(t, k, v)
  end
  base.next = function(t, k) return raw_next(behind[t] or t, k) end
  base.rawget = function(t, k) return raw_rawget(behind[t] or t, k) end
  base.rawlen = function(t) return raw_rawlen(behind[t] or t) end
  base.load = function(...)
    if select("#", ...) >= 4 then return raw_load(...) end
    local chunk, name, mode = ...
    return raw_load(chunk, name, mode, env)
  end
  return env
end

-- load_function(src, chunkname [, limits]) -> f | nil, err. Compiles the
-- source of a Lua function ("function(token) ... end") as text against a
-- fresh sandbox environment (function_env), runs the chunk under limits
-- and returns the function. err says what is wrong (syntax error, not a
-- function...).
function M.load_function(src, chunkname, limits)
  if type(src) ~= "string" then
    return nil, "expected the source text of a Lua function, got " .. M.show(src)
  end
  local chunk, err = chm.load("return " .. src, chunkname, function_env())
  if not chunk then return nil, M.message(err) end
  local ok, f = chm.run(limits or M.LIMITS, chunk)
  if not ok then return nil, M.message(f) end
  if type(f) ~= "function" then
    return nil, "the source is " .. M.show(f) .. ", not a Lua function (function(...) ... end)"
  end
  -- A function that captures a variable from around it (a closure made by
  -- the source's own code) would carry state from one call to the next.
  local info = chm.funcinfo(f)
  if info.what ~= "Lua" then
    return nil, "the source gives a built-in function, not a Lua function of its own " ..
                "(function(...) ... end)"
  end
  for _, name in ipairs(info.upvalues) do
    if name ~= "_ENV" then
      return nil, format("the function captures '%s' from the code around it: conditions, " ..
                         "routing functions and steps must be self-contained, so nothing " ..
                         "carries over from one call to the next (write function(...) ... end " ..
                         "on its own)", name)
    end
  end
  return f
end

-- call(f, view) -> true, r1, r2 | false, err, code: f(token_view(view))
-- under M.LIMITS through chm.run. err is one paragraph (no traceback).
function M.call(f, view)
  local vok, tv = pcall(M.token_view, view)
  if not vok then return false, M.message(tv), "SCRIPT" end
  local ok, r1, r2 = chm.run(M.LIMITS, f, tv)
  if not ok then return false, M.message(r1), r2 end
  return true, r1, r2
end

-- ======================================================================
-- Conditions
-- ======================================================================

-- compile(c, chunkname) -> cond | nil, err. c is an expression string or
-- {lua = source}. cond = {kind = "expr"|"lua", src, test | fn}.
function M.compile(c, chunkname)
  if type(c) == "string" then
    local ok, compiled, err = pcall(expr.compile, c)
    if not ok then return nil, M.message(compiled) end
    if not compiled then return nil, M.message(err) end
    return { kind = "expr", src = c, test = compiled.test }
  elseif type(c) == "table" and c.lua ~= nil then
    local f, err = M.load_function(c.lua, chunkname or "=condition")
    if not f then return nil, err end
    return { kind = "lua", src = c.lua, fn = f }
  end
  return nil, "expected an expression string or {lua = <function source>}, got " .. M.show(c)
end

-- label(cond) -> how a condition is named in reasons: the expression in
-- double quotes, or "Lua function".
function M.label(cond)
  if cond.kind == "expr" then return '"' .. cond.src .. '"' end
  return "Lua function"
end

-- test(cond, view [, scope]) -> true | false | nil, err. An expression must
-- yield a boolean (null is false); a Lua function's result is truthy or
-- not (null is false). Errors, budget and memory overruns give nil, err.
function M.test(cond, view, scope)
  if cond.kind == "expr" then
    local ok, r = pcall(cond.test, scope or M.scope(view))
    if ok then return r end
    return nil, M.message(r)
  end
  local ok, r = M.call(cond.fn, view)
  if not ok then return nil, r end
  return r ~= nil and r ~= false and not rawequal(r, null)
end

return M
