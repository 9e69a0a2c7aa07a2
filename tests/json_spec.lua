-- tests/json_spec.lua — the JSON codec as Lua code sees it, through the
-- module: require("chameleon").json = {encode, decode, array, null} (made
-- by chm__json_open in engine/src/json.c). Exact numbers, canonical output,
-- unicode, depth limits and exact error texts; docs/json.md has the rules.
-- Owned by the json contributor. Run from the repository root:
--   busted --lua=lua5.4 --cpath="./build/lua/?.so" tests/json_spec.lua

local json = require("chameleon").json

-- Decode then encode.
local function canon(text, pretty)
  return json.encode(json.decode(text), pretty)
end

-- The message of a failing call, exactly: called through pcall directly,
-- the codec's errors carry no position prefix.
local function err_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return err
end

local function bits(x)
  return string.pack("<d", x)
end

describe("json numbers", function()
  it("keeps integers exact over the whole int64 range", function()
    for _, text in ipairs({ "9007199254740993", "-9007199254740993",
      "9223372036854775807", "-9223372036854775808", "0", "42" }) do
      local v = json.decode(text)
      assert.are.equal("integer", math.type(v))
      assert.are.equal(text, json.encode(v))
    end
    assert.are.equal(9007199254740993, json.decode("9007199254740993"))
    assert.are.equal(math.maxinteger, json.decode("9223372036854775807"))
    assert.are.equal(math.mininteger, json.decode("-9223372036854775808"))
    assert.are.equal("9223372036854775807", json.encode(math.maxinteger))
    assert.are.equal("-9223372036854775808", json.encode(math.mininteger))
  end)

  it("decodes integers beyond int64 as floats", function()
    local v = json.decode("18446744073709551616")
    assert.are.equal("float", math.type(v))
    assert.are.equal(2.0 ^ 64, v)
    assert.are.equal("1.8446744073709552e+19", json.encode(v))
    assert.are.equal("float", math.type(json.decode("9223372036854775808")))
  end)

  it("keeps floats floats: 1.0 stays 1.0", function()
    for text, out in pairs({ ["1.0"] = "1.0", ["1e2"] = "100.0",
      ["-0.0"] = "-0.0", ["1E0"] = "1.0", ["2.5"] = "2.5" }) do
      assert.are.equal("float", math.type(json.decode(text)))
      assert.are.equal(out, canon(text))
    end
    assert.are.equal("1.0", json.encode(1.0))
    assert.are.equal("9007199254740992.0", json.encode(2 ^ 53))
    assert.are.equal("1e+300", json.encode(1e300))
  end)

  it("round-trips floats bit for bit", function()
    local fixed = { 0.1, 1 / 3, 1e-300, 5e-324, 1.7976931348623157e308,
      -0.0, 0.0, 2.2250738585072014e-308, 0.1 + 0.2, math.pi, 1e21, 1e23,
      123456.789, -2.5e-8 }
    for _, x in ipairs(fixed) do
      local back = json.decode(json.encode(x))
      assert.are.equal("float", math.type(back))
      assert.are.equal(bits(x), bits(back))
    end
    assert.are.equal(-math.huge, 1 / json.decode("-0.0"))
  end)

  it("round-trips random float bit patterns", function()
    math.randomseed(20240601)
    for _ = 1, 20000 do
      local x = string.unpack("<d", string.pack("<i8", math.random(0)))
      if x == x and x ~= math.huge and x ~= -math.huge then
        local text = json.encode(x)
        local back = json.decode(text)
        assert(math.type(back) == "float", text)
        assert(bits(back) == bits(x), text)
      end
    end
  end)

  it("writes the shortest text that reads back the same", function()
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("0.30000000000000004", json.encode(0.1 + 0.2))
    assert.are.equal("0.3333333333333333", json.encode(1 / 3))
    assert.are.equal("5e-324", json.encode(5e-324))
    assert.are.equal("1.7976931348623157e+308",
      json.encode(1.7976931348623157e308))
    assert.are.equal("1e-07", json.encode(1e-7))
  end)

  it("refuses NaN and infinities", function()
    assert.are.equal("json: $: cannot encode NaN", err_of(json.encode, 0 / 0))
    assert.are.equal("json: $.x: cannot encode inf",
      err_of(json.encode, { x = math.huge }))
    assert.are.equal("json: $[1]: cannot encode -inf",
      err_of(json.encode, { -math.huge }))
    assert.are.equal("json: number out of range at byte 2",
      err_of(json.decode, "[1e400]"))
  end)
end)

