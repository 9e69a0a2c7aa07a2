-- lua/dot.lua — renders a canonical workflow definition as a Graphviz DOT
-- digraph: roles are boxes (shaped by type), interactions are ellipses,
-- components are edges (INBOUND: interaction -> role; OUTBOUND: role ->
-- interaction) labelled with their guardians and routing. Optional token
-- counts per interaction are printed in the interaction's label.
local M = {}

local SHAPES = {
  ALPHA = "invhouse", BETA = "box", OMEGA = "house",
  EPSILON = "octagon", TAU = "doubleoctagon",
}

-- q(s) -> s as a quoted DOT string.
local function q(s)
  return '"' .. tostring(s):gsub('\\', '\\\\'):gsub('"', '\\"'):gsub("\n", "\\n") .. '"'
end

-- render(canon [, counts]) -> DOT text. counts maps interaction name ->
-- number of tokens waiting there.
function M.render(canon, counts)
  local out = {}
  local function add(s) out[#out + 1] = s end
  add("digraph " .. q(canon.name) .. " {")
  add("  rankdir=LR;")
  add('  node [fontname="Helvetica", fontsize=10];')
  add('  edge [fontname="Helvetica", fontsize=9];')
  for _, r in ipairs(canon.roles) do
    local label = r.name .. "\\n" .. r.type
    if type(r.child_workflow) == "string" then label = label .. "\\n-> " .. r.child_workflow end
    if type(r.step) == "table" then label = label .. "\\n(step)" end
    add(string.format("  %s [shape=%s, label=%s];", q("role:" .. r.name),
      SHAPES[r.type] or "box", '"' .. label:gsub('"', '\\"') .. '"'))
  end
  for _, x in ipairs(canon.interactions) do
    local label = x.name
    if counts and counts[x.name] then label = label .. "\\n[" .. counts[x.name] .. "]" end
    add(string.format('  %s [shape=ellipse, style=filled, fillcolor="#eef3ff", label="%s"];',
      q("interaction:" .. x.name), label:gsub('"', '\\"')))
  end
  local guards = {}
  for _, g in ipairs(canon.guardians) do
    local list = guards[g.component] or {}
    list[#list + 1] = g.name .. " (" .. g.type .. ")"
    guards[g.component] = list
  end
  for _, c in ipairs(canon.components) do
    local from, to = "interaction:" .. c.interaction, "role:" .. c.role
    if c.direction == "OUTBOUND" then from, to = to, from end
    local label = {}
    for _, g in ipairs(guards[c.name] or {}) do label[#label + 1] = g end
    if type(c.routing) == "table" then label[#label + 1] = "routed" end
    add(string.format("  %s -> %s [label=%s];", q(from), q(to), q(table.concat(label, "\n"))))
  end
  add("}")
  return table.concat(out, "\n") .. "\n"
end

return M
