-- examples/demo.lua — the README's first command (`make demo`): runs seed
-- 004's WF-FIN-001 on a few thousand generated invoices through the Lua
-- module. Automated steps run in the engine (`run`); the two human roles
-- are played by this script: the finance manager approves PO mismatches
-- within 20 % and rejects the rest, and the AP specialist (the Ate's
-- physician) closes what failed. Prints a progress bar on a terminal (plain
-- lines otherwise), then a summary — tokens per final state, per route, per
-- role, moves per second — and writes a DOT picture of the workflow with
-- token counts on each interaction (SVG too when Graphviz is installed).
--
-- usage: lua5.4 examples/demo.lua OUTDIR [INVOICES]
local chm = require("chameleon")

local out = assert(arg[1], "usage: demo.lua OUTDIR [INVOICES]")
local N = tonumber(arg[2] or "") or 3000
local TTY = os.getenv("DEMO_TTY") == "1"

local function die(msg, code) io.stderr:write("demo: ", tostring(msg), " (", tostring(code), ")\n") os.exit(1) end
local function ok(v, msg, code) if v == nil then die(msg, code) end return v end

-- ---- stores ---------------------------------------------------------------
local meta = ok(chm.open_meta(out .. "/meta.db"))
ok(meta:import("workflows/wf_fin_001.lua"))
ok(meta:instantiate("WF-FIN-001", out .. "/fin.db", { name = "demo-invoices" }))
meta:close()
local inst = ok(chm.open_instance(out .. "/fin.db"))

-- ---- invoices -------------------------------------------------------------
-- 70 % match their PO within 5 %, 20 % are off by 8-40 %, 5 % have no PO
-- amount (F-02's on_error path), 5 % carry an unreadable document.
math.randomseed(4711)
local kinds = {}
for i = 1, N do
  local po = math.random(100, 20000)
  local r = math.random()
  local kind, amount, attrs
  if r < 0.70 then
    kind, amount = "match", po * (1 + (math.random() - 0.5) * 0.08)
  elseif r < 0.90 then
    kind, amount = "mismatch", po * (1 + (math.random(8, 40) / 100) * (math.random(2) == 1 and 1 or -1))
  elseif r < 0.95 then
    kind, amount = "no-po", po
  else
    kind = "unreadable"
  end
  if kind == "unreadable" then
    attrs = { document = "scanned image, no text", po_amount = po }
  else
    attrs = { document = string.format("Vendor: V-%03d Amount: %.2f PO: PO-%05d", i % 97, amount, i),
              po_amount = kind ~= "no-po" and po or nil }
  end
  kinds[kind] = (kinds[kind] or 0) + 1
  ok(inst:genesis(attrs, { actor = "ap-specialist" }))
end

-- ---- progress -------------------------------------------------------------
local function finished()
  local rows = ok(inst:query([[SELECT count(*) AS n FROM UnitsOfWork
                               WHERE status IN ('FINALIZED', 'ARCHIVED')]]))
  return rows[1].n
end

local last_line = -1
local function progress(done)
  if TTY then
    local width = 40
    local fill = math.floor(width * done / N)
    io.write(string.format("\r  [%s%s] %5d/%d invoices finished", string.rep("#", fill),
      string.rep(".", width - fill), done, N))
    io.flush()
  else
    local step = math.floor(done * 10 / N)
    if step ~= last_line then
      last_line = step
      print(string.format("  %5d/%d invoices finished", done, N))
    end
  end
end

-- ---- the humans -----------------------------------------------------------
local function manager()
  local n = 0
  while true do
    local t, _, code = inst:checkout("finance-manager", "FA-M-001")
    if not t then
      if code ~= "NOTFOUND" then die("manager checkout failed", code) end
      return n
    end
    local a = t.attributes
    local decision, why
    if type(a.po_amount) ~= "number" then
      decision = a.amount < 1000 and "approve" or "reject"
      why = "no PO to match; small invoices are approved without one"
    else
      local variance = math.abs(a.amount - a.po_amount) / a.po_amount
      decision = variance <= 0.20 and "approve" or "reject"
      why = string.format("variance %.1f %% %s the 20 %% limit", variance * 100,
        decision == "approve" and "within" or "beyond")
    end
    ok(inst:submit(t.uow_id, "finance-manager", t.version, {
      set = { manager_decision = decision }, reasoning = why,
    }))
    n = n + 1
  end
end

local function physician()
  local n = 0
  while true do
    local t, _, code = inst:checkout("ap-specialist", "physician")
    if not t then
      if code ~= "NOTFOUND" then die("physician checkout failed", code) end
      return n
    end
    ok(inst:submit(t.uow_id, "ap-specialist", t.version, {
      give_up = true, reasoning = "closed by AP: " .. tostring(t.failure_reason or "failed"),
    }))
    n = n + 1
  end
end

local clock0 = os.clock()
local start = chm.clock_now()
local steps = 0
repeat
  local r = ok(inst:run({ batch = 100, max_steps = 500 }))
  steps = steps + r.steps
  local humans = manager() + physician()
  progress(finished())
until r.steps == 0 and humans == 0
if TTY then io.write("\n") end
local elapsed = math.max((chm.clock_now() - start) / 1000, 0.001)
local cpu = os.clock() - clock0

-- ---- summary --------------------------------------------------------------
local function rows(sql) return ok(inst:query(sql)) end
print()
print(string.format("WF-FIN-001 on %d generated invoices: %d match, %d mismatch, %d without PO amount, %d unreadable",
  N, kinds.match or 0, kinds.mismatch or 0, kinds["no-po"] or 0, kinds.unreadable or 0))
print("\nTokens per final state")
for _, r in ipairs(rows("SELECT status, count(*) AS n FROM UnitsOfWork GROUP BY status ORDER BY n DESC")) do
  print(string.format("  %-12s %6d", r.status, r.n))
end
print("\nTokens per route (roles that submitted, in order)")
for _, r in ipairs(rows([[
    SELECT route, count(*) AS n FROM (
      SELECT l.uow_id, group_concat(r.name, ' > ') AS route FROM (
        SELECT uow_id, role_id FROM Interaction_Logs
        WHERE event IN ('SUBMIT', 'GIVE_UP') ORDER BY log_id) l
      JOIN Local_Roles r ON r.role_id = l.role_id GROUP BY l.uow_id)
    GROUP BY route ORDER BY n DESC]])) do
  print(string.format("  %6d  %s", r.n, r.route))
end
print("\nWork per role (checkouts)")
for _, r in ipairs(rows([[
    SELECT r.name, r.role_type, count(*) AS n FROM Interaction_Logs l
    JOIN Local_Roles r ON r.role_id = l.role_id
    WHERE l.event = 'CHECKOUT' GROUP BY r.role_id ORDER BY min(r.position)]])) do
  print(string.format("  %-10s %-8s %6d", r.name, r.role_type, r.n))
end
local moves = rows([[SELECT count(*) AS n FROM Interaction_Logs
                     WHERE from_status IS NOT to_status]])[1].n
print(string.format("\n%d moves in %.2f s wall (%.2f s CPU): %.0f moves per second",
  moves, elapsed, cpu, moves / elapsed))
local v = ok(inst:verify())
print(string.format("audit log: %d rows, hash chain %s", v.rows, v.ok and "verified" or "BROKEN"))

-- ---- picture --------------------------------------------------------------
local dot = ok(inst:dot())
local f = assert(io.open(out .. "/wf_fin_001.dot", "w"))
f:write(dot)
f:close()
print("picture: " .. out .. "/wf_fin_001.dot")
inst:close()
