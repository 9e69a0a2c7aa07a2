-- .luacheckrc — luacheck settings (STYLE §9): Lua 5.4; the trusted modules
-- in lua/ see the engine's internal table `chm`; specs run under busted.
std = "lua54"
max_line_length = 120
files["lua/"] = { globals = { "chm" } }
files["tests/"] = { std = "+busted" }
local dsl = { "workflow", "interaction", "role", "alpha", "beta",
  "omega", "epsilon", "tau", "component", "guardian", "actor", "assignment", "cerberus",
  "pass_thru", "criteria", "ttl", "composite", "directional", "injector", "lua_guard",
  "policy", "approval", "json" }
files["workflows/"] = { read_globals = dsl }
files["examples/embed/"] = { read_globals = dsl }
files["tests/fixtures/"] = { read_globals = dsl }
exclude_files = { "tests/fixtures/hostile/", "tests/fixtures/invalid/", "build/", "build-asan/" }
