--[[
lua/expr.lua — the compiler of Chameleon's expression language (DESIGN §7).
It turns a condition string such as "amount > 1000 and currency == 'EUR'"
into a tree of Lua closures: lexer -> precedence-climbing parser -> AST ->
closures. There is no `load`: a compiled expression can only do what the
language has. Trusted module; it uses only string, table, math, utf8 and a
few base functions. The language reference is docs/expressions.md.
]]

local M = {}

-- Everything the module touches, captured once: the module never reads a
-- global after loading, and upvalues are cheaper than _ENV lookups.
local type, tostring, tonumber = type, tostring, tonumber
local error, pcall, select, next, pairs = error, pcall, select, next, pairs
local setmetatable = setmetatable
local rawget, rawequal = rawget, rawequal
local byte, sub, find, format = string.byte, string.sub, string.find, string.format
local gsub, match = string.gsub, string.match
local concat, sort, unpack = table.concat, table.sort, table.unpack
local mtype, floor, ceil = math.type, math.floor, math.ceil
local msqrt, tointeger = math.sqrt, math.tointeger
local huge, mininteger, maxinteger = math.huge, math.mininteger, math.maxinteger
local utf8len = utf8.len

local MAX_SOURCE = 65536 -- bytes in one expression
local MAX_NESTING = 200  -- parentheses, lists, calls and prefix operators
local MAX_DEPTH = 1000   -- depth of the AST (long operator chains count)
local MAX_EQ_DEPTH = 100 -- nesting of values compared by `==`
local EXACT_FLOAT = 4503599627370496.0 -- 2^52: floats above have no fraction

-- ======================================================================
-- Null and errors
-- ======================================================================

-- The value of the `null` literal and of JSON null in attributes. The engine
-- replaces it with its json.null sentinel (M.set_null) before compiling.
local null = setmetatable({}, {__tostring = function() return "null" end})
M.null = null

-- An expression error is a table {expr_error = true, kind, column, message,
-- source?} with this metatable; tostring(e) is its message.
local ErrorMT = {__tostring = function(e) return e.message end}

-- new_error(kind, col, what, expected) -> error object. kind is one of
-- syntax, name, type, arith, value, host, scope. The message reads
-- "expression error at column N: <what>; expected <expected>".
local function new_error(kind, col, what, expected)
  local msg = format("expression error at column %d: %s", col, what)
  if expected then msg = msg .. "; expected " .. expected end
  return setmetatable({expr_error = true, kind = kind, column = col,
                       message = msg}, ErrorMT)
end

local function raise(kind, col, what, expected)
  error(new_error(kind, col, what, expected), 0)
end

-- M.is_error(v) -> true when v is an expression error object.
function M.is_error(v)
  return type(v) == "table" and rawget(v, "expr_error") == true
end

local function is_list(t)
  return rawget(t, 1) ~= nil or next(t) == nil
end

-- typename(v) -> the language's name for the type of v, for messages.
local function typename(v)
  if rawequal(v, null) then return "null" end
  local t = type(v)
  if t == "table" then return is_list(v) and "list" or "object" end
  if t == "number" or t == "string" or t == "boolean" then return t end
  return "unsupported value (" .. t .. ")"
end

-- a_typename(v) -> typename(v) with its article: "a string", "null".
local function a_typename(v)
  local n = typename(v)
  if n == "null" then return n end
  return (find(n, "^[aeiou]") and "an " or "a ") .. n
end

-- ======================================================================
-- Lexer
-- ======================================================================

local KEYWORDS = {["and"] = true, ["or"] = true, ["not"] = true, ["in"] = true,
                  ["true"] = true, ["false"] = true, ["null"] = true}

local ESCAPES = {["\\"] = "\\", ["'"] = "'", ['"'] = '"', n = "\n", t = "\t",
                 r = "\r"}

local TWO_CHAR = {["=="] = true, ["!="] = true, ["<="] = true, [">="] = true,
                  ["&&"] = true, ["||"] = true}

local ONE_CHAR = {["+"] = true, ["-"] = true, ["*"] = true, ["/"] = true,
                  ["%"] = true, ["<"] = true, [">"] = true, ["!"] = true,
                  ["("] = true, [")"] = true, ["["] = true, ["]"] = true,
                  [","] = true, ["."] = true}

-- column(src, p) -> 1-based character column of byte position p (UTF-8
-- continuation bytes do not count; newlines count as one character).
local function column(src, p)
  local _, n = gsub(sub(src, 1, p - 1), "[\128-\191]", "")
  return p - n
end

