-- lua/util.lua — small helpers shared by the trusted modules: ISO-8601
-- timestamps without `os` (which the engine's Lua state never loads),
-- JSON column values, and error formatting. Trusted code only.
local M = {}

-- iso8601(ms) -> "YYYY-MM-DDTHH:MM:SS.mmmZ" for ms since the Unix epoch
-- (civil-from-days, Howard Hinnant's algorithm).
function M.iso8601(ms)
  local secs = ms // 1000
  local days, rem = secs // 86400, secs % 86400
  local z = days + 719468
  local era = z // 146097
  local doe = z - era * 146097
  local yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
  local mp = (5 * doy + 2) // 153
  local d = doy - (153 * mp + 2) // 5 + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d,
    rem // 3600, rem % 3600 // 60, rem % 60, ms % 1000)
end

-- now_iso() -> the engine clock as ISO-8601.
function M.now_iso()
  return M.iso8601(chm.now())
end

-- jcol(v) -> JSON text for a JSON column, or nil for null/absent.
function M.jcol(v)
  if v == nil or v == chm.json.null then return nil end
  return chm.json.encode(v)
end

-- jval(text) -> decoded value of a JSON column, or json null for NULL.
function M.jval(text)
  if text == nil then return chm.json.null end
  return chm.json.decode(text)
end

-- nn(v) -> v, or nil when v is the json null.
function M.nn(v)
  if v == chm.json.null then return nil end
  return v
end

return M
