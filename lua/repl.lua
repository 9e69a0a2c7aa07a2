-- lua/repl.lua — the evaluation side of `chameleon repl`, shaped like
-- lua.c: a line is first tried as an expression (`return <line>`), then as
-- a statement; input whose only fault is an unexpected end is reported as
-- incomplete so the caller asks for another line; results are printed by
-- lua/pretty.lua. One persistent sandbox environment per handle, with the
-- engine's operations bound (repl.c) as plain functions. What print writes
-- goes to the host's sink at once when it set one (chm_*_repl_output: the
-- CLI does); otherwise it is kept in M.out until the chunk ends, and when
-- the chunk fails, printed() hands it to the caller to show before the
-- error.
local pretty = require("pretty")

local M = {}

-- Each REPL chunk may run long (a whole `run()`), but Ctrl-C interrupts it.
local LIMITS = { instructions = 1000000000000, deadline_ms = 3600000 }

local session -- the environment, created by the first eval
local names   -- sorted list of bound names, for completion

-- start(bindings) -> env: a fresh sandbox environment plus the bindings.
local function start(bindings)
  local env = chm.sandbox_env()
  names = {}
  for k, v in pairs(bindings) do
    env[k] = v
    names[#names + 1] = k
  end
  -- print writes to the REPL's output, like lua.c's print
  env.print = function(...)
    local parts = table.pack(...)
    for i = 1, parts.n do
      parts[i] = parts[i] == chm.json.null and "null" or tostring(parts[i])
    end
    local text = table.concat(parts, "\t", 1, parts.n)
    if M.write then M.write(text .. "\n") else M.out[#M.out + 1] = text end
  end
  names[#names + 1] = "print"
  table.sort(names)
  return env
end

-- incomplete(msg) -> true when a syntax error is only "unexpected <eof>".
local function incomplete(msg)
  return msg:sub(-5) == "<eof>"
end

-- eval(bindings, line [, write]) -> text | nil, msg, code
-- code "INCOMPLETE" asks for more input; "SCRIPT"/"BUDGET"/"MEMORY" are
-- failures of the chunk (the message carries its traceback). With write
-- (the host's sink, chm_*_repl_output), print hands each line to it at
-- once instead of collecting it.
function M.eval(bindings, line, write)
  if not session then session = start(bindings) end
  M.out = {}
  M.write = write
  local f = chm.load("return " .. line, "=stdin", session)
  if not f then
    local err
    f, err = chm.load(line, "=stdin", session)
    if not f then
      if incomplete(err) then return nil, err, "INCOMPLETE" end
      return nil, err, "SCRIPT"
    end
  end
  local res = table.pack(chm.run(LIMITS, f))
  if not res[1] then
    -- keep the user's frames; drop the engine's own below the chunk
    local msg = tostring(res[2])
    local cut = msg:find("\n\t%[C%]: in field 'run'")
    if cut then msg = msg:sub(1, cut - 1) end
    return nil, msg, res[3] or "SCRIPT"
  end
  for i = 2, res.n do M.out[#M.out + 1] = pretty.show(res[i]) end
  return table.concat(M.out, "\n")
end

-- printed() -> what print wrote during the last chunk ("" for nothing),
-- for the caller to show before that chunk's error.
function M.printed()
  return table.concat(M.out or {}, "\n")
end

-- names() -> sorted names bound in the session (API completion).
function M.names(bindings)
  if not session then session = start(bindings) end
  return chm.json.array(names)
end

return M
