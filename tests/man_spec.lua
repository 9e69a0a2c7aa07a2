-- tests/man_spec.lua — keeps the manual page engine/chameleon.1 in step
-- with the binary: every command `chameleon --help` lists has an entry in
-- COMMANDS or TOKEN COMMANDS (and no entry names a command that does not
-- exist), every long option of a command's --help is in its entry, and the
-- ENVIRONMENT section names every variable engine/cli/*.c reads with
-- getenv (listed from the sources, so the list cannot go stale). The roff
-- text is parsed here; neither man nor groff is needed.

local BIN = os.getenv("CHAMELEON_BIN") or "./build/chameleon"
local PAGE = "engine/chameleon.1"

local function slurp(path)
  local f = assert(io.open(path))
  local s = f:read("a")
  f:close()
  return s
end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local s = p:read("a")
  p:close()
  return s
end

-- plain(s) -> roff text without font escapes, with \- as -
local function plain(s)
  return (s:gsub("\\f[BIRP]", ""):gsub("\\%-", "-"):gsub("\\%(em", "--"))
end

-- args(rest) -> the arguments of a macro line: "quoted" (with "" for a
-- quote) or blank-separated words
local function args(rest)
  local out, i = {}, 1
  while i <= #rest do
    local c = rest:sub(i, i)
    if c == " " or c == "\t" then
      i = i + 1
    elseif c == '"' then
      local buf, j = {}, i + 1
      while j <= #rest do
        local d = rest:sub(j, j)
        if d == '"' and rest:sub(j + 1, j + 1) == '"' then
          buf[#buf + 1] = '"'
          j = j + 2
        elseif d == '"' then
          j = j + 1
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = table.concat(buf)
      i = j
    else
      local j = rest:find("[ \t]", i) or #rest + 1
      out[#out + 1] = rest:sub(i, j - 1)
      i = j
    end
  end
  return out
end

-- bold(line) -> the bold arguments of a .B/.BR/.RB/.BI/.IB line, or {}
local function bold(line)
  local macro, rest = line:match("^%.(%u%u?)%s*(.*)$")
  local first = { B = 1, BR = 1, BI = 1, RB = 2, IB = 2 }
  if not macro or not first[macro] then return {} end
  local a, out = args(rest), {}
  for k = first[macro], #a, (macro == "B" and 1 or 2) do out[#out + 1] = plain(a[k]) end
  return out
end

-- parse(text) -> { [section] = { { tag = line, body = text }, ... } }:
-- the tagged paragraphs (.TP) of every section
local function parse(text)
  local sections, section, entry, want_tag = {}, nil, nil, false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    local sh = line:match('^%.SH%s+"?([^"]*)"?$')
    if sh then
      section = sh
      sections[section] = sections[section] or {}
      entry, want_tag = nil, false
    elseif line == ".TP" then
      want_tag = section ~= nil
    elseif want_tag then
      entry = { tag = line, body = plain(line) .. "\n" }
      table.insert(sections[section], entry)
      want_tag = false
    elseif entry then
      entry.body = entry.body .. plain(line) .. "\n"
    end
  end
  return sections
end

-- commands() -> the command names of `chameleon --help`, in order
local function commands()
  local help, names, inside = run(BIN .. " --help"), {}, false
  for line in help:gmatch("([^\n]*)\n") do
    if line == "Commands:" then
      inside = true
    elseif inside and line == "" then
      break
    elseif inside then
      names[#names + 1] = assert(line:match("^  (%l[%l%-]*)  "), line)
    end
  end
  return names
end

-- options(cmd) -> the long options of `chameleon CMD --help`
local function options(cmd)
  local help, opts, inside = run(BIN .. " " .. cmd .. " --help"), {}, false
  for line in help:gmatch("([^\n]*)\n") do
    if line == "Options:" then
      inside = true
    elseif inside and line == "" then
      break
    elseif inside then
      opts[#opts + 1] = assert(line:match("^%s+%-?%a?,?%s*(%-%-[%w%-]+)"), line)
    end
  end
  return opts
end

describe("the manual page", function()
  local sections = parse(slurp(PAGE))
  local names = commands()

  -- entry_of[command] -> its paragraph in COMMANDS or TOKEN COMMANDS
  local entry_of = {}
  for _, sec in ipairs({ "COMMANDS", "TOKEN COMMANDS" }) do
    for _, e in ipairs(assert(sections[sec], PAGE .. " has no " .. sec .. " section")) do
      for _, b in ipairs(bold(e.tag)) do
        local cmd = b:match("^(%l[%l%-]*)$")
        if cmd then entry_of[cmd] = e end
      end
    end
  end

  it("reads the command list of chameleon --help", function()
    assert.is_true(#names >= 20, table.concat(names, " "))
    assert.are.equal("init", names[1])
  end)

  it("has an entry for every command", function()
    local missing = {}
    for _, n in ipairs(names) do
      if not entry_of[n] then missing[#missing + 1] = n end
    end
    assert.are.same({}, missing)
  end)

  it("has no entry for a command that does not exist", function()
    local known, stale = {}, {}
    for _, n in ipairs(names) do known[n] = true end
    for n in pairs(entry_of) do
      if not known[n] then stale[#stale + 1] = n end
    end
    assert.are.same({}, stale)
  end)

  it("names every option of a command's --help in its entry", function()
    local missing = {}
    for _, n in ipairs(names) do
      local body = entry_of[n] and entry_of[n].body or ""
      for _, o in ipairs(options(n)) do
        -- --help and --now are accepted by every command (OPTIONS section)
        if o ~= "--help" and o ~= "--now" and
            not body:find(o:gsub("%-", "%%-") .. "%f[^%w%-]") then
          missing[#missing + 1] = n .. " " .. o
        end
      end
    end
    assert.are.same({}, missing)
  end)

  it("lists the options every command accepts", function()
    local seen = {}
    for _, e in ipairs(sections.OPTIONS) do
      for _, b in ipairs(bold(e.tag)) do seen[b] = true end
    end
    assert.is_true(seen["--now"], "no --now in OPTIONS")
    assert.is_true(seen["--help"], "no --help in OPTIONS")
  end)

  it("names in ENVIRONMENT every variable the CLI reads", function()
    local vars, seen, missing = {}, {}, {}
    local src = run("cat engine/cli/*.c")
    for v in src:gmatch('getenv%("([%w_]+)"%)') do
      if not seen[v] then vars[#vars + 1] = v end
      seen[v] = true
    end
    assert.is_true(seen.CHAMELEON_META and seen.CHAMELEON_HISTORY, table.concat(vars, " "))
    local named = {}
    for _, e in ipairs(assert(sections.ENVIRONMENT, "no ENVIRONMENT section")) do
      for _, b in ipairs(bold(e.tag)) do named[b] = true end
    end
    for _, v in ipairs(vars) do
      if not named[v] then missing[#missing + 1] = v end
    end
    assert.are.same({}, missing)
  end)

  it("names the history file of the REPL in FILES", function()
    local files = {}
    for _, e in ipairs(sections.FILES) do files[#files + 1] = e.body end
    assert.truthy(table.concat(files):find("~/.chameleon_history", 1, true))
  end)
end)
