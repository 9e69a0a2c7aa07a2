-- tests/install_spec.lua — `make install` into a DESTDIR, then the installed
-- copy used as an embedder would: the file list, the soname, chameleon.pc
-- through pkg-config (prefix redefined, and a sysroot), the Lua module and
-- the CLI, examples/embed built against it (shared, static, and under
-- ASan), and docs/embedding.md checked against all of that: its C, Lua and
-- make excerpts are quoted from examples/embed, its shell blocks run, its
-- printed output is the program's.
-- Needs a finished build (`make`); BUILD selects the build directory.
-- Run from the repository root: busted --lua=lua5.4 tests/install_spec.lua

-- ---------------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------------

local ROOT = assert(io.popen("pwd")):read("l")
local BUILD = os.getenv("BUILD") or "build"
local PREFIX = "/usr/local"
local EXAMPLE = ROOT .. "/examples/embed"
local DOC = ROOT .. "/docs/embedding.md"

-- Shell-quote one word.
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

-- sh(script [, env [, dir]]) -> {code, out, err}: run a shell script in dir
-- (default ROOT) with extra environment words (`NAME=value`, already
-- quoted) and without the variables of an enclosing make (its jobserver).
local N = 0
local function sh(script, env, dir)
  N = N + 1
  local base = os.tmpname()
  local cmd = string.format("cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL %s sh -c %s >%s 2>%s",
    q(dir or ROOT), env or "", q(script), q(base .. ".out"), q(base .. ".err"))
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  local r = { code = code, out = slurp(base .. ".out") or "", err = slurp(base .. ".err") or "" }
  os.remove(base); os.remove(base .. ".out"); os.remove(base .. ".err")
  return r
end

-- ok(r [, what]) -> r.out, or an error showing both streams.
local function ok(r, what)
  if r.code ~= 0 then
    error(string.format("%s: exit status %s\n--- stdout\n%s--- stderr\n%s",
      what or "command", tostring(r.code), r.out, r.err), 2)
  end
  return r.out
end

local function has(text, needle)
  return text:find(needle, 1, true) ~= nil
end

local function assert_has(text, needle, what)
  if not has(text, needle) then
    error(string.format("%s does not contain %q:\n%s", what or "output", needle, text), 2)
  end
end

