-- tests/cli_token_spec.lua — the token commands of the real `chameleon`
-- binary: an invoice of WF-FIN-001 from genesis to FINALIZED with a human
-- approval in the middle, exit codes for every kind of refusal, --json
-- answers that parse, KEY=VALUE parsing, the kill switch, memory, leases
-- and stale tokens under CHAMELEON_NOW / --now, and `verify` catching a
-- log row changed behind the engine's back (exit 6).
-- Binary: $CHAMELEON_BIN, else $BUILD/chameleon, else build/chameleon.
-- Run from the repository root: busted --lua=lua5.4 tests/cli_token_spec.lua

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

local ROOT = assert(io.popen("pwd")):read("l")
local BIN = os.getenv("CHAMELEON_BIN") or ((os.getenv("BUILD") or "build") .. "/chameleon")
if BIN:sub(1, 1) ~= "/" then BIN = ROOT .. "/" .. BIN end

local T0 = 1800000000000 -- 2027-01-15T08:00:00Z

local function q(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function mktemp()
  return assert(io.popen("mktemp -d")):read("l")
end

-- run(dir, args [, env]) -> {code, out, err}: the binary in dir with
-- CHAMELEON_META=meta.db and CHAMELEON_NOW unset unless env sets them.
local function run(dir, args, env)
  local cmd = { "cd", q(dir), "&&", "env -u CHAMELEON_NOW CHAMELEON_META=meta.db", env or "", q(BIN) }
  for _, a in ipairs(args) do cmd[#cmd + 1] = q(a) end
  cmd[#cmd + 1] = ">" .. q(dir .. "/.stdout") .. " 2>" .. q(dir .. "/.stderr")
  local _, how, code = os.execute(table.concat(cmd, " "))
  if how == "signal" then code = 128 + code end
  return { code = code, out = slurp(dir .. "/.stdout") or "",
           err = slurp(dir .. "/.stderr") or "" }
end

local function expect(r, code)
  if r.code ~= code then
    error(string.format("exit status %s, expected %s\n--- stdout\n%s--- stderr\n%s",
      tostring(r.code), tostring(code), r.out, r.err), 2)
  end
  return r
end

local function assert_has(text, needle, what)
  if not text:find(needle, 1, true) then
    error(string.format("%s does not contain %q:\n%s", what or "output", needle, text), 2)
  end
end

-- The CLI's JSON is read with the engine's own exact codec (the regular
-- module: under `make asan` the specs still load the unsanitized build).
local cjson = require("chameleon").json
local NULL = cjson.null
local json_decode = cjson.decode

-- json(r) -> the decoded stdout of a run.
local function json(r)
  return json_decode(r.out)
end

local TOKEN_COMMANDS = { "genesis", "checkout", "heartbeat", "submit", "fail", "pause",
                         "resume", "clarify", "sweep", "run", "token", "queues", "tokens",
                         "verify", "memory" }

-- ---------------------------------------------------------------------------
-- The specs
-- ---------------------------------------------------------------------------

describe("chameleon token commands", function()
  local dir, n = nil, 0

  -- A fresh instance of name in dir; returns its file name.
  local function instance(name)
    n = n + 1
    local file = string.format("i%d.db", n)
    expect(run(dir, { "instantiate", name or "WF-FIN-001", "--out", file }), 0)
    return file
  end

  -- An invoice whose amount does not match its PO, waiting for the
  -- finance manager (genesis + run at the time env gives).
  local function invoice(inst, env)
    local id = expect(run(dir, { "genesis", inst, "--actor", "ap-specialist",
                                 "--attr", "po_amount=100",
                                 "--attr", "document=Vendor: ACME Amount: 120 PO: PO-7" }, env), 0).out
    id = id:gsub("\n$", "")
    expect(run(dir, { "run", inst }, env), 0)
    return id
  end

  lazy_setup(function()
    dir = mktemp()
    expect(run(dir, { "init" }), 0)
    expect(run(dir, { "import", ROOT .. "/workflows/wf_child_kyc.lua",
                      ROOT .. "/workflows/wf_gateway.lua", ROOT .. "/workflows/wf_fin_001.lua" }), 0)
  end)
  lazy_teardown(function() os.execute("rm -rf " .. q(dir)) end)

  it("has --help for every token command, and lists them with exit 6 in help", function()
    local r = expect(run(dir, { "help" }), 0)
    for _, name in ipairs(TOKEN_COMMANDS) do
      assert.truthy(r.out:find("\n  " .. name .. " ", 1, true), name .. " missing from help")
      local h = expect(run(dir, { name, "--help" }), 0)
      assert_has(h.out, "usage: chameleon " .. name)
      assert_has(h.out, "Options:")
      assert_has(h.out, "--now MS")
      assert_has(h.out, "Example:")
    end
    assert_has(r.out, "CHAMELEON_NOW")
    assert_has(r.out, "--now MS")
    assert_has(r.out, "  6  tampered or corrupt store")
  end)

  it("moves an invoice from genesis to FINALIZED with a human approval", function()
    local inst = instance()
    local r = expect(run(dir, { "genesis", inst, "--actor", "ap-specialist", "--json",
                                "--attrs", '{"po_amount": 100}',
                                "--attr", "document=Vendor: ACME Amount: 120 PO: PO-7" }), 0)
    local id = json(r).uow_id
    assert.are.equal(36, #id)
    r = expect(run(dir, { "run", inst }), 0)
    assert.are.equal("steps    3\nmoves    3\nfailed   0\ncommits  3\n", r.out)
    r = expect(run(dir, { "queues", inst }), 0)
    assert.truthy(r.out:find("WF%-FIN%-001%s+manager_review%s+FA%-M%-001%s+1%s+PENDING=1"), r.out)
    local waiting = json(expect(run(dir, { "tokens", inst, "--status", "PENDING", "--json" }), 0))
    assert.are.same({ id, "manager_review" }, { waiting[1].uow_id, waiting[1].interaction })

    r = expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001" }), 0)
    assert_has(r.out, "token        " .. id .. "\n")
    assert_has(r.out, "status       ACTIVE\n")
    assert_has(r.out, "role         FA-M-001\n")
    assert_has(r.out, "interaction  manager_review\n")
    assert_has(r.out, "\nattributes\n")
    assert_has(r.out, "  po_amount  100\n")
    assert_has(r.out, "\ncontext\n  (none)\nmemory\n  (none)\n")
    local version = tonumber(r.out:match("\nversion%s+(%d+)\n"))

    r = expect(run(dir, { "submit", inst, id, "--actor", "finance-manager",
                          "--version", tostring(version - 1), "--set", "manager_decision=approve" }), 5)
    assert_has(r.err, string.format("chameleon: submit: token %s is at version %d, not %d", id,
                                    version, version - 1))
    assert_has(r.err, "hint: read the token again")
    r = expect(run(dir, { "submit", inst, id, "--actor", "finance-manager", "--version",
                          tostring(version), "--set", "manager_decision=approve",
                          "--reasoning", "confirmed with the vendor" }), 0)
    assert.are.equal(string.format("token %s: PENDING in 'to_booking' (version %d)\n", id, version + 1), r.out)
    expect(run(dir, { "run", inst }), 0)

    local t = json(expect(run(dir, { "token", inst, id, "--json", "--history", "--attributes" }), 0))
    assert.are.equal("FINALIZED", t.status)
    assert.are.equal("approve", t.attributes.manager_decision)
    assert.are.equal("GENESIS", t.history[1].event)
    assert.are.equal("FINALIZE", t.history[#t.history].event)
    local found
    for _, a in ipairs(t.attribute_versions) do
      if a.key == "manager_decision" then found = a end
    end
    assert.are.same({ "finance-manager", "confirmed with the vendor" }, { found.actor, found.reasoning })
    r = expect(run(dir, { "token", inst, id, "--history", "--attributes" }), 0)
    assert_has(r.out, "status       FINALIZED\n")
    assert_has(r.out, "\nhistory (16)\n")
    assert.truthy(r.out:find("\n16%s+%S+%s+FINALIZE%s+ACTIVE%s+FINALIZED%s+system%s+close"), r.out)
    assert.truthy(r.out:find("\nmanager_decision%s+1%s+approve%s+finance%-manager%s+confirmed with the vendor"), r.out)
  end)

  it("parses KEY=VALUE as JSON when it parses, else as text; --changes merges with --set", function()
    local inst = instance()
    local id = expect(run(dir, { "genesis", inst, "--attr", "n=5", "--attr", "s=abc", "--attr", 'q="5"',
                                 "--attr", 'o={"x": [1, 2.5]}', "--attr", "b=true", "--attr", "e=",
                                 "--attr", "n=6", "--attr", "eq=a=b" }), 0).out:gsub("\n", "")
    local a = json(expect(run(dir, { "token", inst, id, "--json" }), 0)).attributes
    assert.are.same({ n = 6, s = "abc", q = "5", o = { x = { 1, 2.5 } }, b = true, e = "", eq = "a=b" }, a)
    -- an invoice failed to the physician, who sends it back with merged changes
    inst = instance()
    local inv = invoice(inst)
    local v = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager",
                                     "--role", "FA-M-001", "--json" }), 0)).version
    expect(run(dir, { "submit", inst, inv, "--actor", "finance-manager", "--version", tostring(v),
                      "--changes", '{"fail": "PO cancelled"}' }), 0)
    local t = json(expect(run(dir, { "token", inst, inv, "--json" }), 0))
    assert.are.same({ "FAILED", "ate", "PO cancelled" }, { t.status, t.interaction, t.failure_reason })
    v = json(expect(run(dir, { "checkout", inst, "--actor", "ap-specialist", "--role", "physician",
                               "--json" }), 0)).version
    local r = expect(run(dir, { "submit", inst, inv, "--actor", "ap-specialist", "--version", tostring(v),
                                "--changes", '{"set": {"remediation": "retry", "po_amount": 1}, "reasoning": "x"}',
                                "--set", "po_amount=120", "--reasoning", "PO re-issued", "--json" }), 0)
    assert.are.same({ "PENDING", "extracted" }, { json(r).status, json(r).interaction })
    local versions = json(expect(run(dir, { "token", inst, inv, "--attributes", "--json" }), 0))
    for _, row in ipairs(versions.attribute_versions) do
      if row.key == "remediation" then assert.are.same({ "retry", "PO re-issued" }, { row.value, row.reasoning }) end
      if row.key == "po_amount" and row.version == 2 then assert.are.equal(120, row.value) end
    end
    expect(run(dir, { "run", inst }), 0)
    assert.are.equal("FINALIZED", json(expect(run(dir, { "token", inst, inv, "--json" }), 0)).status)
    -- malformed input
    assert_has(expect(run(dir, { "genesis", inst, "--attrs", "[1]" }), 3).err,
               "genesis: genesis attributes must be a JSON object, not an array")
    assert_has(expect(run(dir, { "genesis", inst, "--attrs", "{", "--attr", "a=1" }), 3).err,
               "--attrs is not a JSON object")
    assert_has(expect(run(dir, { "genesis", inst, "--attr", "novalue" }), 2).err, "expected KEY=VALUE")
    assert_has(expect(run(dir, { "genesis", inst, "--attr", "=1" }), 2).err, "expected KEY=VALUE")
  end)

  it("exits 4 for nothing there, 5 for refusals, 3 for invalid values, 2 for usage", function()
    local inst = instance()
    local id = invoice(inst)
    local r = expect(run(dir, { "checkout", inst, "--actor", "ap-specialist", "--role", "physician" }), 4)
    assert_has(r.err, "chameleon: checkout: no work for role 'physician' in 'ate'")
    assert_has(r.err, "hint: 'chameleon queues " .. inst .. "' shows what waits where")
    assert_has(expect(run(dir, { "checkout", inst, "--actor", "ghost", "--role", "FA-M-001" }), 4).err,
               "no actor 'ghost'")
    assert_has(expect(run(dir, { "token", inst, "nope" }), 4).err, "no token 'nope'")
    assert_has(expect(run(dir, { "genesis", inst, "--workflow", "NOPE" }), 4).err, "no workflow 'NOPE'")
    assert_has(expect(run(dir, { "tokens", "missing.db" }), 4).err, "instance store 'missing.db' does not exist")
    assert_has(expect(run(dir, { "checkout", inst, "--actor", "ap-specialist", "--role", "FA-M-001" }), 5).err,
               "actor 'ap-specialist' holds no ACTIVE assignment on role 'FA-M-001'")
    assert_has(expect(run(dir, { "submit", inst, id, "--actor", "finance-manager", "--version", "1" }), 5).err,
               "is at version")
    expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001" }), 0)
    assert_has(expect(run(dir, { "heartbeat", inst, id, "--actor", "ap-specialist" }), 5).err,
               string.format("token %s is held by 'finance-manager'; only the lease holder may heartbeat it", id))
    assert_has(expect(run(dir, { "fail", inst, id, "--actor", "ap-specialist" }), 5).err, "held by 'finance-manager'")
    r = expect(run(dir, { "tokens", inst, "--status", "BUSY" }), 3)
    assert_has(r.err, "unknown token status 'BUSY'")
    assert_has(r.err, "hint: check the values given; 'chameleon tokens --help' describes them")
    -- usage
    assert_has(expect(run(dir, { "checkout", inst, "--role", "FA-M-001" }), 2).err, "missing option --actor A")
    assert_has(expect(run(dir, { "submit", inst, id, "--actor", "x" }), 2).err, "missing option --version N")
    assert_has(expect(run(dir, { "submit", inst }), 2).err, "missing argument UOW")
    assert_has(expect(run(dir, { "heartbeat" }), 2).err, "missing argument INSTANCE")
    assert_has(expect(run(dir, { "clarify", inst, id }), 2).err, "missing option --text TEXT")
    assert_has(expect(run(dir, { "run", inst, "--batch", "0" }), 2).err, "expected a positive integer")
    assert_has(expect(run(dir, { "pause", inst, "--actor", "x" }), 2).err, "--actor applies to a token")
    assert_has(expect(run(dir, { "memory", inst, "forget" }), 2).err, "unknown memory action 'forget'")
    assert_has(expect(run(dir, { "memory", inst, "decay", "--", "-1" }), 2).err, "DAYS must be a non-negative integer")
    assert_has(expect(run(dir, { "tokens", inst, "--now", "soon" }), 2).err, "milliseconds since the epoch")
    assert_has(expect(run(dir, { "tokens", inst }, "CHAMELEON_NOW=soon"), 2).err,
               "CHAMELEON_NOW='soon' is not a number of milliseconds since the epoch")
  end)

  it("names the waiting token when a checkout finds none it may take, and changes nothing", function()
    local inst = instance()
    local id = invoice(inst)
    local v = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager",
                                     "--role", "FA-M-001", "--json" }), 0)).version
    expect(run(dir, { "fail", inst, id, "--actor", "finance-manager", "--reason", "PO cancelled" }), 0)
    expect(run(dir, { "pause", inst, id, "--actor", "ap-specialist" }), 0)
    local before = json(expect(run(dir, { "token", inst, id, "--json", "--history" }), 0))
    assert.are.same({ "PAUSED", "ate" }, { before.status, before.interaction })
    local r = expect(run(dir, { "checkout", inst, "--actor", "ap-specialist", "--role", "physician" }), 4)
    assert_has(r.err, "chameleon: checkout: no work for role 'physician' in 'ate': 1 token waits there " ..
                      "but none can be taken: token " .. id .. " is PAUSED — EPSILON takes only FAILED " ..
                      "tokens (resume it first)")
    local after = json(expect(run(dir, { "token", inst, id, "--json", "--history" }), 0))
    assert.are.same({ before.status, before.version, #before.history },
                    { after.status, after.version, #after.history })
    assert.is_true(after.version > v)
  end)

  it("refuses an attribute key holding a NUL byte and writes nothing", function()
    local inst = instance()
    local r = expect(run(dir, { "genesis", inst, "--attrs", '{"a": 1, "a\\u0000b": 2}' }), 3)
    assert_has(r.err, 'genesis attributes has the key "a\\u0000b": an attribute key must be non-empty ' ..
                      "text without a NUL byte (\\u0000)")
    assert.are.same({}, json(expect(run(dir, { "tokens", inst, "--json" }), 0)))
    local id = invoice(inst)
    local v = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager",
                                     "--role", "FA-M-001", "--json" }), 0)).version
    r = expect(run(dir, { "submit", inst, id, "--actor", "finance-manager", "--version", tostring(v),
                          "--changes", '{"set": {"po_amount\\u0000evil": 999}}' }), 3)
    assert_has(r.err, 'changes.set has the key "po_amount\\u0000evil"')
    local t = json(expect(run(dir, { "token", inst, id, "--json" }), 0))
    assert.are.same({ 100, v, "ACTIVE" }, { t.attributes.po_amount, t.version, t.status })
    -- the Lua module's memory_set: a Lua string may hold a NUL that C
    -- would cut at, so it is refused before it reaches the engine
    local chm = require("chameleon")
    local h = assert(chm.open_instance(dir .. "/" .. inst))
    local ok, msg, code = h:memory_set("FA-M-001", nil, "tone\0evil", "x")
    assert.are.same({ nil, "INVALID" }, { ok, code })
    assert_has(msg, "memory key holds a NUL byte")
    assert.are.equal(0, h:query("SELECT count(*) AS n FROM Local_Role_Attributes")[1].n)
    h:close()
  end)

  it("uses CHAMELEON_NOW and --now: an expired lease is swept to Chronos", function()
    local inst = instance()
    local now = "CHAMELEON_NOW=" .. T0
    local id = invoice(inst, now)
    local t = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001",
                                     "--lease", "1000", "--json" }, now), 0))
    assert.are.equal(T0 + 1000, t.lease_expires_at)
    local r = expect(run(dir, { "heartbeat", inst, id, "--actor", "finance-manager", "--json" },
                         "CHAMELEON_NOW=" .. (T0 + 500)), 0)
    assert.are.equal(T0 + 500 + 300000, json(r).lease.expires_at)
    -- --now wins over the environment
    r = expect(run(dir, { "heartbeat", inst, id, "--actor", "finance-manager", "--lease", "1000",
                          "--now", tostring(T0 + 600) }, "CHAMELEON_NOW=" .. (T0 + 900000)), 0)
    assert.are.equal(string.format("token %s: ACTIVE in 'manager_review' (lease extended)\n", id), r.out)
    r = expect(run(dir, { "heartbeat", inst, id, "--actor", "finance-manager" }, "CHAMELEON_NOW=" .. (T0 + 1601)), 5)
    assert_has(r.err, string.format("the lease of token %s expired at 2027-01-15T08:00:01.600Z", id))
    r = expect(run(dir, { "sweep", inst }, "CHAMELEON_NOW=" .. (T0 + 1601)), 0)
    assert.are.equal("zombies  1\nstale    0\nzombie  " .. id .. "\n", r.out)
    t = json(expect(run(dir, { "token", inst, id, "--json" }), 0))
    assert.are.same({ "FAILED", "chronos" }, { t.status, t.interaction })
    assert.are.equal("lease of 'finance-manager' expired at 2027-01-15T08:00:01.600Z without a heartbeat",
                     t.failure_reason)
  end)

  it("times out a stale token at the stale limit, not before", function()
    local inst = instance()
    local id = expect(run(dir, { "genesis", inst, "--attr", "document=x" }, "CHAMELEON_NOW=" .. T0), 0).out
    id = id:gsub("\n", "")
    local r = json(expect(run(dir, { "sweep", inst, "--json", "--now", tostring(T0 + 86400000) }), 0))
    assert.are.same({ zombies = 0, stale = 0, zombie_ids = {}, stale_ids = {} }, r)
    r = json(expect(run(dir, { "sweep", inst, "--json", "--now", tostring(T0 + 86400001) }), 0))
    assert.are.same({ zombies = 0, stale = 1, zombie_ids = {}, stale_ids = { id } }, r)
    local t = json(expect(run(dir, { "tokens", inst, "--status", "TIMEOUT", "--json" }), 0))
    assert.are.same({ id, "chronos" }, { t[1].uow_id, t[1].interaction })
  end)

  it("pauses and resumes the instance and a token; clarify refuses a live token", function()
    local inst = instance()
    local id = invoice(inst)
    assert.are.equal("instance " .. inst .. ": PAUSED\n", expect(run(dir, { "pause", inst }), 0).out)
    local r = expect(run(dir, { "genesis", inst }), 5)
    assert_has(r.err, "is PAUSED; resume it first")
    assert_has(expect(run(dir, { "pause", inst }), 5).err, "already PAUSED")
    expect(run(dir, { "tokens", inst }), 0) -- queries still work
    expect(run(dir, { "verify", inst }), 0)
    assert.are.same({ instance = inst, status = "ACTIVE" }, json(expect(run(dir, { "resume", inst, "--json" }), 0)))
    r = expect(run(dir, { "pause", inst, id, "--actor", "ap-specialist" }), 0)
    assert.are.equal(string.format("token %s: PAUSED in 'manager_review'\n", id), r.out)
    assert_has(expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001" }), 4).err,
               "no work")
    local t = json(expect(run(dir, { "resume", inst, id, "--json" }), 0))
    assert.are.same({ "PENDING", NULL }, { t.status, t.paused_from_status })
    r = expect(run(dir, { "clarify", inst, id, "--text", "PO-7 re-issued" }), 5)
    assert_has(r.err, id)
    r = expect(run(dir, { "fail", inst, id, "--actor", "finance-manager" }), 5)
    assert_has(r.err, string.format("token %s is PENDING", id))
    expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001" }), 0)
    r = expect(run(dir, { "fail", inst, id, "--actor", "finance-manager", "--reason", "vendor unknown" }), 0)
    assert.are.equal(string.format("token %s: FAILED in 'ate'\n", id), r.out)
  end)

  it("writes, poisons and decays role memory", function()
    local inst = instance()
    local now = "CHAMELEON_NOW=" .. T0
    assert.are.equal("memory FA-M-001/tolerance set in the global blueprint\n",
                     expect(run(dir, { "memory", inst, "set", "FA-M-001", "tolerance", "0.05" }, now), 0).out)
    assert.are.equal("memory FA-M-001/tone set in the playbook of 'finance-manager'\n",
                     expect(run(dir, { "memory", inst, "set", "FA-M-001", "tone", "short",
                                       "--actor", "finance-manager" }, now), 0).out)
    expect(run(dir, { "memory", inst, "set", "FA-M-001", "shortcut", '{"approve": "all"}', "--json" }, now), 0)
    local rows = json(expect(run(dir, { "sql", "--instance", inst, "--json",
                                        "SELECT memory_id FROM Local_Role_Attributes WHERE key = 'shortcut'" }), 0))
    assert.are.equal("memory " .. rows[1].memory_id .. " marked toxic\n",
                     expect(run(dir, { "memory", inst, "toxic", rows[1].memory_id }, now), 0).out)
    assert_has(expect(run(dir, { "memory", inst, "toxic", "nope" }), 4).err, "no memory row 'nope'")
    assert_has(expect(run(dir, { "memory", inst, "set", "ghost", "k", "1" }), 4).err, "ghost")
    invoice(inst, now)
    local t = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager", "--role", "FA-M-001",
                                     "--json" }, now), 0))
    assert.are.same({ tolerance = 0.05, tone = "short" }, t.memory)
    assert.are.same({ removed = 0 }, json(expect(run(dir, { "memory", inst, "decay", "30", "--json" },
                                                     "CHAMELEON_NOW=" .. (T0 + 86400000)), 0)))
    assert.are.equal("removed 3 memory rows\n",
                     expect(run(dir, { "memory", inst, "decay", "30" },
                                "CHAMELEON_NOW=" .. (T0 + 31 * 86400000)), 0).out)
  end)

  it("verifies the log and exits 6 naming the first row changed behind its back", function()
    local inst = instance()
    invoice(inst)
    local r = expect(run(dir, { "verify", inst }), 0)
    assert.are.equal(inst .. ": ok (7 log rows verified)\n", r.out)
    local rep = json(expect(run(dir, { "verify", inst, "--json" }), 0))
    assert.are.equal(7, rep.head_log_id)
    assert.matches("^%x+$", rep.head_hash)
    assert.are.equal(64, #rep.head_hash)
    assert.are.same({ rows = 7, ok = true, first_bad = NULL, head_log_id = 7, head_hash = rep.head_hash }, rep)
    assert.is_true(os.execute("sqlite3 " .. q(dir .. "/" .. inst) .. " " .. q(
      "DROP TRIGGER Interaction_Logs_no_update; " ..
      "UPDATE Interaction_Logs SET details = '{}' WHERE log_id = 3") .. " >/dev/null"))
    r = expect(run(dir, { "verify", inst }), 6)
    assert.are.equal("", r.out)
    assert_has(r.err, "chameleon: verify: Interaction_Logs row 3 does not match its hash (stored ")
    assert_has(r.err, "hint: the log was changed outside the engine")
    r = expect(run(dir, { "verify", inst, "--json" }), 6)
    assert.are.same({ rows = 7, ok = false, first_bad = 3, head_log_id = 7, head_hash = rep.head_hash }, json(r))
  end)

  it("runs a recursive gateway and hands the child's human step to its actor", function()
    local inst = instance("WF-ONBOARD-001")
    local id = expect(run(dir, { "genesis", inst, "--attr", "applicant_name=J. Doe",
                                 "--attr", "id_document=AB1234567" }), 0).out:gsub("\n", "")
    expect(run(dir, { "run", inst, "--batch", "5", "--max-steps", "100" }), 0)
    local t = json(expect(run(dir, { "checkout", inst, "--actor", "compliance", "--role",
                                     "WF-KYC-001/compliance-officer", "--json" }), 0))
    assert.are.equal("WF-KYC-001", t.workflow)
    expect(run(dir, { "submit", inst, t.uow_id, "--actor", "compliance", "--version", tostring(t.version),
                      "--set", "sanctions_cleared=true" }), 0)
    local r = json(expect(run(dir, { "run", inst, "--json" }), 0))
    assert.are.equal(0, r.failed)
    assert.are.equal("FINALIZED", json(expect(run(dir, { "token", inst, id, "--json" }), 0)).status)
  end)

  it("names the routing condition that failed when a submit sends the token to the Ate", function()
    local inst = instance()
    local id = invoice(inst)
    local v = json(expect(run(dir, { "checkout", inst, "--actor", "finance-manager",
                                     "--role", "FA-M-001", "--json" }), 0)).version
    -- no manager_decision set: the routing condition cannot be evaluated
    local r = expect(run(dir, { "submit", inst, id, "--actor", "finance-manager",
                                "--version", tostring(v) }), 0)
    assert_has(r.out, "token " .. id .. ": FAILED in 'ate'")
    local cause = "unknown name 'manager_decision'"
    assert_has(r.out, "\nfailure: no route matched after role 'FA-M-001': ")
    assert_has(r.out, cause)
    r = expect(run(dir, { "token", inst, id }), 0)
    local line = r.out:match("\nfailure +([^\n]*)")
    assert.truthy(line, r.out)
    assert_has(line, "(when: error); component 'FA-M-001:out:to_booking' routing when ")
    assert_has(line, "manager_decision == 'approve'")
    assert_has(line, cause)
    assert.are.equal(line, json(expect(run(dir, { "token", inst, id, "--json" }), 0)).failure_reason)
  end)
end)