describe("json canonical output", function()
  it("sorts object keys in byte order", function()
    assert.are.equal('{"":6,"B":3,"a":2,"aa":4,"b":1,"\u{e9}":5}',
      json.encode({ b = 1, a = 2, B = 3, aa = 4, ["\u{e9}"] = 5, [""] = 6 }))
    assert.are.equal('{"10":2,"9":1}', canon('{"9":1,"10":2}'))
  end)

  it("keeps [] and {} apart", function()
    assert.are.equal("[]", canon("[]"))
    assert.are.equal("{}", canon("{}"))
    assert.are.equal('{"a":[],"b":{}}', canon('{"b":{},"a":[]}'))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[]", json.encode(json.array({})))
    assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
  end)

  it("refuses a key given twice in one object, naming it and its byte", function()
    assert.are.equal('json: duplicate key "a" in an object (give each key once) at byte 8',
                     err_of(json.decode, '{"a":1,"a":2}'))
    assert.are.equal('json: duplicate key "b" in an object (give each key once) at byte 19',
                     err_of(json.decode, '{"x":{"b":1,"c":2,"b":3}}'))
    assert.are.equal('{"a":{"a":1}}', canon('{"a":{"a":1}}')) -- same key at two depths is fine
  end)

  it("keeps null", function()
    assert.are.equal("[null,1,null]", canon("[null,1,null]"))
    assert.are.equal('{"a":null}', canon('{"a":null}'))
    assert.are.equal(json.null, json.decode('{"a":null}').a)
    assert.are.equal("null", json.encode(nil))
    assert.are.equal("null", json.encode(json.null))
  end)

  it("is a fixed point: decode, encode, decode, encode", function()
    local nasty = ' {"\\u00e9t\\u00e9": [1, -1, 0, -0, 0.0, -0.0, 1E3, '
      .. '9007199254740993, 9223372036854775807, -9223372036854775808, '
      .. '9223372036854775808, 0.1, 5e-324, 1.7976931348623157e308],\n'
      .. ' "esc": "\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001F\\u00e9\\ud83d\\ude00'
      .. ' raw: \u{e9}\u{4e2d}\u{1F600}",\r\n'
      .. '\t"": {}, "empty": [], "nested": [[[[]]], {"a": {"b": null}}],'
      .. ' "dup": 2, "mixed": [1, "1", 1.0, [1], {"1": 1}]} '
    local once = canon(nasty)
    assert.are.equal(once, canon(once))
    assert.are.equal(once, canon(canon(once, true)))
    assert.are.equal('{"":{},"dup":2,"empty":[],'
      .. '"esc":"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\u{e9}\u{1F600}'
      .. ' raw: \u{e9}\u{4e2d}\u{1F600}",'
      .. '"mixed":[1,"1",1.0,[1],{"1":1}],'
      .. '"nested":[[[[]]],{"a":{"b":null}}],'
      .. '"\u{e9}t\u{e9}":[1,-1,0,0,0.0,-0.0,1000.0,9007199254740993,'
      .. '9223372036854775807,-9223372036854775808,9.223372036854776e+18,'
      .. '0.1,5e-324,1.7976931348623157e+308]}', once)
  end)

  it("pretty-prints with two spaces and ': '", function()
    assert.are.equal('{\n  "a": [\n    1,\n    {},\n    []\n  ],\n'
      .. '  "b": {\n    "c": null\n  }\n}',
      canon('{"b":{"c":null},"a":[1,{},[]]}', true))
    assert.are.equal("[]", json.encode(json.array({}), true))
    assert.are.equal("{}", json.encode({}, true))
  end)

  it("reads tables raw, ignoring metamethods", function()
    local t = setmetatable({}, { __index = function() return 1 end,
      __pairs = error })
    assert.are.equal("{}", json.encode(t))
    local shared = { 1 }
    assert.are.equal('{"a":[1],"b":[1]}',
      json.encode({ a = shared, b = shared }))
  end)
end)

describe("json unicode", function()
  it("decodes escapes to UTF-8 and passes UTF-8 through", function()
    assert.are.equal("\u{e9}", json.decode('"\\u00e9"'))
    assert.are.equal("\u{e9}", json.decode('"\u{e9}"'))
    assert.are.equal("\u{4e2d}\u{6587}", json.decode('"\\u4e2d\\u6587"'))
    assert.are.equal("\u{1F600}", json.decode('"\\ud83d\\ude00"'))
    assert.are.equal("\u{1F600}", json.decode('"\u{1F600}"'))
    assert.are.equal('"\u{e9}\u{4e2d}\u{1F600}"',
      json.encode("\u{e9}\u{4e2d}\u{1F600}"))
    assert.are.equal('"a\\u0000b"', json.encode("a\0b"))
    assert.are.equal('"\\u001f\\n"', json.encode("\31\n"))
  end)

  it("rejects lone surrogates and invalid UTF-8", function()
    assert.are.equal("json: lone surrogate \\uD800 at byte 2",
      err_of(json.decode, '"\\ud800"'))
    assert.are.equal("json: lone surrogate \\uDC00 at byte 2",
      err_of(json.decode, '"\\udc00"'))
    assert.are.equal("json: invalid UTF-8 at byte 5",
      err_of(json.decode, '"ok \255"'))
    assert.are.equal("json: invalid UTF-8 at byte 2",
      err_of(json.decode, '"\xED\xA0\x80"'))
    assert.are.equal("json: $.s: invalid UTF-8 at byte 3 of the string",
      err_of(json.encode, { s = "ok\255" }))
  end)
end)

