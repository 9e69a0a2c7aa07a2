-- lua/steps.lua — role step functions for the judge (lua/judge.lua):
-- compiles a role's step source in a sandbox, runs it under the step limits
-- with a token view and a context view (clock, a deterministic PRNG seeded
-- per token, a copy of the actor's memory, the host's skills), and checks
-- the shape of what it returns. Trusted module; relies on
-- lua/conditions.lua and `chm` (run, now).
local conditions = require("conditions")

local M = {}

local type, next, tostring, error, pcall = type, next, tostring, error, pcall
local rawequal = rawequal
local format, byte = string.format, string.byte
local mtype, tointeger = math.type, math.tointeger

-- Limits of one step call (and of the chunk that defines the function).
M.LIMITS = { instructions = 10000000, deadline_ms = 5000 }

-- ======================================================================
-- Deterministic random numbers
-- ======================================================================

-- seed_of(seed) -> 64-bit integer: integers as they are, other numbers and
-- strings through FNV-1a (so a uuid or a hash can seed), nil as 0.
local function seed_of(seed)
  if seed == nil then return 0 end
  if mtype(seed) == "integer" then return seed end
  local s
  if type(seed) == "number" then
    local i = tointeger(seed)
    if i then return i end
    s = format("%.17g", seed)
  else
    s = tostring(seed)
  end
  local h = 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ byte(s, i)) * 0x100000001b3 end
  return h
end

-- prng(seed) -> random([m [, n]]): xorshift64* seeded through splitmix64.
-- Same seed, same sequence. random() is a float in [0, 1); random(m) an
-- integer in [1, m]; random(m, n) an integer in [m, n] (like math.random).
function M.prng(seed)
  local z = seed_of(seed) + 0x9E3779B97F4A7C15
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  local x = z ~ (z >> 31)
  if x == 0 then x = 0x2545F4914F6CDD1D end
  return function(m, n)
    x = x ~ (x >> 12)
    x = x ~ (x << 25)
    x = x ~ (x >> 27)
    local r = x * 0x2545F4914F6CDD1D
    if m == nil then return (r >> 11) * 0x1.0p-53 end
    local lo, hi
    if n == nil then lo, hi = 1, tointeger(m) else lo, hi = tointeger(m), tointeger(n) end
    if not lo or not hi then error("random: integer arguments expected", 2) end
    if lo > hi then error("random: interval is empty", 2) end
    local span = hi - lo + 1
    if span <= 0 then error("random: interval too large", 2) end
    return lo + (r >> 1) % span
  end
end

-- ======================================================================
-- Compiling and running
-- ======================================================================

-- compile(src, role) -> f | nil, err: the step function of role `role`.
function M.compile(src, role)
  local f, err = conditions.load_function(src, "=step " .. role, M.LIMITS)
  if not f then return nil, format("step for role '%s' does not compile: %s", role, err) end
  return f
end

-- RESULT[key] -> the type a step result's key must have.
local RESULT = { set = "table", reasoning = "string", children = "array", teach = "table",
                 fail = "string", give_up = "boolean", ["end"] = "boolean" }
local RESULT_KEYS = "set, reasoning, children, teach, fail, give_up or end"

local function bad(role, what)
  return false, format("step for role '%s' returned %s", role, what), "SCRIPT"
end

-- bad_key(t) -> the first key of t that is not a non-empty string, or nil.
local function bad_key(t)
  for k in next, t do
    if type(k) ~= "string" or k == "" then return k end
  end
  return nil
end

local null = chm.json.null

-- fault(v, seen) -> path, type of the first value inside v that no JSON
-- text can hold (a function, a thread, a userdata other than json.null),
-- or nil; the walk stops below conditions.MAX_DEPTH levels (the engine
-- refuses deeper values itself). path is relative to v ("", ".x",
-- "[2].y"). Each table is walked
-- once (seen), so cycles and shared tables cost nothing extra; NaN, holes,
-- odd keys and cycles are left to the JSON encoder, which names them.
local function fault(v, seen, depth)
  local t = type(v)
  if t == "function" or t == "thread" or (t == "userdata" and not rawequal(v, null)) then
    return "", t
  end
  if t ~= "table" or seen[v] then return nil end
  -- deeper than any value may be: stop walking (no stack overflow); the
  -- engine's depth check refuses it, naming the attribute
  if depth > conditions.MAX_DEPTH then return nil end
  seen[v] = true
  for k, x in next, v do
    local p, ft = fault(x, seen, depth + 1)
    if p then
      if mtype(k) == "integer" then
        p = format("[%d]", k) .. p
      elseif type(k) == "string" then
        p = "." .. k .. p
      else
        p = "[" .. conditions.show(k) .. "]" .. p
      end
      return p, ft
    end
  end
  return nil
