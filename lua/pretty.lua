-- lua/pretty.lua — how the REPL prints values: strings quoted, tables as
-- indented constructors with keys sorted, arrays inline when short, json
-- null as `null`, cycles marked, tokens (tables with a uow_id) headed by a
-- one-line summary. Trusted module; used by lua/repl.lua.
local M = {}

local null = chm.json.null

local function key_repr(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  return "[" .. (type(k) == "string" and string.format("%q", k) or tostring(k)) .. "]"
end

local function scalar(v)
  if v == null then return "null" end
  if type(v) == "string" then return string.format("%q", v) end
  if math.type(v) == "float" and v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge then
    return string.format("%.1f", v)
  end
  return tostring(v)
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

-- render(v, indent, seen, out)
local function render(v, indent, seen, out)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  if seen[v] then
    out[#out + 1] = "<cycle>"
    return
  end
  seen[v] = true
  local pad = string.rep("  ", indent + 1)
  if is_array(v) then
    if #v == 0 then
      out[#out + 1] = "{}"
    else
      local simple = #v <= 8
      for _, x in ipairs(v) do if type(x) == "table" then simple = false end end
      if simple then
        local parts = {}
        for i, x in ipairs(v) do parts[i] = scalar(x) end
        out[#out + 1] = "{ " .. table.concat(parts, ", ") .. " }"
      else
        out[#out + 1] = "{\n"
        for _, x in ipairs(v) do
          out[#out + 1] = pad
          render(x, indent + 1, seen, out)
          out[#out + 1] = ",\n"
        end
        out[#out + 1] = string.rep("  ", indent) .. "}"
      end
    end
  else
    out[#out + 1] = "{\n"
    for _, k in ipairs(sorted_keys(v)) do
      out[#out + 1] = pad .. key_repr(k) .. " = "
      render(v[k], indent + 1, seen, out)
      out[#out + 1] = ",\n"
    end
    out[#out + 1] = string.rep("  ", indent) .. "}"
  end
  seen[v] = nil
end

-- show(v) -> text for one value; a token gets a summary line first.
function M.show(v)
  local out = {}
  if type(v) == "table" and type(v.uow_id) == "string" and type(v.status) == "string" then
    local where = v.interaction or v.current_interaction or ""
    if type(where) == "table" then where = where.name or "" end
    out[1] = string.format("-- token %s  %s%s%s\n", v.uow_id, v.status,
      where ~= "" and "  in " or "", tostring(where))
  end
  render(v, 0, {}, out)
  return table.concat(out)
end

return M