describe("json depth", function()
  local function brackets(n)
    return string.rep("[", n) .. string.rep("]", n)
  end
  local function nested(n)
    local t = {}
    for _ = 2, n do t = { t } end
    return t
  end

  it("accepts 1000 levels and refuses 1001", function()
    assert.are.equal(brackets(999), canon(brackets(999)))
    assert.are.equal(brackets(1000), canon(brackets(1000)))
    assert.are.equal("json: nesting deeper than 1000 at byte 1001",
      err_of(json.decode, brackets(1001)))
    assert.are.equal(2000, #json.encode(nested(1000)))
    local err = err_of(json.encode, nested(1001))
    assert.truthy(err:find("^json: %$%[1%]%[1%]"))
    assert.truthy(err:find("...: nesting deeper than 1000", 1, true))
  end)

  it("refuses cycles", function()
    local t = {}
    t.a = { b = t }
    assert.are.equal("json: $.a.b: table contains itself (cycle)",
      err_of(json.encode, t))
  end)
end)

describe("json errors", function()
  local decode_errors = {
    { "", "json: unexpected end of input at byte 1" },
    { "[1,2] x",
      "json: unexpected character 'x' at byte 7 (expected end of input)" },
    { "[1 2]",
      "json: unexpected character '2' at byte 4 (expected ',' or ']')" },
    { '{"a" 1}', "json: unexpected character '1' at byte 6 (expected ':')" },
    { "{1:2}",
      "json: unexpected character '1' at byte 2 (expected a string key)" },
    { "[1,]", "json: unexpected character ']' at byte 4" },
    { "01", "json: invalid number (leading zero) at byte 1" },
    { "1.", "json: invalid number at byte 1" },
    { '"abc', "json: unterminated string at byte 1" },
    { '"a\nb"',
      "json: unescaped control character 0x0a in a string at byte 3" },
    { '"\\x"', "json: invalid escape '\\x' at byte 2" },
    { '"\\u12G4"', "json: invalid \\u escape at byte 2" },
    { "tru", "json: unexpected end of input at byte 4" },
    { "\xEF\xBB\xBF{}", "json: unexpected byte order mark (U+FEFF) at byte 1" },
    { "[\u{e9}]", "json: unexpected character '\u{e9}' at byte 2" },
  }
  for _, case in ipairs(decode_errors) do
    it(("decode reports %q"):format(case[1]), function()
      assert.are.equal(case[2], err_of(json.decode, case[1]))
    end)
  end

  it("encode names the culprit by its path", function()
    assert.are.equal("json: $.f: cannot encode a value of type 'function'",
      err_of(json.encode, { f = print }))
    assert.are.equal("json: $.a[3].x: cannot encode a value of type 'thread'",
      err_of(json.encode, { a = { 1, 2, { x = coroutine.create(print) } } }))
    assert.are.equal(
      "json: $: object key of type 'boolean' (object keys must be strings)",
      err_of(json.encode, { [true] = 1 }))
    assert.are.equal(
      "json: $: object key of type 'number' (object keys must be strings)",
      err_of(json.encode, { [1] = 1, [3] = 3 }))
    assert.are.equal("json: $: array has a hole at index 2 (use json.null)",
      err_of(json.encode, json.array({ 1, nil, 3 })))
    assert.are.equal("json: $: array has a non-index key of type 'string'",
      err_of(json.encode, json.array({ x = 1 })))
    assert.are.equal('json: $["odd key"][1]: cannot encode a value of type '
      .. "'function'", err_of(json.encode, { ["odd key"] = { print } }))
  end)

  it("raises with the caller's position, like error()", function()
    local ok, err = pcall(function() return json.decode("[1,") end)
    assert.is_false(ok)
    assert.truthy(err:find("json_spec.lua:%d+: json: unexpected end of input"))
    assert.has_error(function() json.decode(5) end)
    assert.has_error(function() json.encode() end)
  end)
end)

describe("json.array and json.null", function()
  it("marks a table as an array and returns it", function()
    local t = {}
    assert.are.equal(t, json.array(t))
    assert.are.equal(t, json.array(t))
    assert.are.equal("[]", json.encode(t))
  end)

  it("tags decoded arrays, not objects", function()
    assert.are.equal("json.array", getmetatable(json.decode("[]")))
    assert.is_nil(getmetatable(json.decode("{}")))
  end)

  it("protects the shared array metatable", function()
    assert.has_error(function() setmetatable(json.decode("[]"), nil) end)
    local p = setmetatable({}, { __metatable = "mine" })
    assert.has_error(function() json.array(p) end)
  end)

  it("null is a light userdata distinct from nil", function()
    assert.are.equal("userdata", type(json.null))
    assert.are.equal(json.null, json.decode("[null]")[1])
    assert.are.equal(1, #json.decode("[null]"))
  end)
end)