end

-- not_json(role, what, v) -> false, err, "SCRIPT" when v holds a value
-- that is not JSON ("set.x = function; expected a JSON value"), else nil.
local function not_json(role, what, v)
  local p, t = fault(v, {}, 0)
  if p then return bad(role, format("%s%s = %s; expected a JSON value", what, p, t)) end
  return nil
end

-- validate(r, role) -> true, result | false, err, "SCRIPT". nil is {}; a
-- table may carry only the keys of RESULT with their types; set and teach
-- are keyed by names; children is a list of attribute tables.
function M.validate(r, role)
  if r == nil then return true, {} end
  if type(r) ~= "table" then
    return bad(role, type(r) .. "; expected a table like {set = {...}}")
  end
  local out = {}
  for k, v in next, r do
    local want = RESULT[k]
    if not want then
      return bad(role, format("an unknown key %s; expected %s", conditions.show(k), RESULT_KEYS))
    end
    if want == "array" then
      if type(v) ~= "table" then
        return bad(role, format("children = %s; expected a list of attribute tables", type(v)))
      end
      local n = #v
      for i, c in next, v do
        if mtype(i) ~= "integer" or i < 1 or i > n then
          return bad(role, "children with a non-list key " .. conditions.show(i) ..
                     "; expected a list of attribute tables")
        end
        if type(c) ~= "table" then
          return bad(role, format("children[%d] = %s; expected a table of attributes", i, type(c)))
        end
        local k2 = bad_key(c)
        if k2 ~= nil then
          return bad(role, format("children[%d] with a key %s; expected attribute names", i,
                                  conditions.show(k2)))
        end
      end
      for i = 1, n do
        local ok, err, code = not_json(role, format("children[%d]", i), v[i])
        if ok == false then return ok, err, code end
      end
    elseif type(v) ~= want then
      return bad(role, format("%s = %s; expected a %s", k, type(v), want))
    elseif want == "table" then
      local k2 = bad_key(v)
      if k2 ~= nil then
        return bad(role, format("%s with a key %s; expected names (strings)", k,
                                conditions.show(k2)))
      end
      local ok, err, code = not_json(role, k, v)
      if ok == false then return ok, err, code end
    end
    out[k] = v
  end
  return true, out
end

-- run(f, role, view, ctx) -> true, result | false, err, code. Calls
-- f(token_view, ctx_view) under M.LIMITS. ctx = {now, seed, memory, skills,
-- actor}; the step sees copies, so it cannot change engine state.
function M.run(f, role, view, ctx)
  ctx = ctx or {}
  local skills = {}
  for k, v in next, ctx.skills or {} do skills[k] = v end
  -- the copies refuse a value nested deeper than conditions.MAX_DEPTH (the
  -- engine never stores one): one line naming it, no traceback
  local vok, memory = pcall(conditions.copy_map, ctx.memory or {}, "memory value")
  local tok, tview = pcall(conditions.token_view, view)
  if not (vok and tok) then
    return false, format("step for role '%s' cannot run: %s", role,
                         conditions.message(vok and tview or memory)), "SCRIPT"
  end
  local ctx_view = {
    now = ctx.now or chm.now(),
    random = M.prng(ctx.seed),
    memory = memory,
    skills = skills,
    role = role,
    actor = conditions.copy(ctx.actor),
  }
  local ok, r, code = chm.run(M.LIMITS, f, tview, ctx_view)
  if not ok then
    -- the error as raised: its position ("step ROLE:LINE: ...") names the
    -- role, and the engine adds "step of role 'ROLE' failed (CODE)"
    return false, conditions.message(r), code or "SCRIPT"
  end
  return M.validate(r, role)
end

return M
