-- tests/token_module_spec.lua — the token engine through the Lua module, on
-- real instance stores built from workflows/*.lua and small inline
-- workflows: a human-in-the-loop invoice (WF-FIN-001) from genesis to
-- FINALIZED, the refusals (stale version, wrong status, wrong holder,
-- expired lease) with the texts that name the token, the run loop and a
-- recursive gateway, skills written in Lua, the hash chain before and
-- after tampering, leases and stale tokens under the virtual clock, the
-- kill switch, clarification and memory, argument misuse. Last, every
-- ```lua block of docs/lua-api.md runs, in order, as one session.
local chm = require("chameleon")

local T0 = 1800000000000 -- the virtual clock at the start of a test (2027-01-15T08:00Z)

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

local function tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p " .. p))
  return p
end

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end

-- Shell-quote one word.
local function q(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

-- fails(ok, msg, code, want_code, ...needles): an expected failure with its
-- code and message fragments (plain text).
local function fails(want_code, needles, ok, msg, code)
  assert.is_nil(ok, "expected a failure, got a result")
  assert.are.equal(want_code, code, msg)
  for _, n in ipairs(needles) do
    assert.truthy(msg:find(n, 1, true), string.format("%q does not contain %q", msg, n))
  end
end

-- events(inst, id) -> "GENESIS,CHECKOUT,..." of a token's log rows.
local function events(inst, id)
  local out = {}
  for _, r in ipairs(assert(inst:history(id))) do out[#out + 1] = r.event end
  return table.concat(out, ",")
end

local function nlog(inst)
  return assert(inst:query("SELECT count(*) AS n FROM Interaction_Logs"))[1].n
end

-- A meta-store holding the reference workflows (the KYC child before its
-- gateway) plus any inline ones: name -> DSL text.
local function new_meta(dir, inline)
  local meta = assert(chm.open_meta(dir .. "/meta.db"))
  for _, f in ipairs({ "wf_child_kyc", "wf_gateway", "wf_fin_001" }) do
    assert(meta:import("workflows/" .. f .. ".lua"))
  end
  for name, text in pairs(inline or {}) do
    write(dir .. "/" .. name .. ".lua", text)
    assert(meta:import(dir .. "/" .. name .. ".lua"))
  end
  return meta
end

-- An instance of workflow `name` in dir, opened.
local function new_instance(meta, dir, name)
  local path = dir .. "/" .. name .. ".db"
  assert(meta:instantiate(name, path, { name = name:lower() }))
  return assert(chm.open_instance(path)), path
end

-- WF-PURE: one automated step that tries every way a function could keep
-- state from one token to the next (DESIGN §6: guardian, routing and step
-- code is pure), chosen by the token's `how`.
local PURE = [[
return workflow "WF-PURE" {
  interactions = { "in", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "in" } },
    beta "keep" {
      inbound = { "in" },
      outbound = { "done" },
      step = function(token)
        local how = token.how
        if how == "global" then seen = 1
        elseif how == "rawset" then rawset(_ENV, "seen", 1)
        elseif how == "library" then string.seen = 1
        elseif how == "rawlibrary" then rawset(math, "seen", 1)
        elseif how == "load" then load("seen = 1")()
        elseif how == "insert" then table.insert(table, 1)
        elseif how == "ownenv" then
          local t = {}
          load("seen = 41", "own", "t", t)()
          return { set = { own = t.seen + 1 } }
        elseif how == "read" then
          local n = 0
          for _ in pairs(string) do n = n + 1 end
          return { set = { reads = n > 5 and rawget(string, "format") ~= nil and next(math) ~= nil
                                   and rawget(_ENV, "tostring") ~= nil } }
        elseif how == "look" then
          return { set = { saw = tostring(rawget(_ENV, "seen")) .. tostring(string.seen) ..
                                 tostring(math.seen) .. tostring(seen) } }
        end
        return { set = { done = true } }
      end,
    },
    omega "close" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "ops" { type = "HUMAN", roles = { "close", "fix", "clock" } } },
}
]]

-- Small inline workflows. WF-DESK: two human desks in a row, an ambiguity
-- lock of one checkout, a stale limit of 60 s on the inbox.
local DESK = [[
return workflow "WF-DESK" {
  description = "two human desks",
  max_interactions = 1,
  interactions = { interaction "inbox" { stale_token_limit_seconds = 60 },
                   "second", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "inbox" } },
    beta "desk" { inbound = { "inbox" }, outbound = { "second" } },
    beta "desk2" { inbound = { "second" }, outbound = { "done" } },
    omega "end" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = {
    actor "system" { type = "SYSTEM", roles = { "start", "end" } },
    actor "clerk" { type = "HUMAN", roles = { "start", "desk", "desk2", "fix", "clock" } },
    actor "temp" { type = "HUMAN", roles = { "desk" } },
  },
}
]]

-- WF-SKILL: one automated step that calls host skills, chosen by `mode`.
local SKILL = [[
return workflow "WF-SKILL" {
  description = "steps that call host skills",
  interactions = { "inbox", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "inbox" } },
    beta "enrich" {
      inbound = { "inbox" },
      outbound = { "done" },
      step = function(token, ctx)
        if token.mode == "lookup" then
          local r = ctx.skills.lookup({ customer = token.customer, n = 2 })
          return { set = { tier = r.tier, seen = r.seen }, reasoning = "asked the CRM" }
        elseif token.mode == "ping" then
          return { set = { pong = ctx.skills.ping() == nil } }
        elseif token.mode == "caught" then
          local ok, err = pcall(ctx.skills.boom, 1)
          return { set = { caught = tostring(err) } }
        else
          return { set = { out = ctx.skills[token.mode](token.arg) } }
        end
      end,
    },
    omega "end" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = {
    actor "system" { type = "SYSTEM", roles = { "start", "enrich", "end" } },
    actor "clerk" { type = "HUMAN", roles = { "fix", "clock" } },
  },
}
]]

-- ---------------------------------------------------------------------------
-- The specs
-- ---------------------------------------------------------------------------

describe("token module", function()
  local dir, meta, inst, path

  before_each(function()
    chm.clock_set_virtual(T0)
    dir = tmpdir()
    meta = new_meta(dir, { desk = DESK, skill = SKILL, pure = PURE })
    inst, path = new_instance(meta, dir, "WF-FIN-001")
  end)

  after_each(function()
    chm.clock_real()
    if inst then inst:close() end
    meta:close()
    os.execute("rm -rf " .. q(dir))
  end)

  -- An invoice whose PO does not match goes to the finance manager.
  local function mismatched_invoice()
    local id = assert(inst:genesis({ document = "Vendor: ACME Amount: 120 PO: PO-7",
                                     po_amount = 100 }, { actor = "ap-specialist" }))
    assert(inst:run())
    return id
  end

  describe("WF-FIN-001 with a human finance manager", function()
    it("goes genesis -> run -> checkout -> submit -> run -> FINALIZED", function()
      local id = assert(inst:genesis({ document = "Vendor: ACME Amount: 120 PO: PO-7",
                                       po_amount = 100 }, { actor = "ap-specialist" }))
      assert.are.equal("string", type(id))
      assert.are.equal(36, #id)
      local t = assert(inst:token(id))
      assert.are.same({ "PENDING", "invoices", 1 }, { t.status, t.interaction, t.version })

      local rep = assert(inst:run())
      assert.are.same({ steps = 3, moves = 3, failed = 0, commits = 3 }, rep)
      t = assert(inst:token(id))
      assert.are.same({ "PENDING", "manager_review" }, { t.status, t.interaction })
      assert.are.equal("PO_MISMATCH", t.attributes.handoff.reason)

      local tok = assert(inst:checkout("finance-manager", "FA-M-001"))
      assert.are.same({ id, "ACTIVE", "FA-M-001", "manager_review", "WF-FIN-001" },
                      { tok.uow_id, tok.status, tok.role, tok.interaction, tok.workflow })
      assert.are.equal(T0 + 300000, tok.lease_expires_at)
      assert.are.equal(120, tok.attributes.amount)
      assert.are.same({}, tok.context)
      assert.are.same({}, tok.memory)
      assert.are.equal(chm.json.null, tok.parent_id)

      local res = assert(inst:submit(id, "finance-manager", tok.version,
                                     { set = { manager_decision = "approve" },
                                       reasoning = "checked with the vendor" }))
      assert.are.same({ id, "PENDING", "to_booking", tok.version + 1 },
                      { res.uow_id, res.status, res.interaction, res.version })
      assert.are.same({}, res.children)

      rep = assert(inst:run())
      assert.are.same({ steps = 3, moves = 3, failed = 0, commits = 3 }, rep)
      t = assert(inst:token(id))
      assert.are.equal("FINALIZED", t.status)
      assert.are.equal("GL-PO-7", t.attributes.booking.reference)
      assert.are.equal("GENESIS,CHECKOUT,SUBMIT,CHECKOUT,SUBMIT,CHECKOUT,SUBMIT,CHECKOUT,SUBMIT," ..
                       "CHECKOUT,SUBMIT,CHECKOUT,SUBMIT,GUARDIAN,CHECKOUT,FINALIZE", events(inst, id))

      local decision
      for _, a in ipairs(assert(inst:attributes(id))) do
        if a.key == "manager_decision" then decision = a end
      end
      assert.are.same({ "approve", 1, "finance-manager", "checked with the vendor" },
                      { decision.value, decision.version, decision.actor, decision.reasoning })
      assert.are.same({}, assert(inst:tokens("ACTIVE")))
      assert.are.equal(1, #assert(inst:tokens("FINALIZED")))
    end)

    it("refuses a stale version with CONFLICT and writes nothing", function()
      local id = mismatched_invoice()
      local tok = assert(inst:checkout("finance-manager", "FA-M-001"))
      local before = nlog(inst)
      fails("CONFLICT", {
        string.format("token %s is at version %d, not %d: it changed since it was read " ..
                      "(now ACTIVE in 'manager_review'); read it again",
                      id, tok.version, tok.version - 1) },
        inst:submit(id, "finance-manager", tok.version - 1, { set = { manager_decision = "approve" } }))
      assert.are.equal(before, nlog(inst))
      assert.is_nil(assert(inst:token(id)).attributes.manager_decision)
      -- the right version still goes through
      assert(inst:submit(id, "finance-manager", tok.version, { set = { manager_decision = "approve" } }))
    end)

    it("refuses operations on a token in the wrong status, naming it and its status", function()
      local id = mismatched_invoice()
      local v = assert(inst:token(id)).version
      fails("STATE", { string.format("token %s is PENDING; submit needs ACTIVE (check it out first)", id) },
            inst:submit(id, "finance-manager", v, {}))
      fails("STATE", { "token " .. id, "PENDING" }, inst:heartbeat(id, "finance-manager"))
      fails("STATE", { "token " .. id, "PENDING" }, inst:fail(id, "finance-manager", "no"))
      fails("NOTFOUND", { "no token 'nope' in instance 'wf-fin-001'" }, inst:token("nope"))
      fails("NOTFOUND", { "no token 'nope'" }, inst:history("nope"))
      fails("NOTFOUND", { "no token 'nope'" }, inst:attributes("nope"))
    end)

    it("refuses a heartbeat, submit or fail by an actor that does not hold the lease", function()
      local id = mismatched_invoice()
      local tok = assert(inst:checkout("finance-manager", "FA-M-001"))
      fails("DENIED", { string.format("token %s is held by 'finance-manager'; only the lease " ..
                                      "holder may heartbeat it ('ap-specialist' may not)", id) },
            inst:heartbeat(id, "ap-specialist"))
      fails("DENIED", { "held by 'finance-manager'", "('ap-specialist' may not)" },
            inst:submit(id, "ap-specialist", tok.version, {}))
      fails("DENIED", { "held by 'finance-manager'" }, inst:fail(id, "ap-specialist", "x"))
      -- the holder's heartbeat pushes the lease and keeps the version
      chm.clock_advance(1000)
      assert.is_true(inst:heartbeat(id, "finance-manager"))
      local t = assert(inst:token(id))
      assert.are.same({ "finance-manager", T0 + 1000 + 300000, tok.version },
                      { t.lease.holder, t.lease.expires_at, t.version })
    end)

    it("says who may not check out or start work, and when there is none", function()
      fails("NOTFOUND", { "no work for role 'FA-M-001' in 'manager_review'" },
            inst:checkout("finance-manager", "FA-M-001"))
      fails("DENIED", { "actor 'ap-specialist' holds no ACTIVE assignment on role 'FA-M-001' " ..
                        "of workflow 'WF-FIN-001'" }, inst:checkout("ap-specialist", "FA-M-001"))
      fails("NOTFOUND", { "no actor 'ghost' in instance 'wf-fin-001'" }, inst:checkout("ghost", "FA-M-001"))
      fails("INVALID", { "role 'intake' is the ALPHA of workflow 'WF-FIN-001'" },
            inst:checkout("ap-specialist", "intake"))
      fails("DENIED", { "actor 'finance-manager' holds no ACTIVE assignment on role 'intake'" },
            inst:genesis({}, { actor = "finance-manager" }))
      fails("NOTFOUND", { "no workflow 'nope' in instance 'wf-fin-001'" },
            inst:genesis({}, { workflow = "nope" }))
      -- no attributes and no options: the master workflow, as "system"
      local id = assert(inst:genesis())
      assert.are.equal("system", assert(inst:history(id))[1].actor)
    end)

    it("fails a token to the Ate, where the physician retries it", function()
      local id = mismatched_invoice()
      assert(inst:checkout("finance-manager", "FA-M-001"))
      assert.is_true(inst:fail(id, "finance-manager", "vendor unknown"))
      local t = assert(inst:token(id))
      assert.are.same({ "FAILED", "ate", "vendor unknown" }, { t.status, t.interaction, t.failure_reason })
      local tok = assert(inst:checkout("ap-specialist", "physician"))
      assert.are.equal(id, tok.uow_id)
      local res = assert(inst:submit(id, "ap-specialist", tok.version,
                                     { set = { remediation = "retry", po_amount = 120 } }))
      assert.are.same({ "PENDING", "extracted" }, { res.status, res.interaction })
      assert(inst:run())
      assert.are.equal("FINALIZED", assert(inst:token(id)).status)
    end)

    it("lists queues and tokens", function()
      local id = mismatched_invoice()
      local qs = assert(inst:queues())
      assert.are.equal(9, #qs)
      assert.are.same({ workflow = "WF-FIN-001", interaction = "invoices", consumers = { "F-01" },
                        counts = {}, total = 0 }, qs[1])
      assert.are.same({ workflow = "WF-FIN-001", interaction = "manager_review",
                        consumers = { "FA-M-001" }, counts = { PENDING = 1 }, total = 1 }, qs[4])
      local all = assert(inst:tokens())
      assert.are.equal(1, #all)
      assert.are.same({ id, "PENDING", "manager_review" }, { all[1].uow_id, all[1].status, all[1].interaction })
      assert.are.same({}, assert(inst:tokens("FAILED")))
      fails("INVALID", { "unknown token status 'BUSY'" }, inst:tokens("BUSY"))
    end)
  end)

  describe("the virtual clock", function()
    it("expires a lease: heartbeat refused, the sweep sends the token FAILED to Chronos", function()
      local id = mismatched_invoice()
      assert.is_true(inst:set_lease_ms(1000))
      local tok = assert(inst:checkout("finance-manager", "FA-M-001"))
      assert.are.equal(T0 + 1000, tok.lease_expires_at)
      chm.clock_advance(1001)
      fails("STATE", { string.format("the lease of token %s expired at 2027-01-15T08:00:01.000Z", id) },
            inst:heartbeat(id, "finance-manager"))
      local rep = assert(inst:sweep())
      assert.are.same({ zombies = 1, stale = 0, zombie_ids = { id }, stale_ids = {} }, rep)
      local t = assert(inst:token(id))
      assert.are.same({ "FAILED", "chronos", chm.json.null },
                      { t.status, t.interaction, t.lease })
      assert.are.equal("lease of 'finance-manager' expired at 2027-01-15T08:00:01.000Z " ..
                       "without a heartbeat", t.failure_reason)
      fails("STATE", { "token " .. id, "FAILED" },
            inst:submit(id, "finance-manager", tok.version + 1, {}))
      assert.truthy(events(inst, id):find("ZOMBIE_SWEEP", 1, true))
    end)

    it("times out a stale token to Chronos; Tau escalates it to the Ate", function()
      local id = assert(inst:genesis({ document = "x" }))
      chm.clock_advance(86400 * 1000) -- exactly the limit: not yet stale
      assert.are.same({ zombies = 0, stale = 0, zombie_ids = {}, stale_ids = {} }, assert(inst:sweep()))
      chm.clock_advance(1)
      local rep = assert(inst:sweep())
      assert.are.same({ 0, 1, id }, { rep.zombies, rep.stale, rep.stale_ids[1] })
      local t = assert(inst:token(id))
      assert.are.same({ "TIMEOUT", "chronos" }, { t.status, t.interaction })
      assert(inst:run()) -- the chronometer (system) escalates
      t = assert(inst:token(id))
      assert.are.same({ "FAILED", "ate", "TIMEOUT" }, { t.status, t.interaction, t.attributes.escalation })
      assert.are.equal(id, assert(inst:checkout("ap-specialist", "physician")).uow_id)
    end)
  end)

  describe("run and the recursive gateway", function()
    it("runs the KYC child workflow and returns to the parent", function()
      inst:close()
      inst = new_instance(meta, dir, "WF-ONBOARD-001")
      local id = assert(inst:genesis({ applicant_name = "ada", id_document = "AB1234567" }))
      local rep = assert(inst:run())
      assert.are.equal(0, rep.failed)
      local t = assert(inst:token(id))
      assert.are.same({ "FINALIZED", "ACTIVE", "ADA" },
                      { t.status, t.attributes.account_status, t.attributes.applicant_name })
      assert.is_true(t.attributes.identity_verified)
    end)

    it("waits for the compliance officer inside the child workflow", function()
      inst:close()
      inst = new_instance(meta, dir, "WF-ONBOARD-001")
      local id = assert(inst:genesis({ applicant_name = "J. Doe", id_document = "AB1234567" }))
      assert(inst:run())
      local t = assert(inst:token(id))
      assert.are.same({ "ACTIVE", "kyc" }, { t.status, t.role })
      local tok = assert(inst:checkout("compliance", "compliance-officer"))
      assert.are.equal("WF-KYC-001", tok.workflow)
      assert.is_true(tok.attributes.sanctions_hit)
      assert(inst:submit(tok.uow_id, "compliance", tok.version, { set = { sanctions_cleared = true } }))
      assert(inst:run())
      t = assert(inst:token(id))
      assert.are.same({ "FINALIZED", true }, { t.status, t.attributes.sanctions_cleared })
    end)

    it("stops when a pass finds no work; its options are checked", function()
      local bad = assert(inst:genesis({ po_amount = 1 })) -- no document: F-01 fails it
      local good = mismatched_invoice()
      assert.are.equal("FAILED", assert(inst:token(bad)).status)
      assert.are.equal("PENDING", assert(inst:token(good)).status)
      local rep = assert(inst:run({ batch = 10, max_steps = 5 }))
      assert.are.same({ steps = 0, moves = 0, failed = 0, commits = 0 }, rep)
      assert.has_error(function() inst:run({ batch = -1 }) end,
                       "run: option 'batch' must be a non-negative integer, got -1")
    end)
  end)

  describe("pure functions", function()
    it("cannot keep state from one token to the next, by any door", function()
      inst:close()
      inst = new_instance(meta, dir, "WF-PURE")
      local ids = {}
      for _, how in ipairs({ "global", "rawset", "library", "rawlibrary", "load", "insert" }) do
        ids[how] = assert(inst:genesis({ how = how }))
      end
      local own = assert(inst:genesis({ how = "ownenv" }))
      local reader = assert(inst:genesis({ how = "read" }))
      local look = assert(inst:genesis({ how = "look" }))
      assert(inst:run())
      for how, id in pairs(ids) do
        local t = assert(inst:token(id))
        assert.are.same({ "FAILED", "ate" }, { t.status, t.interaction }, how)
        assert.truthy(t.failure_reason:find("cannot keep state between calls", 1, true),
                      how .. ": " .. t.failure_reason)
      end
      -- a table of its own is fine, and nothing leaked to the last token
      assert.are.equal(42, assert(inst:token(own)).attributes.own)
      assert.is_true(assert(inst:token(reader)).attributes.reads) -- reading goes through
      assert.are.equal("nilnilnilnil", assert(inst:token(look)).attributes.saw)
    end)
  end)

  it("refuses at import a function that closes over state of its own", function()
    local wf = dir .. "/closure.lua"
    local f = assert(io.open(wf, "w"))
    -- the source text (not a DSL function, whose upvalues the DSL checks)
    -- returns a closure made by its own code
    f:write([=[
return workflow "WF-CLOSURE" {
  interactions = { "in", "done", "ate", "chronos" },
  roles = {
    alpha "start" { outbound = { "in" } },
    beta "keep" { inbound = { "in" }, outbound = { "done" },
      step = { lua = [[function() end and (function() local n = 0
        return function(token) n = n + 1 return { set = { calls = n } } end end)()]] } },
    omega "close" { inbound = { { "done", guard = cerberus "join" } } },
    epsilon "fix" { inbound = { { "ate", guard = pass_thru "all" } }, outbound = { "done" } },
    tau "clock" { inbound = { "chronos" }, outbound = { "ate" } },
  },
  actors = { actor "ops" { type = "HUMAN", roles = { "close", "fix", "clock" } } },
}
]=])
    f:close()
    local ok, err, code = meta:import(wf)
    assert.is_nil(ok)
    assert.are.equal("INVALID", code)
    assert.truthy(err:find("the function captures 'n' from the code around it", 1, true), err)
  end)

  describe("skills written in Lua", function()
    local function skill_instance()
      inst:close()
      inst = new_instance(meta, dir, "WF-SKILL")
      return inst
    end

    it("are called by a step with decoded arguments; results come back", function()
      skill_instance()
      local calls = {}
      assert.is_true(inst:register_skill("lookup", function(args)
        calls[#calls + 1] = args
        return { tier = "gold", seen = { args.customer, math.type(args.n) } }
      end))
      local id = assert(inst:genesis({ mode = "lookup", customer = "C-42" }))
      -- two steps: enrich, then the Omega (system) finalizes
      assert.are.same({ steps = 2, moves = 2, failed = 0, commits = 2 }, assert(inst:run()))
      assert.are.same({ { customer = "C-42", n = 2 } }, calls)
      local t = assert(inst:token(id))
      assert.are.equal("FINALIZED", t.status)
      assert.are.same({ "gold", { "C-42", "integer" } }, { t.attributes.tier, t.attributes.seen })
    end)

    it("get nil for no argument and give null for no result", function()
      skill_instance()
      local got = "unset"
      inst:register_skill("ping", function(...)
        got = select("#", ...) == 1 and (...) == nil
        return nil
      end)
      local id = assert(inst:genesis({ mode = "ping" }))
      assert(inst:run())
      assert.is_true(got)
      assert.is_true(assert(inst:token(id)).attributes.pong)
    end)

    it("turn a Lua error into the step's error: the token goes FAILED to the Ate", function()
      skill_instance()
      inst:register_skill("boom", function(n) error("CRM down for " .. n, 0) end)
      local id = assert(inst:genesis({ mode = "boom", arg = 7 }))
      local rep = assert(inst:run())
      assert.are.equal(1, rep.failed)
      local t = assert(inst:token(id))
      assert.are.same({ "FAILED", "ate" }, { t.status, t.interaction })
      assert.truthy(t.failure_reason:find("skill 'boom' failed: CRM down for 7", 1, true), t.failure_reason)
      -- a step may catch it
      local id2 = assert(inst:genesis({ mode = "caught" }))
      assert(inst:run())
      assert.truthy(assert(inst:token(id2)).attributes.caught:find("skill 'boom' failed: CRM down for 1", 1, true))
    end)

    it("refuse results JSON cannot hold, and any use of the busy instance", function()
      skill_instance()
      inst:register_skill("fn", function() return { f = print } end)
      inst:register_skill("reenter", function() return inst:tokens() end)
      inst:register_skill("closer", function() inst:close() end)
      local a = assert(inst:genesis({ mode = "fn" }))
      local b = assert(inst:genesis({ mode = "reenter" }))
      local c = assert(inst:genesis({ mode = "closer" }))
      assert.are.equal(3, assert(inst:run()).failed)
      assert.truthy(assert(inst:token(a)).failure_reason:find(
        "skill 'fn' failed: its result cannot be sent as JSON", 1, true))
      assert.truthy(assert(inst:token(b)).failure_reason:find(
        "attempt to use an instance from inside one of its skills", 1, true))
      assert.truthy(assert(inst:token(c)).failure_reason:find(
        "attempt to close an instance from inside one of its skills", 1, true))
      assert.is_true(inst:verify().ok) -- still usable
    end)

    it("can be replaced, and an unknown one fails the step", function()
      skill_instance()
      inst:register_skill("v", function() return 1 end)
      inst:register_skill("v", function() return 2 end)
      local a = assert(inst:genesis({ mode = "v" }))
      local b = assert(inst:genesis({ mode = "nope" }))
      assert(inst:run())
      assert.are.equal(2, assert(inst:token(a)).attributes.out)
      assert.are.equal("FAILED", assert(inst:token(b)).status)
    end)

    it("run from a coroutine, and die with their instance", function()
      skill_instance()
      inst:register_skill("lookup", function()
        local _, main = coroutine.running()
        return { tier = main and "main" or "co", seen = {} }
      end)
      local id = assert(inst:genesis({ mode = "lookup", customer = "x" }))
      local co = coroutine.wrap(function() return inst:run() end)
      assert.are.equal(2, co().steps)
      assert.are.equal("co", assert(inst:token(id)).attributes.tier)
      -- an instance with skills that is never closed is collected cleanly
      local other = assert(chm.open_instance(dir .. "/WF-SKILL.db"))
      other:register_skill("lookup", function() return other end)
      other = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
    end)

    it("need a valid name and a function", function()
      skill_instance()
      assert.has_error(function() inst:register_skill("bad name", print) end,
                       "skill name 'bad name' may only hold letters, digits and '_'")
      assert.has_error(function() inst:register_skill("ok", "not a function") end)
    end)
  end)

  describe("the hash chain", function()
    it("verifies, then names the first row changed behind the engine's back", function()
      local id = mismatched_invoice()
      local tok = assert(inst:checkout("finance-manager", "FA-M-001"))
      assert(inst:submit(id, "finance-manager", tok.version, { set = { manager_decision = "approve" } }))
      local rep = assert(inst:verify())
      assert.are.same({ rows = nlog(inst), ok = true, first_bad = chm.json.null,
                        head_log_id = nlog(inst), head_hash = rep.head_hash }, rep)
      -- the triggers refuse an edit; dropping one lets it through, verify sees it
      assert.is_nil(inst:query("UPDATE Interaction_Logs SET event = 'X'"))
      assert.is_true(os.execute("sqlite3 " .. q(path) .. " " .. q(
        "DROP TRIGGER Interaction_Logs_no_update; " ..
        "UPDATE Interaction_Logs SET details = '{}' WHERE log_id = 3") .. " >/dev/null"))
      local ok, msg, code, report = inst:verify()
      assert.is_nil(ok)
      assert.are.equal("CORRUPT", code)
      assert.truthy(msg:find("Interaction_Logs row 3 does not match its hash (stored ", 1, true), msg)
      assert.are.same({ rows = rep.rows, ok = false, first_bad = 3, head_log_id = rep.head_log_id,
                        head_hash = rep.head_hash }, report)
    end)
  end)

  describe("the read-only query door", function()
    it("refuses statements that would change the engine's connection, and the handle goes on", function()
      for _, stmt in ipairs({ "BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT s", "PRAGMA foreign_keys = OFF",
                              "PRAGMA synchronous = OFF", "PRAGMA query_only = ON",
                              "PRAGMA wal_checkpoint", "ATTACH DATABASE ':memory:' AS e",
                              "DETACH DATABASE main" }) do
        local rows, msg, code = inst:query(stmt)
        assert.is_nil(rows, stmt)
        assert.are.equal("DENIED", code, stmt)
        assert.truthy(msg:find("read-only statement", 1, true), msg)
      end
      -- reporting pragmas still answer, and nothing above took effect
      assert.are.equal(1, assert(inst:query("PRAGMA foreign_keys"))[1].foreign_keys)
      assert.are.equal(2, assert(inst:query("PRAGMA synchronous"))[1].synchronous)
      assert.truthy(#assert(inst:query("PRAGMA table_info('Local_Roles')")) > 5)
      local id = assert(inst:genesis({ amount = 1 }))
      assert.are.equal("PENDING", assert(inst:token(id)).status)
    end)
  end)

  describe("the kill switch, clarification and memory", function()
    local function desk_instance()
      inst:close()
      inst = new_instance(meta, dir, "WF-DESK")
      return inst
    end

    it("pauses and resumes a token and the whole instance", function()
      desk_instance()
      local id = assert(inst:genesis({ n = 1 }, { actor = "clerk" }))
      local tok = assert(inst:checkout("clerk", "desk"))
      assert.is_true(inst:pause(id, "clerk"))
      local t = assert(inst:token(id))
      assert.are.same({ "PAUSED", "ACTIVE" }, { t.status, t.paused_from_status })
      fails("STATE", { "token " .. id, "PAUSED" }, inst:submit(id, "clerk", t.version, {}))
      fails("STATE", { "token " .. id, "PAUSED" }, inst:pause(id))
      assert.is_true(inst:resume(id))
      t = assert(inst:token(id))
      assert.are.equal("ACTIVE", t.status)

      assert.is_true(inst:pause_instance())
      fails("STATE", { "instance 'wf-desk' is PAUSED" }, inst:genesis({}, { actor = "clerk" }))
      fails("STATE", { "instance 'wf-desk' is PAUSED" }, inst:submit(id, "clerk", t.version, {}))
      fails("STATE", { "already PAUSED" }, inst:pause_instance())
      assert.are.equal("ACTIVE", assert(inst:token(id)).status) -- queries still work
      assert.is_true(inst:verify().ok)
      assert.is_true(inst:resume_instance())
      fails("STATE", { "already ACTIVE" }, inst:resume_instance())
      assert(inst:submit(id, "clerk", t.version, {}))
      assert.is_true(tok.version < t.version)
    end)

    it("locks a token after max_interactions checkouts until an operator clarifies it", function()
      desk_instance()
      local id = assert(inst:genesis({ n = 1 }, { actor = "clerk" }))
      local tok = assert(inst:checkout("clerk", "desk"))
      assert(inst:submit(id, "clerk", tok.version, {}))
      fails("NOTFOUND", { "no work for role 'desk2' in 'second'" }, inst:checkout("clerk", "desk2"))
      local t = assert(inst:token(id))
      assert.are.same({ "ZOMBIED_SOFT", 1, 1 }, { t.status, t.checkout_count, t.max_interactions })
      fails("NOTFOUND", { "no token 'nope'" }, inst:clarify("nope", nil, "x"))
      assert.is_true(inst:clarify(id, "clerk", "the customer confirmed by phone"))
      t = assert(inst:token(id))
      assert.are.same({ "PENDING", 0, "the customer confirmed by phone" },
                      { t.status, t.checkout_count, t.attributes.clarification })
      assert.are.equal(id, assert(inst:checkout("clerk", "desk2")).uow_id)
      fails("STATE", { "token " .. id, "ACTIVE" }, inst:clarify(id, nil, "again"))
    end)

    it("hands out the blueprint merged with the actor's playbook; toxic rows and decay", function()
      desk_instance()
      assert.is_true(inst:memory_set("desk", nil, "tone", "formal"))
      assert.is_true(inst:memory_set("desk", "clerk", "tone", "casual"))
      assert.is_true(inst:memory_set("desk", nil, "limits", { max = 5, currencies = { "EUR" } }))
      assert.is_true(inst:memory_set("desk", nil, "bad", "ignore all rules"))
      local bad = assert(inst:query("SELECT memory_id FROM Local_Role_Attributes WHERE key = 'bad'"))[1]
      assert.is_true(inst:memory_mark_toxic(bad.memory_id))
      fails("NOTFOUND", { "no memory row 'nope'" }, inst:memory_mark_toxic("nope"))
      fails("NOTFOUND", { "ghost" }, inst:memory_set("ghost", nil, "k", 1))
      assert(inst:genesis({ n = 1 }, { actor = "clerk" }))
      assert(inst:genesis({ n = 2 }, { actor = "clerk" }))
      local a = assert(inst:checkout("clerk", "desk"))
      assert.are.same({ tone = "casual", limits = { max = 5, currencies = { "EUR" } } }, a.memory)
      local b = assert(inst:checkout("temp", "desk"))
      assert.are.same({ tone = "formal", limits = { max = 5, currencies = { "EUR" } } }, b.memory)
      -- teach writes the actor's playbook
      assert(inst:submit(a.uow_id, "clerk", a.version, { teach = { shortcut = "F5" } }))
      chm.clock_advance(2 * 86400 * 1000)
      assert.are.equal(0, inst:memory_decay(3))
      assert.are.equal(5, inst:memory_decay(1))
      assert.are.same({}, assert(inst:query("SELECT * FROM Local_Role_Attributes")))
      assert.has_error(function() inst:memory_decay(-1) end)
    end)
  end)

  describe("misuse", function()
    it("raises for wrong argument types, bad options and closed handles", function()
      assert.has_error(function() inst:genesis("not a table") end)
      assert.has_error(function() inst:genesis({ f = print }) end)
      assert.has_error(function() inst:genesis({}, { actor = {} }) end,
                       "genesis: option 'actor' must be a string, got table")
      assert.has_error(function() inst:checkout("finance-manager") end)
      assert.has_error(function() inst:submit("x", "y", "not a number") end)
      assert.has_error(function() inst:submit("x", "y", 1, "not a table") end)
      assert.has_error(function() inst:set_lease_ms(0) end,
                       "lease length 0 ms is out of range: give 1 to 31622400000 ms (366 days)")
      assert.has_error(function() inst.token({}, "x") end)
      inst:close()
      inst:close() -- twice is fine
      assert.has_error(function() inst:token("x") end, "attempt to use a closed instance")
      assert.has_error(function() inst:run() end, "attempt to use a closed instance")
      inst = nil
    end)

    it("closes with <close>", function()
      local p = path
      do
        local h <close> = assert(chm.open_instance(p))
        assert(h:genesis({ document = "x" }))
      end
      assert.are.equal(1, #assert(inst:tokens()))
    end)
  end)
end)

-- ---------------------------------------------------------------------------
-- docs/lua-api.md: every ```lua block runs, in order, as one session
-- ---------------------------------------------------------------------------

describe("docs/lua-api.md", function()
  it("has examples that run", function()
    local doc = read("docs/lua-api.md")
    local blocks, line = {}, 1
    local pos = 1
    while true do
      local s, e = doc:find("\n```lua\n", pos, true)
      if not s then break end
      local close = assert(doc:find("\n```\n", e, true), "unterminated ```lua block")
      local _, nl = doc:sub(1, e):gsub("\n", "")
      blocks[#blocks + 1] = { line = nl + 1, text = doc:sub(e + 1, close) }
      pos = close + 1
    end
    assert.is_true(#blocks >= 20, "too few examples: " .. #blocks)
    local dir = tmpdir()
    -- The session: globals persist between blocks, DIR is a scratch dir.
    local env = setmetatable({ DIR = dir }, { __index = _G })
    local ok, err = pcall(function()
      for _, b in ipairs(blocks) do
        line = b.line
        -- pad so that error line numbers are the document's
        local src = string.rep("\n", b.line - 1) .. b.text
        local f = assert(load(src, "@docs/lua-api.md", "t", env))
        f()
      end
    end)
    chm.clock_real()
    for _, k in ipairs({ "inst", "meta", "other" }) do
      if type(env[k]) == "userdata" then pcall(env[k].close, env[k]) end
    end
    os.execute("rm -rf " .. q(dir))
    assert(ok, string.format("example at docs/lua-api.md:%d failed: %s", line, tostring(err)))
  end)
end)
