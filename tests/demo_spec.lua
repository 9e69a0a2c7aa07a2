-- tests/demo_spec.lua — the README's first command, small: examples/demo.sh
-- on 200 invoices must finish every invoice, print the summary sections,
-- verify the audit chain and write the DOT picture with token counts.
describe("make demo (examples/demo.sh)", function()
  it("runs WF-FIN-001 on generated invoices and summarises them", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local p = assert(io.popen(("DEMO_OUT=%s DEMO_INVOICES=200 BUILD=%s sh examples/demo.sh 2>&1")
      :format(dir, os.getenv("BUILD") or "build")))
    local out = p:read("a")
    local ok = p:close()
    assert.truthy(ok, out)
    assert.truthy(out:find("200/200 invoices finished", 1, true), out)
    for _, section in ipairs({ "Tokens per final state", "Tokens per route",
                               "Work per role", "moves per second",
                               "hash chain verified" }) do
      assert.truthy(out:find(section, 1, true), section .. " missing:\n" .. out)
    end
    local finalized = tonumber(out:match("FINALIZED%s+(%d+)"))
    local archived = tonumber(out:match("ARCHIVED%s+(%d+)")) or 0
    assert.are.equal(200, finalized + archived)
    local f = assert(io.open(dir .. "/wf_fin_001.dot"))
    local dot = f:read("a")
    f:close()
    assert.truthy(dot:find("invoices\\n[200 tokens, 0 here]", 1, true), dot)
    os.execute("rm -rf " .. dir)
  end)
end)