-- blocks(markdown) -> {{lang, text, line}}: the fenced code blocks.
local function blocks(md)
  local out, cur, n = {}, nil, 0
  for line in (md .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    if cur then
      if line == "```" then
        out[#out + 1] = cur
        cur = nil
      else
        cur.lines[#cur.lines + 1] = line
      end
    else
      local lang = line:match("^```(%w*)$")
      if lang then cur = { lang = lang, lines = {}, line = n } end
    end
  end
  for _, b in ipairs(out) do b.text = table.concat(b.lines, "\n") .. "\n" end
  return out
end

local CHM_VERSION = assert(slurp(ROOT .. "/engine/include/chameleon.h"):match(
  '#define CHM_VERSION "([^"]+)"'))

-- ---------------------------------------------------------------------------
-- The install (once) and builds of the example against it (memoized)
-- ---------------------------------------------------------------------------

local TMP, D, P -- scratch dir, DESTDIR, DESTDIR..PREFIX

local function install()
  if D then return end
  TMP = assert(io.popen("mktemp -d")):read("l")
  D = TMP .. "/root"
  P = D .. PREFIX
  ok(sh(string.format("make -s install DESTDIR=%s PREFIX=%s BUILD=%s", q(D), q(PREFIX), q(BUILD))),
    "make install")
end

-- The environment that finds the staged install with a redefined prefix.
local function pc_env()
  return "PKG_CONFIG_PATH=" .. q(P .. "/lib/pkgconfig")
end
local function pc_cmd()
  return "pkg-config --define-variable=prefix=" .. P
end

-- copy(name) -> a fresh copy of examples/embed under TMP (never build in
-- the source tree).
local function copy(name)
  local dir = TMP .. "/" .. name
  ok(sh(string.format("rm -rf %s && cp -r %s %s && rm -f %s/embed", q(dir), q(EXAMPLE), q(dir), q(dir))),
    "copy")
  return dir
end

-- build(kind) -> {dir, run = {code, out, err}}: examples/embed built
-- against the install with its Makefile (kind "shared", "static" or
-- "asan", the last static with AddressSanitizer and UBSan), warnings as
-- errors, then run on invoice.lua (the shared one with LD_LIBRARY_PATH).
local built = {}
local function build(kind)
  if built[kind] then return built[kind] end
  install()
  local dir = copy("ex-" .. kind)
  local flags = "CFLAGS='-std=c11 -O2 -g -Werror'"
  if kind == "asan" then
    flags = "CFLAGS='-std=c11 -O1 -g -Werror -fsanitize=address,undefined " ..
      "-fno-omit-frame-pointer -fno-sanitize-recover=undefined' LDFLAGS='-fsanitize=address,undefined'"
  end
  ok(sh(string.format("make LINK=%s PKG_CONFIG=%s %s", kind == "shared" and "shared" or "static",
    q(pc_cmd()), flags), pc_env(), dir), "make -C examples/embed LINK=" .. kind)
  local env = kind == "shared" and ("LD_LIBRARY_PATH=" .. q(P .. "/lib")) or ""
  if kind == "asan" then env = "ASAN_OPTIONS=detect_leaks=1" end
  built[kind] = { dir = dir, run = sh("./embed invoice.lua", env, dir) }
  return built[kind]
end

-- The output docs/embedding.md prints (its one `text` block).
local function documented_output()
  for _, b in ipairs(blocks(assert(slurp(DOC)))) do
    if b.lang == "text" then return b.text end
  end
  error("docs/embedding.md has no text block with the program's output")
end

local function cleanup()
  if TMP then os.execute("rm -rf " .. q(TMP)) end
  TMP, D, P, built = nil, nil, nil, {}
end

-- ---------------------------------------------------------------------------
-- Specs
-- ---------------------------------------------------------------------------

describe("installed chameleon", function()
  lazy_setup(install)
  lazy_teardown(cleanup)

  describe("make install", function()
    it("installs the header, both libraries, chameleon.pc, the Lua module, the CLI and the man page", function()
      local files = {
        "include/chameleon.h", "lib/libchameleon.a", "lib/libchameleon.so.0",
        "lib/libchameleon.so", "lib/pkgconfig/chameleon.pc", "lib/lua/5.4/chameleon.so",
        "bin/chameleon", "share/man/man1/chameleon.1",
      }
      local missing = {}
      for _, f in ipairs(files) do
        if sh("test -f " .. q(P .. "/" .. f)).code ~= 0 then missing[#missing + 1] = f end
      end
      assert.same({}, missing)
      assert.equal(slurp(ROOT .. "/engine/include/chameleon.h"), slurp(P .. "/include/chameleon.h"))
      assert.equal(slurp(ROOT .. "/engine/chameleon.1"), slurp(P .. "/share/man/man1/chameleon.1"))
      ok(sh("test -x " .. q(P .. "/bin/chameleon")), "bin/chameleon executable")
      -- nothing outside the prefix, nothing but these files
      local found = ok(sh("cd " .. q(P) .. " && find . ! -type d | sed 's|^\\./||' | sort"))
      table.sort(files)
      assert.equal(table.concat(files, "\n") .. "\n", found)
      assert.equal("./usr\n./usr/local\n", ok(sh("cd " .. q(D) .. " && find . -mindepth 1 -maxdepth 2")))
    end)

    it("installs libchameleon.so as a link to libchameleon.so.0, whose soname it is", function()
      assert.equal("libchameleon.so.0\n", ok(sh("readlink " .. q(P .. "/lib/libchameleon.so"))))
      local dyn = ok(sh("readelf -d " .. q(P .. "/lib/libchameleon.so.0")), "readelf")
      assert_has(dyn, "Library soname: [libchameleon.so.0]", "readelf -d")
    end)

    it("writes chameleon.pc for PREFIX, with the header's version and the private dependencies", function()
      local pc = assert(slurp(P .. "/lib/pkgconfig/chameleon.pc"))
      assert_has(pc, "\nprefix=/usr/local\n", "chameleon.pc")
      assert_has(pc, "\nlibdir=${exec_prefix}/lib\n", "chameleon.pc")
      assert_has(pc, "\nVersion: " .. CHM_VERSION .. "\n", "chameleon.pc")
      assert_has(pc, "\nRequires.private: lua5.4 sqlite3 uuid libcrypto\n", "chameleon.pc")
      assert_has(pc, "\nLibs.private: -lm -ldl -lpthread\n", "chameleon.pc")
      assert.is_nil(pc:find(D, 1, true), "DESTDIR leaked into chameleon.pc")
    end)

    it("is found by pkg-config with the prefix redefined into the DESTDIR", function()
      local out = ok(sh(pc_cmd() .. " --cflags --libs chameleon", pc_env()), "pkg-config")
      assert_has(out, "-I" .. P .. "/include ", "pkg-config --cflags --libs")
      assert_has(out, "-L" .. P .. "/lib -lchameleon", "pkg-config --cflags --libs")
      assert.equal(CHM_VERSION .. "\n", ok(sh(pc_cmd() .. " --modversion chameleon", pc_env())))
      local static = ok(sh(pc_cmd() .. " --static --libs chameleon", pc_env()), "pkg-config --static")
      for _, lib in ipairs({ "-lchameleon", "-llua5.4", "-lsqlite3", "-luuid", "-lcrypto",
                             "-lm", "-ldl", "-lpthread" }) do
        assert_has(static, lib, "pkg-config --static --libs")
      end
    end)

    it("is found by pkg-config with PKG_CONFIG_SYSROOT_DIR", function()
      local out = ok(sh("pkg-config --cflags --libs chameleon",
        pc_env() .. " PKG_CONFIG_SYSROOT_DIR=" .. q(D)), "pkg-config")
      assert_has(out, "-I" .. P .. "/include ", "pkg-config with a sysroot")
      assert_has(out, "-L" .. P .. "/lib -lchameleon", "pkg-config with a sysroot")
    end)

    it("puts the Lua module in the system's Lua 5.4 directory for PREFIX=/usr, else under PREFIX", function()
      local function target(prefix)
        local out = ok(sh(string.format("make -n install DESTDIR=/x PREFIX=%s BUILD=%s", q(prefix), q(BUILD))),
          "make -n install")
        return out:match("install %-m 755 %S+/lua/chameleon%.so (%S+)")
      end
      local cmod = ok(sh("pkg-config --variable=INSTALL_CMOD lua5.4")):gsub("\n$", "")
      assert.equal("/x" .. cmod .. "/chameleon.so", target("/usr"))
      assert.equal("/x/usr/local/lib/lua/5.4/chameleon.so", target("/usr/local"))
      assert.equal("/x/opt/chm/lib/lua/5.4/chameleon.so", target("/opt/chm"))
    end)

    it("installs a Lua module that lua5.4 loads", function()
      local lua = os.getenv("LUA") or "lua5.4"
      local code = string.format("package.cpath = %q; local c = require 'chameleon'; print(c.version)",
        P .. "/lib/lua/5.4/?.so")
      assert.equal(CHM_VERSION .. "\n", ok(sh(lua .. " -e " .. q(code)), "require 'chameleon'"))
    end)

    it("installs a CLI that runs", function()
      assert.equal("chameleon " .. CHM_VERSION .. "\n", ok(sh(q(P .. "/bin/chameleon") .. " --version")))
    end)
  end)

  describe("examples/embed against the installed library", function()
    local function assert_run(b)
      local out = ok(b.run, "./embed invoice.lua")
      assert.equal(documented_output(), out)
      assert_has(out, "INV-001  DE  net  100.00  vat  19.00  gross  119.00  FINALIZED\n")
      assert_has(out, "INV-004  XX  net   50.00  vat      -  gross       -  FAILED\n")
      assert_has(out, "skill 'vat' failed: no VAT rate for country 'XX'\n")
      assert.equal("4 of 4 invoices as expected\n", out:match("[^\n]*\n$"))
      assert.equal("", b.run.err)
    end

    it("links the shared library and runs with it", function()
      local b = build("shared")
      assert_has(ok(sh("readelf -d embed", nil, b.dir)), "Shared library: [libchameleon.so.0]",
        "readelf -d embed")
      local ldd = ok(sh("ldd embed", "LD_LIBRARY_PATH=" .. q(P .. "/lib"), b.dir))
      assert_has(ldd, "libchameleon.so.0 => " .. P .. "/lib/libchameleon.so.0", "ldd embed")
      assert_run(b)
    end)

    it("links the static library and runs without libchameleon.so", function()
      local b = build("static")
      assert.is_nil(ok(sh("readelf -d embed", nil, b.dir)):find("libchameleon", 1, true),
        "the static build needs libchameleon.so")
      assert_run(b)
    end)

    it("runs clean under AddressSanitizer and UBSan, leaks included", function()
      assert_run(build("asan"))
    end)

    it("runs clean under valgrind (scripts/deps.sh installs it)", function()
      assert(sh("command -v valgrind").code == 0,
        "valgrind is not installed: run scripts/deps.sh")
      local b = build("static")
      local r = sh("valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible " ..
        "--error-exitcode=99 ./embed invoice.lua", nil, b.dir)
      ok(r, "valgrind ./embed")
      assert.equal("", r.err)
    end)

    it("reports a bad workflow file with the library's messages and exits 1", function()
      local b = build("static")
      local r = sh("./embed nope.lua", nil, b.dir)
      assert.equal(1, r.code)
      assert.equal("embed: import: IO (file could not be read or written): " ..
        "nope.lua: cannot read: No such file or directory\n", r.err)
      assert_has(r.out, "0 of 4 invoices as expected\n")
    end)
  end)

  describe("docs/embedding.md", function()
    -- Each block of `lang` must be a verbatim excerpt of one of `files`.
    local function quoted(lang, files)
      local texts, n = {}, 0
      for i, f in ipairs(files) do texts[i] = assert(slurp(f), f) end
      for _, b in ipairs(blocks(assert(slurp(DOC)))) do
        if b.lang == lang then
          n = n + 1
          local found = false
          for _, t in ipairs(texts) do found = found or has(t, b.text) end
          if not found then
            error(string.format("docs/embedding.md:%d: this %s block is not quoted from %s:\n%s",
              b.line, lang, table.concat(files, " or "), b.text), 2)
          end
        end
      end
      assert.is_true(n > 0, "no " .. lang .. " blocks")
    end

    it("quotes its C from examples/embed/embed.c and the installed chameleon.h", function()
      quoted("c", { EXAMPLE .. "/embed.c", P .. "/include/chameleon.h" })
    end)

    it("quotes its Lua from examples/embed/invoice.lua", function()
      quoted("lua", { EXAMPLE .. "/invoice.lua" })
    end)

    it("quotes its make from examples/embed/Makefile", function()
      quoted("make", { EXAMPLE .. "/Makefile" })
    end)

    it("has only blocks the spec checks", function()
      for _, b in ipairs(blocks(assert(slurp(DOC)))) do
        assert.truthy(({ c = 1, lua = 1, make = 1, sh = 1, text = 1 })[b.lang],
          "docs/embedding.md:" .. b.line .. ": unchecked block ```" .. b.lang)
      end
    end)

    -- Shell blocks run in a copy of examples/embed with D set to the DESTDIR.
    -- A block that does not mention $D is written for a real install: it
    -- gets pkg-config and the dynamic linker pointed into the DESTDIR. The
    -- install block itself is what lazy_setup did. A block that builds
    -- ./embed without running it gets it run.
    it("has shell blocks that work against the install", function()
      local n = 0
      for i, b in ipairs(blocks(assert(slurp(DOC)))) do
        if b.lang == "sh" and not has(b.text, "make install") then
          n = n + 1
          local dir = copy("doc-" .. i)
          local env = "D=" .. q(D) .. " LD_LIBRARY_PATH=" .. q(P .. "/lib")
          if not has(b.text, "$D") then
            env = env .. " " .. pc_env() .. " PKG_CONFIG_SYSROOT_DIR=" .. q(D)
          end
          local script = "set -e\n" .. b.text
          if not has(b.text, "./embed") then
            script = script .. "if [ -e embed ]; then ./embed invoice.lua; fi\n"
          end
          local r = sh(script, env, dir)
          if r.code ~= 0 then
            error(string.format("docs/embedding.md:%d: shell block failed (%d)\n%s--- stdout\n%s--- stderr\n%s",
              b.line, r.code, b.text, r.out, r.err))
          end
          if sh("test -e embed", nil, dir).code == 0 then
            assert_has(r.out, "4 of 4 invoices as expected\n", "docs/embedding.md:" .. b.line)
          end
        end
      end
      assert.is_true(n >= 3, "expected at least 3 runnable shell blocks, found " .. n)
    end)

    it("prints the program's real output", function()
      assert.equal(ok(build("shared").run), documented_output())
    end)
  end)
end)