-- lexer(src) -> next(): each call returns the next token
-- {t = "num"|"str"|"name"|"kw"|"op"|"eof", v = value, col = column}.
-- Raises syntax errors (error objects) on malformed input.
local function lexer(src)
  local pos, len = 1, #src
  local cont = 0 -- continuation bytes before pos (only strings hold any)

  local function fail(p, what, expected)
    raise("syntax", column(src, p), what, expected)
  end

  local function lex_number(start)
    local _, e = find(src, "^%d+", start)
    local p, float = e + 1, false
    if sub(src, p, p) == "." then
      local _, fe = find(src, "^%d+", p + 1)
      if not fe then
        fail(start, format("malformed number '%s'", sub(src, start, p)),
             "digits after '.'")
      end
      p, float = fe + 1, true
    end
    if find(src, "^[eE]", p) then
      local _, xe = find(src, "^[eE][-+]?%d+", p)
      if not xe then
        fail(start, format("malformed number '%s'", sub(src, start, p)),
             "digits in the exponent")
      end
      p, float = xe + 1, true
    end
    if find(src, "^[A-Za-z0-9_.]", p) then
      local bad = match(src, "^[A-Za-z0-9_.]*", start)
      fail(start, format("malformed number '%s'", bad),
           "an operator or a space after a number")
    end
    local text = sub(src, start, p - 1)
    local v = tonumber(text)
    if float then v = v + 0.0 end
    if v == huge then
      fail(start, format("number '%s' is out of range", text),
           "a finite number")
    end
    pos = p
    return v
  end

  local function lex_string(start)
    local q = sub(src, start, start)
    local set = q == "'" and "[\\']" or '[\\"]'
    local parts, n, p = {}, 0, start + 1
    while true do
      local s = find(src, set, p)
      if not s then
        fail(start, "unterminated string", "a closing " .. q)
      end
      n = n + 1
      parts[n] = sub(src, p, s - 1)
      if sub(src, s, s) == q then
        p = s + 1
        break
      end
      local c = sub(src, s + 1, s + 1)
      local v = ESCAPES[c]
      if c == "" then
        fail(start, "unterminated string", "a closing " .. q)
      elseif not v then
        local shown = match(src, "^[\192-\247][\128-\191]*", s + 1) or c
        fail(s, format("invalid escape '\\%s' in string", shown),
             [[one of \\ \' \" \n \t \r]])
      end
      n = n + 1
      parts[n] = v
      p = s + 2
    end
    local _, k = gsub(sub(src, start, p - 1), "[\128-\191]", "")
    cont = cont + k
    pos = p
    return concat(parts)
  end

  return function()
    local _, e = find(src, "^[ \t\r\n]+", pos)
    if e then pos = e + 1 end
    local col = pos - cont
    if pos > len then return {t = "eof", col = col} end
    local c = byte(src, pos)
    if (c >= 97 and c <= 122) or (c >= 65 and c <= 90) or c == 95 then
      local w = match(src, "^[A-Za-z_][A-Za-z0-9_]*", pos)
      pos = pos + #w
      return {t = KEYWORDS[w] and "kw" or "name", v = w, col = col}
    elseif c >= 48 and c <= 57 then
      return {t = "num", v = lex_number(pos), col = col}
    elseif c == 39 or c == 34 then
      return {t = "str", v = lex_string(pos), col = col}
    end
    local two = sub(src, pos, pos + 1)
    if TWO_CHAR[two] then
      pos = pos + 2
      return {t = "op", v = two, col = col}
    end
    local one = sub(src, pos, pos)
    if ONE_CHAR[one] then
      pos = pos + 1
      return {t = "op", v = one, col = col}
    end
    if one == "=" or one == "&" or one == "|" then
      fail(pos, format("unexpected '%s'", one),
           format("'%s%s' (did you mean '%s%s'?)", one, one, one, one))
    end
    local ch = match(src, "^[\192-\247][\128-\191]*", pos) or one
    if c < 32 or c == 127 then ch = format("\\%d", c) end
    fail(pos, format("unexpected character '%s'", ch),
         "a value, a name or an operator")
  end
end

-- ======================================================================
-- Parser: tokens -> AST
-- ======================================================================
-- Node kinds: lit (v), null, list (items), name (path, segs), call (name,
-- args), neg (e), not (e), and/or (a, b), arith (op, a, b), order (ops,
-- items, cols: a chain of < <= > >=), eq (op, a, b), in (neg, a, b).
-- Every node has col (the column of its operator or first token) and d
-- (its depth).

local ORDER_OPS = {["<"] = true, ["<="] = true, [">"] = true, [">="] = true}
local EQ_OPS = {["=="] = true, ["!="] = true}

local BUILTIN_ARITY -- name -> {min, max}; filled next to the built-ins

local function describe(tok)
  local t = tok.t
  if t == "eof" then return "end of expression" end
  if t == "name" then return format("name '%s'", tok.v) end
  if t == "num" then return format("number %s", tostring(tok.v)) end
  if t == "str" then return "string" end
  return format("'%s'", tok.v)
end

-- hint(tok) -> extra words for a token that cannot follow a value.
local function hint(tok)
  if tok.t == "op" then
    if tok.v == "." then return " (attribute access is only allowed on names)" end
    if tok.v == "[" then return " (indexing is not supported)" end
    if tok.v == "(" then return " (only functions can be called)" end
  end
  return ""
end

local function parse(src, host)
  local next_token = lexer(src)
  local tok = next_token()
  local ahead -- one token of look-ahead, fetched on demand
  local nesting = 0
  local names, names_seen = {}, {}
  local funcs, funcs_seen = {}, {}

  local function advance()
    local t = tok
    if ahead then tok, ahead = ahead, nil else tok = next_token() end
    return t
  end

  local function peek()
    if not ahead then ahead = next_token() end
    return ahead
  end

  local function fail(col, what, expected) raise("syntax", col, what, expected) end

  local function is_op(v) return tok.t == "op" and tok.v == v end
  local function is_kw(v) return tok.t == "kw" and tok.v == v end

  local function node(k, col, d, fields)
    if d > MAX_DEPTH then
      fail(col, "expression too deep", format("at most %d levels of operators", MAX_DEPTH))
    end
    fields.k, fields.col, fields.d = k, col, d
    return fields
  end

  local function enter(col)
    nesting = nesting + 1
    if nesting > MAX_NESTING then
      fail(col, "expression nested too deeply", format("at most %d levels of nesting", MAX_NESTING))
    end
  end

  local function expect_close(close, open_tok, what)
    if not is_op(close) then
      fail(tok.col, "unexpected " .. describe(tok) .. hint(tok),
           format("%s to close '%s' at column %d", what, open_tok.v, open_tok.col))
    end
    advance()
  end

  local parse_expr

  local function parse_call(name_tok)
    local name = name_tok.v
    local arity = BUILTIN_ARITY[name]
    if not arity and not (host and host[name]) then
      local all = {}
      for k in pairs(BUILTIN_ARITY) do all[#all + 1] = k end
      if host then for k in pairs(host) do all[#all + 1] = k end end
      sort(all)
      fail(name_tok.col, format("unknown function '%s'", name), "one of " .. concat(all, ", ")
           .. " (or a host function registered on this handle)")
    end
    local open = advance() -- '('
    enter(open.col)
    local args, d = {}, 0
    if not is_op(")") then
      while true do
        local a = parse_expr()
        args[#args + 1] = a
        if a.d > d then d = a.d end
        if not is_op(",") then break end
        advance()
      end
    end
    expect_close(")", open, "',' or ')'")
    nesting = nesting - 1
    if arity and (#args < arity[1] or #args > arity[2]) then
      local want
      if arity[1] == arity[2] then
        want = format("%d argument%s", arity[1], arity[1] == 1 and "" or "s")
      elseif arity[2] == huge then
        want = format("at least %d argument%s", arity[1], arity[1] == 1 and "" or "s")
      else
        want = format("%d to %d arguments", arity[1], arity[2])
      end
      fail(name_tok.col, format("wrong number of arguments to %s() (got %d)", name, #args), want)
    end
    if not funcs_seen[name] then
      funcs_seen[name] = true
      funcs[#funcs + 1] = name
    end
    return node("call", name_tok.col, d + 1,
                {name = name, args = args, host = not arity and host or nil})
  end

  local function parse_primary()
    local t = tok
    if t.t == "num" or t.t == "str" then
      advance()
      return node("lit", t.col, 1, {v = t.v})
    elseif t.t == "kw" then
      if t.v == "true" or t.v == "false" then
        advance()
        return node("lit", t.col, 1, {v = t.v == "true"})
      elseif t.v == "null" then
        advance()
        return node("null", t.col, 1, {})
      end
    elseif t.t == "name" then
      advance()
      if is_op("(") then return parse_call(t) end
      local segs = {t.v}
      while is_op(".") do
        advance()
        if tok.t ~= "name" and tok.t ~= "kw" then
          fail(tok.col, "unexpected " .. describe(tok), "a name after '.'")
        end
        segs[#segs + 1] = advance().v
      end
      if #segs > 1 and is_op("(") then
        fail(tok.col, "unexpected '(' (method calls are not supported)",
             "an operator or the end of the expression")
      end
      local path = concat(segs, ".")
      if not names_seen[path] then
        names_seen[path] = true
        names[#names + 1] = path
      end
      return node("name", t.col, 1, {path = path, segs = segs})
    elseif t.t == "op" and t.v == "(" then
      advance()
      enter(t.col)
      local e = parse_expr()
      expect_close(")", t, "')'")
      nesting = nesting - 1
      return e
    elseif t.t == "op" and t.v == "[" then
      advance()
      enter(t.col)
      local items, d = {}, 0
      if not is_op("]") then
        while true do
          local e = parse_expr()
          items[#items + 1] = e
          if e.d > d then d = e.d end
          if not is_op(",") then break end
          advance()
        end
      end
      expect_close("]", t, "',' or ']'")
      nesting = nesting - 1
      return node("list", t.col, d + 1, {items = items})
    end
    if t.t == "eof" then
      fail(t.col, t.col == 1 and "empty expression" or "unexpected end of expression", "a value")
    end
    fail(t.col, "unexpected " .. describe(t), "a value")
  end

  local function parse_unary()
    if is_op("-") then
      local t = advance()
      enter(t.col)
      local e = parse_unary()
      nesting = nesting - 1
      if e.k == "lit" and type(e.v) == "number" then
        e.v, e.col = -e.v, t.col
        return e
      end
      return node("neg", t.col, e.d + 1, {e = e})
    end
    return parse_primary()
  end

  local function binary_level(sub_parser, ops)
    return function()
      local left = sub_parser()
      while tok.t == "op" and ops[tok.v] do
        local t = advance()
        local right = sub_parser()
        local d = left.d > right.d and left.d or right.d
        left = node("arith", t.col, d + 1, {op = t.v, a = left, b = right})
      end
      return left
    end
  end

  local parse_mul = binary_level(parse_unary, {["*"] = true, ["/"] = true, ["%"] = true})
  local parse_add = binary_level(parse_mul, {["+"] = true, ["-"] = true})

  -- comparison_op() -> "<", "==", "in", "not in"... when the current token
  -- starts a comparison, else nil.
  local function comparison_op()
    if tok.t == "op" and (ORDER_OPS[tok.v] or EQ_OPS[tok.v]) then return tok.v end
    if tok.t == "kw" then
      if tok.v == "in" then return "in" end
      if tok.v == "not" then
        if peek().t == "kw" and peek().v == "in" then return "not in" end
        fail(tok.col, "unexpected 'not'", "'in' after 'not', or an operator")
      end
    end
    return nil
  end

  local function parse_comparison()
    local left = parse_add()
    local op = comparison_op()
    if not op then return left end
    local first = tok
    advance()
    if op == "not in" then advance() end
    if ORDER_OPS[op] then
      local ops, items, cols = {op}, {left, parse_add()}, {first.col}
      local d = left.d > items[2].d and left.d or items[2].d
      while true do
        local nop = comparison_op()
        if not nop then break end
        if not ORDER_OPS[nop] then
          fail(tok.col, format("'%s' cannot follow '%s' in a chain", nop, op),
               "parentheses around one of the comparisons")
        end
        ops[#ops + 1], cols[#cols + 1] = nop, tok.col
        advance()
        local e = parse_add()
        items[#items + 1] = e
        if e.d > d then d = e.d end
      end
      return node("order", first.col, d + 1, {ops = ops, items = items, cols = cols})
    end
    local right = parse_add()
    local nop = comparison_op()
    if nop then
      fail(tok.col, format("'%s' cannot be chained with '%s'", nop, op),
           "parentheses around one of the comparisons")
    end
    local d = (left.d > right.d and left.d or right.d) + 1
    if EQ_OPS[op] then
      return node("eq", first.col, d, {op = op, a = left, b = right})
    end
    return node("in", first.col, d, {neg = op == "not in", opname = op, a = left, b = right})
  end

  local function parse_not()
    if is_kw("not") or is_op("!") then
      local t = advance()
      enter(t.col)
      local e = parse_not()
      nesting = nesting - 1
      return node("not", t.col, e.d + 1, {e = e, opname = t.v})
    end
    return parse_comparison()
  end

  local function logic_level(sub_parser, kind, kw, op)
    return function()
      local left = sub_parser()
      while is_kw(kw) or is_op(op) do
        local t = advance()
        local right = sub_parser()
        local d = left.d > right.d and left.d or right.d
        left = node(kind, t.col, d + 1, {a = left, b = right, opname = t.v})
      end
      return left
    end
  end

  local parse_and = logic_level(parse_not, "and", "and", "&&")
  local parse_or = logic_level(parse_and, "or", "or", "||")

  parse_expr = function() return parse_or() end

  local root = parse_or()
  if tok.t ~= "eof" then
    fail(tok.col, "unexpected " .. describe(tok) .. hint(tok),
         "an operator or the end of the expression")
  end
  return root, names, funcs
end

-- ======================================================================
-- Runtime helpers (shared by the closures)
-- ======================================================================

local function type_error(col, what, expected) raise("type", col, what, expected) end

local function arith_error(col, op, a, b)
  if b == nil then
    type_error(col, format("cannot apply '%s' to %s", op, typename(a)), "a number")
  end
  type_error(col, format("cannot apply '%s' to %s and %s", op, typename(a), typename(b)),
             "two numbers")
end

local function overflow(col, op)
  raise("arith", col, format("integer overflow in '%s'", op),
        "a result within the 64-bit integer range")
end

local function out_of_range(col, op)
  raise("arith", col, format("result of '%s' is not a finite number", op), "a smaller result")
end

-- checked(r, op, col) -> r, after refusing infinities and NaN.
local function checked(r, op, col)
  if r ~= r or r == huge or r == -huge then out_of_range(col, op) end
  return r
end

local function add(a, b, col)
  if type(a) ~= "number" or type(b) ~= "number" then arith_error(col, "+", a, b) end
  local r = a + b
  if mtype(r) == "integer" then
    if (a ~ r) & (b ~ r) < 0 then overflow(col, "+") end
    return r
  end
  return checked(r, "+", col)
end

local function subtract(a, b, col)
  if type(a) ~= "number" or type(b) ~= "number" then arith_error(col, "-", a, b) end
  local r = a - b
  if mtype(r) == "integer" then
    if (a ~ b) & (a ~ r) < 0 then overflow(col, "-") end
    return r
  end
  return checked(r, "-", col)
end

local function multiply(a, b, col)
  if type(a) ~= "number" or type(b) ~= "number" then arith_error(col, "*", a, b) end
  local r = a * b
  if mtype(r) == "integer" then
    if a ~= 0 and (r // a ~= b or (a == -1 and b == mininteger)) then overflow(col, "*") end
    return r
  end
  return checked(r, "*", col)
end

local function divide(a, b, col)
  if type(a) ~= "number" or type(b) ~= "number" then arith_error(col, "/", a, b) end
  if b == 0 then raise("arith", col, "division by zero", "a non-zero divisor") end
  return checked(a / b, "/", col)
end

local function modulo(a, b, col)
  if type(a) ~= "number" or type(b) ~= "number" then arith_error(col, "%", a, b) end
  if b == 0 then raise("arith", col, "division by zero in '%'", "a non-zero divisor") end
  return checked(a % b, "%", col)
end

local ARITH = {["+"] = add, ["-"] = subtract, ["*"] = multiply, ["/"] = divide,
               ["%"] = modulo}

local ORDER = {
  ["<"] = function(x, y) return x < y end,
  ["<="] = function(x, y) return x <= y end,
  [">"] = function(x, y) return x > y end,
  [">="] = function(x, y) return x >= y end,
}

local function order_error(op, x, y, col)
  type_error(col, format("cannot compare %s with %s using '%s'", typename(x), typename(y), op),
             "two numbers or two strings")
end

-- equal(a, b, col, depth) -> the language's `==`: same type and value;
-- lists and objects compare element by element; never an error except
-- for values nested deeper than MAX_EQ_DEPTH.
local function equal(a, b, col, depth)
  if rawequal(a, b) then return true end
  if type(a) ~= "table" or type(b) ~= "table"
     or rawequal(a, null) or rawequal(b, null) then
    return false
  end
  depth = (depth or 0) + 1
  if depth > MAX_EQ_DEPTH then
    raise("value", col, "values nested too deeply to compare",
          format("at most %d levels", MAX_EQ_DEPTH))
  end
  for k, v in next, a do
    local w = rawget(b, k)
    if w == nil or not equal(v, w, col, depth) then return false end
  end
  for k in next, b do
    if rawget(a, k) == nil then return false end
  end
  return true
end

-- truth(v, opname, col) -> boolean: true is true, false and null are false,
-- anything else is a type error.
local function truth(v, opname, col)
  if v == true then return true end
  if v == false or rawequal(v, null) then return false end
  type_error(col, format("cannot apply '%s' to %s", opname, typename(v)),
             "a boolean or null")
end

-- member(x, y, opname, col) -> whether x is in y (list element, object key
-- or substring).
local function member(x, y, opname, col)
  local ty = type(y)
  if ty == "string" then
    if type(x) ~= "string" then
      type_error(col, format("cannot apply '%s' to %s and string", opname, typename(x)),
                 "a string on the left of a string")
    end
    return find(y, x, 1, true) ~= nil
  end
  if ty == "table" and not rawequal(y, null) then
    if is_list(y) then
      local i = 1
      local v = y[1]
      while v ~= nil do
        if equal(x, v, col) then return true end
        i = i + 1
        v = y[i]
      end
      return false
    end
    if type(x) ~= "string" then
      type_error(col, format("cannot apply '%s' to %s and object", opname, typename(x)),
                 "a string key on the left of an object")
    end
    return y[x] ~= nil
  end
  type_error(col, format("cannot apply '%s' to %s and %s", opname, typename(x), typename(y)),
             "a list, an object or a string on the right")
end

-- ======================================================================
-- Built-in functions: fn(col, ...) -> value
-- ======================================================================

local function arg_error(fname, col, v, i, n, expected)
  local where = n > 1 and format(" as argument %d", i) or ""
  type_error(col, format("cannot apply %s() to %s%s", fname, typename(v), where), expected)
end

local function need_number(fname, col, v, i, n)
  if type(v) ~= "number" then arg_error(fname, col, v, i or 1, n or 1, "a number") end
  return v
end

local function need_list(fname, col, v)
  if type(v) ~= "table" or rawequal(v, null) or not is_list(v) then
    arg_error(fname, col, v, 1, 1, "a list")
  end
  return v
end

-- numstr(x) -> the shortest text that reads back as x; floats keep a '.0'.
local function numstr(x)
  if mtype(x) == "integer" then return format("%d", x) end
  local s
  for p = 15, 17 do
    s = format("%." .. p .. "g", x)
    if tonumber(s) == x then break end
  end
  if not find(s, "[.eEn]") then s = s .. ".0" end
  return s
end

-- parse_decimal(s) -> number, or nil when s is not a plain decimal number
-- (optional sign, digits, optional fraction and exponent; spaces around).
local function parse_decimal(s)
  local t = match(s, "^[ \t\r\n]*(.-)[ \t\r\n]*$")
  local mant = match(t, "^(.-)[eE][-+]?%d+$") or t
  if not (match(mant, "^[-+]?%d+%.?%d*$") or match(mant, "^[-+]?%.%d+$")) then
    return nil
  end
  return tonumber(t)
end

-- minmax(fname, col, better, ...) -> the extreme of the arguments, or of
-- the one list argument.
local function minmax(fname, col, better, ...)
  local n = select("#", ...)
  local vals = {...}
  local first = vals[1]
  local from_list = false
  local function bad(v, i, expected)
    if from_list then
      type_error(col, format("cannot apply %s() to a list holding %s", fname, typename(v)),
                 expected)
    end
    arg_error(fname, col, v, i, n, expected)
  end
  if n == 1 and type(first) == "table" and not rawequal(first, null) then
    vals = need_list(fname, col, first)
    if vals[1] == nil then
      raise("value", col, fname .. "() of an empty list", "a non-empty list")
    end
    n, from_list = #vals, true
  end
  local best = vals[1]
  local tb = type(best)
  if tb ~= "number" and tb ~= "string" then bad(best, 1, "numbers or strings") end
  for i = 2, n do
    local v = vals[i]
    if type(v) ~= tb then bad(v, i, format("only %ss, like the first one", tb)) end
    if better(v, best) then best = v end
  end
  return best
end

local BUILTINS = {}

function BUILTINS.abs(col, x)
  need_number("abs", col, x)
  if x == mininteger then overflow(col, "abs") end
  return x < 0 and -x or x
end

function BUILTINS.min(col, ...)
  return minmax("min", col, ORDER["<"], ...)
end

function BUILTINS.max(col, ...)
  return minmax("max", col, ORDER[">"], ...)
end

-- round_int(n, k) -> n (an integer >= 0) rounded to a multiple of 10^k,
-- half away from zero; nil when the result does not fit.
local function round_int(n, k)
  if k > 18 then
    if n >= 5000000000000000000 then return nil end
    return 0
  end
  local m = 1
  for _ = 1, k do m = m * 10 end
  local q, rest = n // m, n % m
  if 2 * rest >= m then q = q + 1 end
  if q > maxinteger // m then return nil end
  return q * m
end

function BUILTINS.round(col, x, digits)
  local n = digits == nil and 1 or 2
  need_number("round", col, x, 1, n)
  local d = 0
  if digits ~= nil then
    need_number("round", col, digits, 2, 2)
    d = tointeger(digits)
    if not d then
      raise("value", col, format("round() digits %s is not a whole number", numstr(digits)),
            "a whole number of digits")
    end
  end
  if mtype(x) == "integer" then
    if d >= 0 then return x end
    if x == mininteger then overflow(col, "round") end
    local ax = x < 0 and -x or x
    local q = round_int(ax, -d)
    if not q then overflow(col, "round") end
    return x < 0 and -q or q
  end
  local ax = x < 0 and -x or x
  local r
  if d > 60 then
    r = ax -- beyond the precision of a double
  elseif d >= 0 then
    if ax * 10.0 ^ d >= EXACT_FLOAT then
      r = ax -- no digits left to drop
    else
      -- Decide on the exact decimal expansion of ax (so round(2.675, 2) is
      -- 2.67, as 2.675 is really 2.67499999...), ties away from zero.
      local text = format("%." .. (d + 25) .. "f", ax)
      local cut = #text - 25
      local k = tonumber((gsub(sub(text, 1, cut), "%.", "")))
      if byte(text, cut + 1) >= 53 then k = k + 1 end -- digit d+1 >= '5'
      r = k / 10.0 ^ d
    end
  elseif ax < 4.0e18 then
    r = round_int(floor(ax), -d)
  else
    local m = 10.0 ^ -d
    r = floor(ax / m + 0.5) * m
  end
  if x < 0 and r ~= 0 then r = -r end
  if d <= 0 then return tointeger(r) or r end
  return r + 0.0
end

function BUILTINS.floor(col, x)
  need_number("floor", col, x)
  return floor(x)
end

function BUILTINS.ceil(col, x)
  need_number("ceil", col, x)
  return ceil(x)
end

function BUILTINS.len(col, x)
  local t = type(x)
  if t == "string" then return utf8len(x) or #x end
  if t == "table" and not rawequal(x, null) then
    if is_list(x) then return #x end
    local n = 0
    for _ in next, x do n = n + 1 end
    return n
  end
  arg_error("len", col, x, 1, 1, "a string, a list or an object")
end

function BUILTINS.str(col, x)
  local t = type(x)
  if t == "string" then return x end
  if t == "number" then return numstr(x) end
  if t == "boolean" then return x and "true" or "false" end
  if rawequal(x, null) then return "null" end
  arg_error("str", col, x, 1, 1, "a number, a string, a boolean or null")
end

function BUILTINS.int(col, x)
  local v = x
  if type(x) == "string" then
    v = parse_decimal(x)
    if not v then
      raise("value", col, format("cannot convert %q to int", x), "a decimal number")
    end
  elseif type(x) ~= "number" then
    arg_error("int", col, x, 1, 1, "a number or a numeric string")
  end
  if mtype(v) == "integer" then return v end
  local r = tointeger(v >= 0 and floor(v) or ceil(v))
  if not r then
    raise("value", col, format("int() of %s is out of range", numstr(v)),
          "a number within the 64-bit integer range")
  end
  return r
end

function BUILTINS.float(col, x)
  local v = x
  if type(x) == "string" then
    v = parse_decimal(x)
    if not v then
      raise("value", col, format("cannot convert %q to float", x), "a decimal number")
    end
  elseif type(x) ~= "number" then
    arg_error("float", col, x, 1, 1, "a number or a numeric string")
  end
  return checked(v + 0.0, "float", col)
end

local function all_any(fname, col, list, want)
  need_list(fname, col, list)
  local i, v = 1, list[1]
  while v ~= nil do
    if v ~= true and v ~= false and not rawequal(v, null) then
      type_error(col, format("cannot apply %s() to a list holding %s", fname, typename(v)),
                 "a list of booleans")
    end
    if (v == true) == want then return want end
    i = i + 1
    v = list[i]
  end
  return not want
end

function BUILTINS.all(col, list) return all_any("all", col, list, false) end
function BUILTINS.any(col, list) return all_any("any", col, list, true) end

function BUILTINS.sum(col, list)
  need_list("sum", col, list)
  local total, i, v = 0, 1, list[1]
  while v ~= nil do
    if type(v) ~= "number" then
      type_error(col, format("cannot apply sum() to a list holding %s", typename(v)),
                 "a list of numbers")
    end
    total = add(total, v, col)
    i = i + 1
    v = list[i]
  end
  return total
end

function BUILTINS.pow(col, x, y)
  need_number("pow", col, x, 1, 2)
  need_number("pow", col, y, 2, 2)
  local r = x ^ y
  if r ~= r or r == huge or r == -huge then
    raise("value", col, format("pow(%s, %s) is not a finite number", numstr(x), numstr(y)),
          "a finite result")
  end
  if mtype(x) == "integer" and mtype(y) == "integer" and y >= 0
     and r > -EXACT_FLOAT and r < EXACT_FLOAT then
    return tointeger(r) or r
  end
  return r
end

function BUILTINS.sqrt(col, x)
  need_number("sqrt", col, x)
  if x < 0 then
    raise("value", col, format("sqrt() of negative number %s", numstr(x)), "a number >= 0")
  end
  return msqrt(x)
end

BUILTIN_ARITY = {abs = {1, 1}, min = {1, huge}, max = {1, huge}, round = {1, 2},
                 floor = {1, 1}, ceil = {1, 1}, len = {1, 1}, str = {1, 1},
                 int = {1, 1}, float = {1, 1}, all = {1, 1}, any = {1, 1},
                 sum = {1, 1}, pow = {2, 2}, sqrt = {1, 1}}

-- M.builtins: the sorted names of the built-in functions.
M.builtins = {}
for k in pairs(BUILTIN_ARITY) do M.builtins[#M.builtins + 1] = k end
sort(M.builtins)

-- host_result(name, col, ok, r) -> r checked as a language value.
local function host_result(name, col, ok, r)
  if not ok then
    if M.is_error(r) then error(r, 0) end
    local e = new_error("host", col, format("function '%s' failed: %s", name, tostring(r)),
                        nil)
    e.cause = r
    error(e, 0)
  end
  if r == nil then return null end
  local t = type(r)
  if t == "number" then return checked(r, name .. "()", col) end
  if t == "string" or t == "boolean" or t == "table" or rawequal(r, null) then return r end
  raise("host", col, format("function '%s' returned an unsupported %s", name, t),
        "a number, a string, a boolean, null, a list or an object")
end

-- ======================================================================
-- Code generation: AST -> closures taking the scope
-- ======================================================================

local RESERVED = {uow_id = true, parent_id = true, status = true, child_count = true,
                  finished_child_count = true}

local function unknown_name(col, path, why)
  raise("name", col, format("unknown name '%s'%s", path, why or ""),
        "a token field or an attribute")
end

-- lookup(scope, name) -> value of a one-segment name, or nil.
local function lookup(scope, name)
  if RESERVED[name] then
    local f = scope.fields
    if f then
      local v = f[name]
      if v ~= nil then return v end
    end
  end
  local a = scope.attrs
  if a then return a[name] end
  return nil
end

local function gen_name(n)
  local path, segs, col = n.path, n.segs, n.col
  if #segs == 1 then
    if RESERVED[path] then
      return function(s)
        local v = lookup(s, path)
        if v == nil then unknown_name(col, path) end
        return v
      end
    end
    return function(s)
      local a = s.attrs
      if a then
        local v = a[path]
        if v ~= nil then return v end
      end
      return unknown_name(col, path)
    end
  end
  local first, nsegs = segs[1], #segs
  return function(s)
    local a = s.attrs
    local v = a and a[path]
    if v ~= nil then return v end
    v = lookup(s, first)
    if v == nil then unknown_name(col, path) end
    for i = 2, nsegs do
      if type(v) ~= "table" or rawequal(v, null) or is_list(v) and next(v) ~= nil then
        unknown_name(col, path, format(" ('%s' is %s, not an object)",
                                       concat(segs, ".", 1, i - 1), a_typename(v)))
      end
      local nv = v[segs[i]]
      if nv == nil then unknown_name(col, path) end
      v = nv
    end
    return v
  end
end

-- const_value(n) -> true, value when n is a literal or a list of literals
-- (null excluded: its value may change with set_null).
local function const_value(n)
  if n.k == "lit" then return true, n.v end
  if n.k == "list" then
    local t = {}
    for i, item in ipairs(n.items) do
      local ok, v = const_value(item)
      if not ok then return false end
      t[i] = v
    end
    return true, t
  end
  return false
end

local gen

local function gen_order(n)
  local ops, cols = n.ops, n.cols
  if #ops == 1 then
    local op, col = ops[1], cols[1]
    local f, A = ORDER[op], gen(n.items[1])
    local rhs = n.items[2]
    if rhs.k == "lit" and type(rhs.v) ~= "boolean" then
      -- The hot path of guardians: `amount > 1000`.
      local c, tc = rhs.v, type(rhs.v)
      if op == ">" then
        return function(s)
          local x = A(s)
          if type(x) == tc then return x > c end
          return order_error(op, x, c, col)
        end
      elseif op == ">=" then
        return function(s)
          local x = A(s)
          if type(x) == tc then return x >= c end
          return order_error(op, x, c, col)
        end
      elseif op == "<" then
        return function(s)
          local x = A(s)
          if type(x) == tc then return x < c end
          return order_error(op, x, c, col)
        end
      else
        return function(s)
          local x = A(s)
          if type(x) == tc then return x <= c end
          return order_error(op, x, c, col)
        end
      end
    end
    local B = gen(rhs)
    return function(s)
      local x, y = A(s), B(s)
      local tx = type(x)
      if tx == type(y) and (tx == "number" or tx == "string") then return f(x, y) end
      return order_error(op, x, y, col)
    end
  end
  local fs, fns = {}, {}
  for i, item in ipairs(n.items) do fs[i] = gen(item) end
  for i, op in ipairs(ops) do fns[i] = ORDER[op] end
  local nops = #ops
  return function(s)
    local x = fs[1](s)
    for i = 1, nops do
      local y = fs[i + 1](s)
      local tx = type(x)
      if not (tx == type(y) and (tx == "number" or tx == "string")) then
        order_error(ops[i], x, y, cols[i])
      end
      if not fns[i](x, y) then return false end
      x = y
    end
    return true
  end
end

local function gen_eq(n)
  local neg, col = n.op == "!=", n.col
  local a, b = n.a, n.b
  if (a.k == "lit" or a.k == "null") and b.k ~= "lit" then a, b = b, a end
  local A = gen(a)
  if b.k == "lit" then
    -- A scalar constant: Lua's == is the language's == (no metamethods run
    -- when the types differ, and 1 == 1.0).
    local c = b.v
    if neg then return function(s) return A(s) ~= c end end
    return function(s) return A(s) == c end
  end
  if b.k == "null" then
    if neg then return function(s) return not rawequal(A(s), null) end end
    return function(s) return rawequal(A(s), null) end
  end
  local B = gen(b)
  if neg then return function(s) return not equal(A(s), B(s), col) end end
  return function(s) return equal(A(s), B(s), col) end
end

local function gen_in(n)
  local neg, opname, col = n.neg, n.opname, n.col
  local A = gen(n.a)
  local ok, c = const_value(n.b)
  if ok and type(c) == "table" then
    local set, scalar = {}, true
    for _, v in ipairs(c) do
      if type(v) == "table" then scalar = false break end
      set[v] = true
    end
    if scalar then
      -- A list literal of scalars: one table lookup.
      return function(s)
        local x = A(s)
        local tx = type(x)
        local r = (tx == "number" or tx == "string" or tx == "boolean") and set[x] == true
        if neg then return not r end
        return r
      end
    end
  end
  local B = gen(n.b)
  if neg then return function(s) return not member(A(s), B(s), opname, col) end end
  return function(s) return member(A(s), B(s), opname, col) end
end

local function gen_call(n)
  local name, col = n.name, n.col
  local args = {}
  for i, a in ipairs(n.args) do args[i] = gen(a) end
  local nargs = #args
  if n.host then
    -- Looked up at each call, so re-registering a name (M.register) reaches
    -- expressions compiled before.
    local H = n.host
    local function fn(...)
      local f = H[name]
      if type(f) ~= "function" then error("it is no longer registered", 0) end
      return f(...)
    end
    if nargs == 0 then
      return function() return host_result(name, col, pcall(fn)) end
    elseif nargs == 1 then
      local A = args[1]
      return function(s) return host_result(name, col, pcall(fn, A(s))) end
    end
    return function(s)
      local vals = {}
      for i = 1, nargs do vals[i] = args[i](s) end
      return host_result(name, col, pcall(fn, unpack(vals, 1, nargs)))
    end
  end
  local fn = BUILTINS[name]
  if nargs == 1 then
    local A = args[1]
    return function(s) return fn(col, A(s)) end
  elseif nargs == 2 then
    local A, B = args[1], args[2]
    return function(s) return fn(col, A(s), B(s)) end
  end
  return function(s)
    local vals = {}
    for i = 1, nargs do vals[i] = args[i](s) end
    return fn(col, unpack(vals, 1, nargs))
  end
end

local GEN = {}

function GEN.lit(n)
  local v = n.v
  return function() return v end
end

function GEN.null()
  return function() return null end
end

function GEN.list(n)
  local ok, c = const_value(n)
  if ok then return function() return c end end
  local fs = {}
  for i, item in ipairs(n.items) do fs[i] = gen(item) end
  local count = #fs
  return function(s)
    local t = {}
    for i = 1, count do t[i] = fs[i](s) end
    return t
  end
end

GEN.name = gen_name
GEN.call = gen_call
GEN.order = gen_order
GEN.eq = gen_eq
GEN["in"] = gen_in

function GEN.neg(n)
  local A, col = gen(n.e), n.col
  return function(s)
    local x = A(s)
    local t = mtype(x)
    if t == "integer" then
      if x == mininteger then overflow(col, "-") end
      return -x
    elseif t == "float" then
      return -x
    end
    return arith_error(col, "-", x)
  end
end

function GEN.arith(n)
  local f, col = ARITH[n.op], n.col
  local A, B = gen(n.a), gen(n.b)
  return function(s) return f(A(s), B(s), col) end
end

GEN["not"] = function(n)
  local A, opname, col = gen(n.e), n.opname, n.col
  return function(s)
    local x = A(s)
    if x == true then return false end
    if x == false then return true end
    return not truth(x, opname, col)
  end
end

GEN["and"] = function(n)
  local A, B, opname, col = gen(n.a), gen(n.b), n.opname, n.col
  return function(s)
    local x = A(s)
    if x == false or (x ~= true and not truth(x, opname, col)) then return false end
    local y = B(s)
    if y == true or y == false then return y end
    return truth(y, opname, col)
  end
end

GEN["or"] = function(n)
  local A, B, opname, col = gen(n.a), gen(n.b), n.opname, n.col
  return function(s)
    local x = A(s)
    if x == true or (x ~= false and truth(x, opname, col)) then return true end
    local y = B(s)
    if y == true or y == false then return y end
    return truth(y, opname, col)
  end
end

gen = function(n) return GEN[n.k](n) end

-- ======================================================================
-- Public API
-- ======================================================================

local function scope_error(what)
  raise("scope", 1, what, "a scope {fields = table?, attrs = table?}")
end

-- The host functions registered on this state (M.register): name ->
-- function. Every compile without opts.functions sees them. One Lua state
-- belongs to one engine handle, so these are that handle's functions.
local registered = {}

-- host_name_error(name) -> nil when name may name a host function, else
-- the reason (not a name, a keyword, or a built-in's name).
local function host_name_error(name)
  if type(name) ~= "string" or not match(name, "^[A-Za-z_][A-Za-z0-9_]*$") or KEYWORDS[name] then
    return "host function name " .. format("%q", tostring(name)) .. " is not a valid name"
  end
  if BUILTIN_ARITY[name] then
    return "host function '" .. name .. "' would shadow a built-in"
  end
  return nil
end

local function check_host(opts)
  if opts == nil or (type(opts) == "table" and opts.functions == nil) then
    if next(registered) == nil then return nil end
    return registered
  end
  if type(opts) ~= "table" then
    error("expr.compile: opts must be a table, got " .. type(opts), 3)
  end
  local fns = opts.functions
  if type(fns) ~= "table" then
    error("expr.compile: opts.functions must be a table, got " .. type(fns), 3)
  end
  for k, v in pairs(fns) do
    local why = host_name_error(k)
    if why then error("expr.compile: " .. why, 3) end
    if type(v) ~= "function" then
      error("expr.compile: host function '" .. k .. "' is a " .. type(v) .. ", not a function", 3)
    end
  end
  return fns
end

-- build(src, host) -> compiled | nil, error object.
local function build(src, host)
  if #src > MAX_SOURCE then
    return nil, new_error("syntax", 1, format("expression too long (%d bytes)", #src),
                          format("at most %d bytes", MAX_SOURCE))
  end
  local ok, root, names, funcs = pcall(parse, src, host)
  if not ok then
    if M.is_error(root) then
      root.source = src
      return nil, root
    end
    error(root, 0)
  end
  local body = gen(root)

  local function eval(scope)
    if type(scope) ~= "table" then
      scope_error("the scope is a " .. type(scope) .. ", not a table")
    end
    local a, f = scope.attrs, scope.fields
    if a ~= nil and type(a) ~= "table" then scope_error("scope.attrs is not a table") end
    if f ~= nil and type(f) ~= "table" then scope_error("scope.fields is not a table") end
    return body(scope)
  end

  local function test(scope)
    local v = eval(scope)
    if v == true then return true end
    if v == false or rawequal(v, null) then return false end
    raise("type", 1, format("the condition is %s, not a boolean", a_typename(v)),
          "a boolean or null")
  end

  return {source = src, eval = eval, test = test, names = names, functions = funcs}
end

-- M.compile(src [, opts]) -> compiled | nil, message
-- Compile one expression. opts.functions maps extra (host) function names
-- to Lua functions; they may not shadow built-ins. Without opts.functions
-- the functions registered with M.register are the host functions (later
-- registrations reach the compiled expression by name). compiled is
-- {source, eval(scope) -> value, test(scope) -> boolean, names = {paths},
-- functions = {names}}. A bad expression returns nil and the message
-- "expression error at column N: <what>; expected <x>". Misuse (src not a
-- string, malformed opts) raises.
function M.compile(src, opts)
  if type(src) ~= "string" then
    error("expr.compile: source must be a string, got " .. type(src), 2)
  end
  local host = check_host(opts)
  local compiled, err = build(src, host)
  if not compiled then return nil, err.message end
  return compiled
end

-- Compiled expressions by source, for M.eval; weak values so unused ones go.
local cache = setmetatable({}, {__mode = "v"})

local function cached(src)
  local c = cache[src]
  if c then return c end
  if type(src) ~= "string" then
    error("expr.eval: source must be a string, got " .. type(src), 3)
  end
  local err
  c, err = build(src, check_host(nil))
  if not c then error(err, 0) end
  cache[src] = c
  return c
end

-- M.eval(src, scope) -> value. Compile (cached by source) and evaluate.
-- Raises an expression error object on a compile or evaluation error.
function M.eval(src, scope)
  return cached(src).eval(scope)
end

-- M.test(src, scope) -> boolean. Like M.eval, but the result must be a
-- boolean or null (null is false); anything else is a type error.
function M.test(src, scope)
  return cached(src).test(scope)
end

-- M.generation: a counter M.register increases, so caches of compiled
-- conditions (lua/judge.lua) know to compile again: an expression that
-- failed with "unknown function" may compile now.
M.generation = 0

-- M.register(name, fn) -> true | nil, message. Make fn(...) -> value
-- callable as name(...) by every expression compiled on this state
-- without opts.functions (conditions, M.eval, validation); registering a
-- name again replaces its function, also in expressions compiled before.
-- The message says why a name is refused (not an identifier, a keyword,
-- a built-in's name). A non-function fn raises. The engine registers the
-- functions hosts give chm_register_function (engine/src/exprfn.c).
function M.register(name, fn)
  if type(fn) ~= "function" then
    error("expr.register: expected a function, got " .. type(fn), 2)
  end
  local why = host_name_error(name)
  if why then return nil, why end
  registered[name] = fn
  M.generation = M.generation + 1
  return true
end

-- M.registered() -> the sorted names of the registered host functions.
function M.registered()
  local t = {}
  for k in pairs(registered) do t[#t + 1] = k end
  sort(t)
  return t
end

-- M.set_null(v): use v as the null value (the engine's json.null). Call it
-- before compiling: it empties the M.eval cache, and the `null` literal of
-- every expression reads the current value.
function M.set_null(v)
  if v == nil then error("expr.set_null: the null value must not be nil", 2) end
  null = v
  M.null = v
  cache = setmetatable({}, {__mode = "v"})
end

-- M.typename(v) -> "number", "string", "boolean", "null", "list", "object"
-- or "unsupported value (<lua type>)": the language's name of v's type.
M.typename = typename

-- Deliberately not done: string concatenation (use host functions), regular
-- expressions, indexing lists, method calls, lambdas, assignment, a `//`
-- operator, hexadecimal literals, implicit conversions of any kind.

return M
