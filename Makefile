# Makefile — builds libchameleon (static and shared), the chameleon CLI and
# the Lua module; runs tests, the demo, the benchmark and sanitizer builds.
# Settings first; `make V=1` shows the commands.

# ---- settings --------------------------------------------------------------
CC       ?= cc
PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
LUA      ?= lua5.4
BUSTED   ?= busted
PKGS     := lua5.4 sqlite3 uuid libcrypto
OPT      ?= -O2 -g
WARN     := -Wall -Wextra -Wshadow -Wmissing-prototypes -Wstrict-prototypes \
            -Wpointer-arith -Wformat=2 -Wundef -Wno-unused-parameter -Werror
CPPFLAGS += -Iengine/include -Iengine/src -I$(BUILD)/gen -D_GNU_SOURCE \
            $(shell pkg-config --cflags $(PKGS))
CFLAGS   += -std=c11 $(OPT) -fPIC $(WARN) -MMD -MP
LIBS     := $(shell pkg-config --libs sqlite3 uuid libcrypto) -lm -ldl -lpthread
LUALIB   := $(shell pkg-config --libs lua5.4)
# Lua C module dir: the system's (Debian: /usr/lib/<triplet>/lua/5.4) when
# PREFIX is /usr, else $(PREFIX)/lib/lua/5.4 (docs/embedding.md).
LUA_CMOD ?= $(or $(if $(filter /usr,$(PREFIX)),$(shell pkg-config --variable=INSTALL_CMOD lua5.4 2>/dev/null)),$(PREFIX)/lib/lua/5.4)

ifeq ($(V),1)
Q :=
else
Q := @
endif

# ---- sources ---------------------------------------------------------------
LIB_SRC  := $(sort $(wildcard engine/src/*.c))
CLI_SRC  := $(sort $(wildcard engine/cli/*.c))
LUA_SRC  := $(sort $(wildcard lua/*.lua))
SQL_SRC  := $(sort $(wildcard sql/common/*.sql sql/meta/*.sql sql/instance/*.sql))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/embedded.o
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
CTEST_SRC := $(sort $(wildcard tests/c/test_*.c))
CTEST_BIN := $(CTEST_SRC:tests/c/%.c=$(BUILD)/tests/%)

STATIC   := $(BUILD)/libchameleon.a
SHARED   := $(BUILD)/libchameleon.so
CLI      := $(BUILD)/chameleon
MODULE   := $(BUILD)/lua/chameleon.so

# ---- targets ---------------------------------------------------------------
# all: the libraries, the CLI and the Lua module. Run it after any change.
all: $(STATIC) $(SHARED) $(CLI) $(MODULE)

$(BUILD)/embed: engine/tools/embed.c
	@mkdir -p $(@D)
	$(Q)$(CC) -O1 -o $@ $<

$(BUILD)/gen/embedded.c: $(BUILD)/embed $(LUA_SRC) $(SQL_SRC)
	@mkdir -p $(@D)
	$(Q)$(BUILD)/embed $@ $(LUA_SRC) $(SQL_SRC)

$(BUILD)/gen/embedded.o: $(BUILD)/gen/embedded.c
	$(Q)$(CC) $(CPPFLAGS) -std=c11 $(OPT) -fPIC -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(STATIC): $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(Q)$(CC) $(LDFLAGS) -shared -Wl,-soname,libchameleon.so.0 -o $@ $^ $(LIBS) $(LUALIB)

$(CLI): $(CLI_OBJ) $(STATIC)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(STATIC) $(LIBS) $(LUALIB) $(shell pkg-config --libs readline 2>/dev/null || echo -lreadline)

# The Lua module: the library's objects without liblua (the host provides it).
$(MODULE): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(Q)$(CC) -shared -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/c/%.c $(STATIC)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS) $(LUALIB)

# ctests: the C test binaries only (make test and make asan build them).
ctests: $(CTEST_BIN)

# lint: luacheck over every Lua file we write (.luacheckrc); part of test.
lint:
	$(Q)luacheck -q lua tests workflows bench examples

# test: every suite (C, Lua module, CLI); ends with "N passed, N failed".
test: all $(CTEST_BIN) lint
	$(Q)BUILD=$(BUILD) LUA=$(LUA) BUSTED=$(BUSTED) sh tests/run.sh

# asan: the whole test suite under AddressSanitizer and UBSan.
asan: all
	$(Q)$(MAKE) BUILD=build-asan OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" all ctests
	$(Q)BUILD=build-asan LUA=$(LUA) BUSTED=$(BUSTED) sh tests/run.sh c cli

# demo: import and run the reference workflows on a store in a temp dir.
demo: all
	$(Q)BUILD=$(BUILD) sh examples/demo.sh

# bench: the engine against its plain-SQLite ceiling, checkout latency and
# guardian cost (docs/PERFORMANCE.md); run after changes to a move's path.
bench: all $(BUILD)/bench/chm_bench $(BUILD)/bench/ceiling
	$(Q)BUILD=$(BUILD) LUA=$(LUA) sh bench/run.sh

$(BUILD)/bench/chm_bench: bench/bench.c $(STATIC)
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS) $(LUALIB)

# The ceiling links SQLite and libcrypto only, never the engine.
$(BUILD)/bench/ceiling: bench/ceiling.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(shell pkg-config --cflags sqlite3 libcrypto) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs sqlite3 libcrypto)

.PHONY: bench

# install: header, static and shared libraries, chameleon.pc, CLI and man
# page under $(DESTDIR)$(PREFIX); the Lua module under $(DESTDIR)$(LUA_CMOD).
install: all
	@$(if $(Q),echo "  INSTALL $(DESTDIR)$(PREFIX)")
	$(Q)install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(LUA_CMOD)
	$(Q)install -m 644 engine/include/chameleon.h $(DESTDIR)$(PREFIX)/include/
	$(Q)install -m 644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	$(Q)install -m 755 $(SHARED) $(DESTDIR)$(PREFIX)/lib/libchameleon.so.0
	$(Q)ln -sf libchameleon.so.0 $(DESTDIR)$(PREFIX)/lib/libchameleon.so
	$(Q)install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	$(Q)install -m 644 engine/chameleon.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	$(Q)install -m 755 $(MODULE) $(DESTDIR)$(LUA_CMOD)/chameleon.so
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' \
	  -e "s|@VERSION@|$$(sed -n 's/^#define CHM_VERSION "\(.*\)"/\1/p' engine/include/chameleon.h)|g" \
	  engine/chameleon.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/chameleon.pc

# clean: remove every build product.
clean:
	rm -rf build build-asan

.PHONY: all ctests lint test asan demo install clean

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(CTEST_BIN:=.d)
