-- tests/crash_spec.lua — crash safety of `chameleon run`: the real CLI is
-- killed with SIGKILL at random moments (at least 50 times) while it
-- drives a fan-out workflow with per-move and batched commits. After every
-- kill the instance is reopened and checked: no token lost or duplicated,
-- every parent's counters match its children, the log chain verifies, no
-- ACTIVE token without a lease holder. Then an unkilled run completes the
-- work. The random sequence is seeded and printed, so a failure replays.
local chm = require("chameleon")

local BIN = os.getenv("CHAMELEON_BIN") or "./build/chameleon"
local KILLS = tonumber(os.getenv("CRASH_KILLS") or "") or 60
local BATCH_ORDERS = tonumber(os.getenv("CRASH_ORDERS") or "") or 1500
local ORDERS = 0 -- orders created so far (more are added when a run finishes early)
local SEED = tonumber(os.getenv("CRASH_SEED") or "") or os.time()

local function sh(cmd)
  local ok, _, code = os.execute(cmd)
  return ok, code
end

-- check(inst, where) -> counts table; asserts every invariant.
local function check(inst, where)
  local function q(sql) return assert(inst:query(sql)) end
  local bases = q("SELECT count(*) AS n FROM UnitsOfWork WHERE parent_id IS NULL")[1].n
  assert.are.equal(ORDERS, bases, where .. ": base tokens lost or duplicated")
  local dup = q([[SELECT count(*) AS n FROM (SELECT parent_id, json_extract(a.value, '$') AS sku
                  FROM UnitsOfWork u JOIN UOW_Attributes a ON a.uow_id = u.uow_id
                  AND a.key = 'sku' AND a.version = 1
                  WHERE u.parent_id IS NOT NULL GROUP BY parent_id, sku HAVING count(*) > 1)]])[1].n
  assert.are.equal(0, dup, where .. ": a child was created twice")
  local bad = q([[SELECT p.uow_id, p.child_count, p.finished_child_count,
                    (SELECT count(*) FROM UnitsOfWork c WHERE c.parent_id = p.uow_id) AS kids,
                    (SELECT count(*) FROM UnitsOfWork c WHERE c.parent_id = p.uow_id
                       AND c.status IN ('COMPLETED', 'REMEDIATED', 'FINALIZED')) AS done
                  FROM UnitsOfWork p WHERE p.parent_id IS NULL
                  AND (p.child_count <> (SELECT count(*) FROM UnitsOfWork c WHERE c.parent_id = p.uow_id)
                    OR p.finished_child_count <> (SELECT count(*) FROM UnitsOfWork c
                       WHERE c.parent_id = p.uow_id
                       AND c.status IN ('COMPLETED', 'REMEDIATED', 'FINALIZED')))]])
  assert.are.equal(0, #bad, where .. ": counters out of step with children"
    .. (bad[1] and (" (token " .. bad[1].uow_id .. ")") or ""))
  local orphans = q([[SELECT count(*) AS n FROM UnitsOfWork
                      WHERE status = 'ACTIVE' AND lease_holder_actor_id IS NULL]])[1].n
  assert.are.equal(0, orphans, where .. ": ACTIVE token without a lease holder")
  local report, msg = inst:verify()
  assert.truthy(report, where .. ": log chain broken: " .. tostring(msg))
  assert.is_true(report.ok, where .. ": log chain broken")
  return q([[SELECT status, count(*) AS n FROM UnitsOfWork GROUP BY status]])
end

-- add_orders(path, n): n more orders, each with 2-4 lines.
local function add_orders(path, n)
  local inst = assert(chm.open_instance(path))
  for _ = 1, n do
    local i = ORDERS + 1
    local lines = {}
    for j = 1, 2 + i % 3 do
      lines[j] = { sku = ("SKU-%d-%d"):format(i, j), qty = j, unit_price = 1.5 * j }
    end
    assert(inst:genesis({ order = i, lines = lines }))
    ORDERS = i
  end
  inst:close()
end

describe("chameleon run under SIGKILL", function()
  local dir, path

  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    path = dir .. "/fanout.db"
    local meta = assert(chm.open_meta(dir .. "/meta.db"))
    assert(meta:import("workflows/wf_fanout.lua"))
    assert(meta:instantiate("WF-FANOUT-001", path))
    meta:close()
    math.randomseed(SEED)
  end)

  teardown(function() sh("rm -rf " .. dir) end)

  it(("survives %d random kills and then completes (seed %d)"):format(KILLS, SEED), function()
    local killed, k = 0, 0
    add_orders(path, BATCH_ORDERS)
    -- Kill until KILLS runs died mid-way; whenever a run got to the end of
    -- the work before its kill, add more orders (faster machines finish
    -- sooner), so every kill lands in a long run.
    while killed < KILLS and k < KILLS * 4 do
      k = k + 1
      local ms = math.random(10, 120)
      local batch = (k % 5 == 0) and 25 or 1
      local _, code = sh(("timeout -s KILL %.3f %s run %s --batch %d >/dev/null 2>&1")
        :format(ms / 1000, BIN, path, batch))
      if code == 137 or code == 124 then
        killed = killed + 1
      else
        add_orders(path, BATCH_ORDERS // 3)
      end
      local inst = assert(chm.open_instance(path))
      check(inst, ("after run %d (%d ms, batch %d, seed %d)"):format(k, ms, batch, SEED))
      inst:close()
    end
    assert.truthy(killed >= KILLS, ("only %d of %d runs were killed mid-way"):format(killed, k))
    -- now let it finish
    local ok = sh(("%s run %s >/dev/null"):format(BIN, path))
    assert.truthy(ok, "the final run failed")
    local inst = assert(chm.open_instance(path))
    check(inst, "after the final run")
    local left = assert(inst:query([[SELECT count(*) AS n FROM UnitsOfWork
                                     WHERE status <> 'FINALIZED']]))[1].n
    assert.are.equal(0, left, "tokens not FINALIZED after the final run")
    local children = assert(inst:query(
      "SELECT count(*) AS n FROM UnitsOfWork WHERE parent_id IS NOT NULL"))[1].n
    local expected = 0
    for i = 1, ORDERS do expected = expected + 2 + i % 3 end
    assert.are.equal(expected, children)
    inst:close()
  end)
end)
