--[[
tests/expr_spec.lua — busted spec for lua/expr.lua, the expression compiler.
Runs standalone (`busted --lua=lua5.4 tests/expr_spec.lua` from the
repository root): it puts ./lua on package.path and needs nothing built.
The data-driven cases live in tests/fixtures/expr_cases.lua; they run twice,
once through `require "expr"` and once through a copy of the module loaded
in an environment that holds only the globals it is allowed to use. The
examples of docs/expressions.md are checked against the cases marked doc.
]]

local source = debug.getinfo(1, "S").source
local root = source:match("^@(.*)tests/expr_spec%.lua$") or ""
package.path = root .. "lua/?.lua;" .. package.path

local expr = require "expr"
local make_cases = dofile(root .. "tests/fixtures/expr_cases.lua")

-- The globals lua/expr.lua may use (the brief's allow-list); a copy of the
-- module loaded with only these proves it reaches for nothing else.
local ALLOWED = {"string", "table", "math", "utf8", "pairs", "ipairs", "type",
                 "tostring", "tonumber", "error", "pcall", "select",
                 "setmetatable", "getmetatable", "rawget", "rawequal", "next"}

local function load_restricted()
  local env = {}
  for _, k in ipairs(ALLOWED) do env[k] = _G[k] end
  setmetatable(env, {
    __index = function(_, k) error("expr.lua read the global '" .. tostring(k) .. "'", 2) end,
    __newindex = function(_, k) error("expr.lua wrote the global '" .. tostring(k) .. "'", 2) end,
  })
  local chunk = assert(loadfile(root .. "lua/expr.lua", "t", env))
  return chunk()
end

-- same(a, b, null) -> true when a and b are the same language value; numbers
-- must also agree on integer/float.
local function same(a, b, null)
  if rawequal(a, null) or rawequal(b, null) then return rawequal(a, b) end
  if type(a) == "number" and type(b) == "number" then
    return math.type(a) == math.type(b) and a == b
  end
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do
    if not same(v, b[k], null) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

-- render(v, null) -> the text docs/expressions.md uses for a result.
local function render(v, null)
  if rawequal(v, null) then return "null" end
  local t = type(v)
  if t == "string" then return "'" .. v .. "'" end
  if t == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    local s = string.format("%.17g", v)
    for p = 15, 17 do
      s = string.format("%." .. p .. "g", v)
      if tonumber(s) == v then break end
    end
    if not s:find("[.eEn]") then s = s .. ".0" end
    return s
  end
  if t == "table" then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = render(x, null) end
    return "[" .. table.concat(parts, ", ") .. "]"
  end
  return tostring(v)
end

local function show(v, null)
  if type(v) == "table" and not rawequal(v, null) and not expr.is_error(v) then
    return render(v, null)
  end
  return tostring(v) .. (math.type(v) and " (" .. math.type(v) .. ")" or "")
end

-- run_case(E, case, null, S) -> ok, why: compile and evaluate one case with
-- module instance E (scope defaults to the example token S).
local function run_case(E, case, null, S)
  local src = case[1]
  local opts = case.functions and {functions = case.functions} or nil
  local compiled, cerr = E.compile(src, opts)
  local ok, value
  if compiled then
    ok, value = pcall(compiled.eval, case.scope or S)
  else
    ok, value = false, cerr
  end
  if case.error then
    if ok then
      return false, "expected an error, got " .. show(value, null)
    end
    if compiled and not E.is_error(value) then
      return false, "runtime error is not an error object: " .. tostring(value)
    end
    local msg = compiled and value.message or value
    if type(msg) ~= "string" then return false, "error is not a message: " .. tostring(msg) end
    if not msg:find("^expression error at column %d+: ") then
      return false, "malformed error: " .. msg
    end
    if not msg:find(case.error, 1, true) then
      return false, "error '" .. msg .. "' lacks '" .. case.error .. "'"
    end
    local kind = compiled and value.kind or "syntax"
    if case.kind and kind ~= case.kind then
      return false, "error kind " .. tostring(kind) .. ", expected " .. case.kind .. ": " .. msg
    end
    return true
  end
  if not ok then
    return false, "unexpected error: " .. tostring(value)
  end
  if not same(value, case.expected, null) then
    return false, "got " .. show(value, null) .. ", expected " .. show(case.expected, null)
  end
  return true
end

-- doc_examples() -> list of {src, result, line}: every line of the ```expr
-- blocks of docs/expressions.md, written "src ⇒ result".
local function doc_examples()
  local f = assert(io.open(root .. "docs/expressions.md", "r"))
  local text = f:read("a")
  f:close()
  local out, inside, n = {}, false, 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if inside then
      if line:match("^```") then
        inside = false
      elseif line:match("%S") then
        local src, result = line:match("^%s*(.-)%s+⇒%s+(.-)%s*$")
        out[#out + 1] = {src = src, result = result, line = n, text = line}
      end
    elseif line:match("^```expr%s*$") then
      inside = true
    end
  end
  return out
end

describe("expr cases", function()
  for _, variant in ipairs({{"require", expr}, {"restricted env", load_restricted()}}) do
    local name, E = variant[1], variant[2]
    describe("(" .. name .. ")", function()
      local cases, S = make_cases(E.null)
      it("has at least 80 cases", function()
        assert.is_true(#cases >= 80)
      end)
      for i, case in ipairs(cases) do
        local label = #case[1] > 60 and case[1]:sub(1, 57) .. "..." or case[1]
        it(string.format("#%d %s", i, label), function()
          local ok, why = run_case(E, case, E.null, S)
          assert(ok, why)
        end)
      end
    end)
  end
end)

describe("docs/expressions.md", function()
  local cases = make_cases(expr.null)
  local by_src = {}
  for _, c in ipairs(cases) do
    if c.doc then by_src[c[1]] = c end
  end
  local examples = doc_examples()

  it("has examples", function()
    assert.is_true(#examples >= 40)
  end)

  for _, ex in ipairs(examples) do
    it("example at line " .. ex.line .. ": " .. ex.text, function()
      assert(ex.src, "example is not written 'src ⇒ result'")
      local c = by_src[ex.src]
      assert(c, "no case marked doc = true for " .. ex.src)
      if c.error then
        assert.are.equal("error: " .. c.error, ex.result)
      else
        assert.are.equal(render(c.expected, expr.null), ex.result)
      end
    end)
  end

  it("prints every case marked doc", function()
    local shown = {}
    for _, ex in ipairs(examples) do
      if ex.src then shown[ex.src] = true end
    end
    for src in pairs(by_src) do
      assert(shown[src], "case marked doc is not in the doc: " .. src)
    end
  end)
end)

describe("expr API", function()
  local S = select(2, make_cases(expr.null))

  it("compile returns the source, names and functions used", function()
    local c = assert(expr.compile("max(amount, 10) > 5 and output.pass and amount < 2000"))
    assert.are.equal("max(amount, 10) > 5 and output.pass and amount < 2000", c.source)
    assert.are.same({"amount", "output.pass"}, c.names)
    assert.are.same({"max"}, c.functions)
    assert.is_true(c.eval(S))
  end)

  it("compile returns nil and a message string on a bad expression", function()
    local c, err = expr.compile("amount >")
    assert.is_nil(c)
    assert.are.equal("expression error at column 9: unexpected end of expression; expected a value", err)
  end)

  it("reports columns in characters, not bytes", function()
    local _, err = expr.compile("'Zoë' == name =")
    assert.are.equal("expression error at column 15: unexpected '='; expected '==' (did you mean '=='?)", err)
  end)

  it("compile refuses misuse by raising", function()
    assert.has_error(function() expr.compile(nil) end, "expr.compile: source must be a string, got nil")
    assert.has_error(function() expr.compile("1", {functions = {abs = math.abs}}) end,
                     "expr.compile: host function 'abs' would shadow a built-in")
    assert.has_error(function() expr.compile("1", {functions = {["a-b"] = math.abs}}) end)
    assert.has_error(function() expr.compile("1", {functions = {f = 1}}) end,
                     "expr.compile: host function 'f' is a number, not a function")
    assert.has_error(function() expr.compile("1", "x") end)
  end)

  it("eval raises error objects that print as their message", function()
    local ok, err = pcall(expr.eval, "amount / 0", S)
    assert.is_false(ok)
    assert.is_true(expr.is_error(err))
    assert.are.equal("arith", err.kind)
    assert.are.equal(8, err.column)
    assert.are.equal("expression error at column 8: division by zero; expected a non-zero divisor",
                     tostring(err))
  end)

  it("eval raises a syntax error object for a bad expression", function()
    local ok, err = pcall(expr.eval, "1 +", S)
    assert.is_false(ok)
    assert.is_true(expr.is_error(err))
    assert.are.equal("syntax", err.kind)
    assert.are.equal("1 +", err.source)
  end)

  it("eval caches compiled expressions by source", function()
    assert.is_true(expr.eval("amount > 1000", S))
    assert.is_false(expr.eval("amount > 1000", {attrs = {amount = 5}}))
  end)

  it("refuses a malformed scope with a scope error", function()
    for _, scope in ipairs({false, "x", {attrs = "x"}, {fields = 1}}) do
      local ok, err = pcall(expr.eval, "1", scope)
      assert.is_false(ok)
      assert.is_true(expr.is_error(err))
      assert.are.equal("scope", err.kind)
    end
    assert.are.equal(1, expr.eval("1", {}))
  end)

  it("resolves reserved fields first, then attributes", function()
    assert.are.equal("ACTIVE", expr.eval("status", S))
    assert.are.equal("attr", expr.eval("status", {attrs = {status = "attr"}}))
    assert.are.equal("attr", expr.eval("status", {fields = {}, attrs = {status = "attr"}}))
  end)

  it("reads attributes through __index (lazy proxies)", function()
    local proxy = setmetatable({}, {__index = function(_, k) if k == "amount" then return 7 end end})
    assert.are.equal(8, expr.eval("amount + 1", {attrs = proxy}))
  end)

  it("test() requires a boolean or null result", function()
    local c = assert(expr.compile("note"))
    assert.is_false(c.test(S))
    assert.is_true(expr.test("amount > 1", S))
    local ok, err = pcall(expr.test, "amount", S)
    assert.is_false(ok)
    assert.are.equal("type", err.kind)
    assert.are.equal("expression error at column 1: the condition is a number, not a boolean; "
                     .. "expected a boolean or null", err.message)
  end)

  it("wraps host errors and keeps the cause", function()
    local c = assert(expr.compile("f(1)", {functions = {f = function() error({code = 7}) end}}))
    local ok, err = pcall(c.eval, S)
    assert.is_false(ok)
    assert.are.equal("host", err.kind)
    assert.are.same({code = 7}, err.cause)
  end)

  it("passes expression errors raised inside host functions through", function()
    local c = assert(expr.compile("f(1)", {functions = {f = function() return expr.eval("1 / 0", S) end}}))
    local ok, err = pcall(c.eval, S)
    assert.is_false(ok)
    assert.are.equal("arith", err.kind)
  end)

  it("host functions get many arguments and null", function()
    local c = assert(expr.compile("f(1, 2, null, 'x')", {functions = {
      f = function(...) return select("#", ...) * 10 + (select(3, ...) == expr.null and 1 or 0) end}}))
    assert.are.equal(41, c.eval(S))
  end)

  it("set_null plugs in the engine's null", function()
    local E = load_restricted()
    local sentinel = setmetatable({}, {__name = "json.null"})
    E.set_null(sentinel)
    assert.are.equal(sentinel, E.null)
    assert.are.equal(sentinel, E.eval("null", {}))
    assert.is_true(E.eval("x == null", {attrs = {x = sentinel}}))
    assert.is_true(E.eval("not x", {attrs = {x = sentinel}}))
    assert.is_false(E.eval("x == null", {attrs = {x = {}}}))
    assert.has_error(function() E.set_null(nil) end)
  end)

  -- M.register: the state's own host functions (chm_register_function
  -- goes through it). A fresh copy of the module keeps them out of the
  -- other tests.
  it("register makes a function callable by every later compile and eval", function()
    local E = load_restricted()
    local gen = E.generation
    local _, err = E.compile("double(x) > 2")
    assert.are.equal("expression error at column 1: unknown function 'double'; expected one of "
                     .. "abs, all, any, ceil, float, floor, int, len, max, min, pow, round, sqrt, "
                     .. "str, sum (or a host function registered on this handle)", err)
    assert.is_true(E.register("double", function(v) return v * 2 end))
    assert.is_true(E.generation > gen)
    assert.are.same({"double"}, E.registered())
    local c = assert(E.compile("double(x) > 2"))
    assert.are.same({"double"}, c.functions)
    assert.is_true(c.test({attrs = {x = 2}}))
    assert.is_false(E.test("double(x) > 2", {attrs = {x = 1}}))
    -- the unknown-function list now names it
    _, err = E.compile("triple(1)")
    assert.truthy(err:find("ceil, double, float", 1, true), err)
    -- explicit opts.functions still means exactly those
    assert.is_nil((E.compile("double(1)", {functions = {half = function(v) return v / 2 end}})))
  end)

  it("register replaces, also in expressions compiled before", function()
    local E = load_restricted()
    E.register("f", function() return 1 end)
    local c = assert(E.compile("f()"))
    assert.are.equal(1, c.eval({}))
    E.register("f", function() return 2 end)
    assert.are.equal(2, c.eval({}))
    E.register("f", function() error("down", 0) end)
    local ok, e = pcall(c.eval, {})
    assert.is_false(ok)
    assert.are.equal("host", e.kind)
    assert.are.equal("expression error at column 1: function 'f' failed: down", e.message)
  end)

  it("register refuses built-in names, keywords and non-names", function()
    local E = load_restricted()
    local gen = E.generation
    for name, why in pairs({
      len = "host function 'len' would shadow a built-in",
      ["not"] = 'host function name "not" is not a valid name',
      ["a b"] = 'host function name "a b" is not a valid name',
      ["1x"] = 'host function name "1x" is not a valid name',
      [""] = 'host function name "" is not a valid name',
    }) do
      local ok, err = E.register(name, function() end)
      assert.is_nil(ok)
      assert.are.equal(why, err)
    end
    assert.are.equal(gen, E.generation)
    assert.are.same({}, E.registered())
    assert.has_error(function() E.register("g", 42) end,
                     "expr.register: expected a function, got number")
  end)

  it("lists its built-ins", function()
    assert.are.same({"abs", "all", "any", "ceil", "float", "floor", "int", "len", "max", "min",
                     "pow", "round", "sqrt", "str", "sum"}, expr.builtins)
  end)

  it("limits the length and the depth of an expression", function()
    local _, err = expr.compile(string.rep(" ", 65537))
    assert.are.equal("expression error at column 1: expression too long (65537 bytes); "
                     .. "expected at most 65536 bytes", err)
    assert.are.equal(1000, expr.eval("1" .. string.rep(" + 1", 999), {}))
    _, err = expr.compile("1" .. string.rep(" + 1", 1000))
    assert.are.equal("expression error at column 3999: expression too deep; "
                     .. "expected at most 1000 levels of operators", err)
  end)

  it("never crashes on random input", function()
    local alphabet = {"amount", "output.pass", "tags", "note", "1", "2.5", "0", "'a'", "\"b\"",
                      "true", "null", "+", "-", "*", "/", "%", "==", "!=", "<", ">=", "in",
                      "not", "and", "or", "&&", "||", "!", "(", ")", "[", "]", ",", ".", "=",
                      "min(", "len(", "round(", "sum(", "all(", "str(", "int(", "pow(", "'é'",
                      "$", "\\", "'", "vendor", "scores", "checks", "empty", "review.state"}
    local rng = 12345
    local function rand(n)
      rng = (rng * 1103515245 + 12345) % 2147483648
      return rng % n + 1
    end
    for _ = 1, 3000 do
      local parts = {}
      for j = 1, rand(8) do parts[j] = alphabet[rand(#alphabet)] end
      local src = table.concat(parts, rand(2) == 1 and " " or "")
      local ok, c, err = pcall(expr.compile, src)
      assert(ok, "compile crashed on " .. src .. ": " .. tostring(c))
      if c then
        local eok, e = pcall(c.eval, S)
        assert(eok or expr.is_error(e), "eval of " .. src .. " raised " .. tostring(e))
      else
        assert(err:find("^expression error at column %d+: "), err)
      end
    end
  end)

end)
