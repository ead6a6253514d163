# oialr — build, tests, demo, benchmarks, install.
#
#   make demo      install what is missing, build, train + record + analyse + plot
#   make check     install what is missing, build, run every test (plain,
#                  ASan+UBSan, TSan: docs/sanitizers.md)
#   make valgrind  a short train + record + analyze under memcheck
#   make bench     benchmarks against PyTorch / numpy / the sgemm ceiling
#   make results   long accuracy runs (docs/results.md)
#   make fuzz      libFuzzer targets for FUZZ_SECONDS each (docs/fuzzing.md)
#   make install   PREFIX=/usr/local DESTDIR=
#
# Options: WERROR=1, SANITIZER=address|undefined|address,undefined|thread, V=1,
# DEBUG=1. The user's CFLAGS/LDFLAGS are appended last and never replaced.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
PKG_CONFIG ?= pkg-config
OBJCOPY ?= objcopy

DEPS_PKGS := openblas lapacke hdf5 zlib
STD   := -std=c11 -D_GNU_SOURCE
WARN  := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2
OPT   := -O2 -g -fno-math-errno -fno-trapping-math -fvect-cost-model=cheap
ifeq ($(DEBUG),1)
OPT   := -O0 -g
endif
ifeq ($(WERROR),1)
WARN  += -Werror
endif
# The conv and attention kernels only: multiply-adds fused into FMA
# instructions. Their accumulators are independent, so the FMA's latency is
# hidden and the vector ports do half the work: on an AVX-512 Xeon
# (2026-12-03, docs/bench.md) the direct 3x3 convs went from 40-47% to 47-60%
# of sgemm and CNN training 1.27x faster (median of 6 alternating pairs); the
# lane attention kernel had every multiply-add as vmulps + vaddps without it,
# and so would dense.c's small-width kernel (its sgemm calls are OpenBLAS's).
# Not for the whole library: the per-head attention's dot-product chains got
# slower with FMA (AVX2 EPYC, 2026-12-02; it now serves HS = 48 and 64 only)
# and the MLP path is OpenBLAS anyway. The list is in the flags stamp, so a
# change to it rebuilds.
CONTRACT := -ffp-contract=fast
CONTRACT_OBJS = $(BUILD)/lib/nn/conv.o $(BUILD)/lib/nn/attention.o $(BUILD)/lib/nn/dense.o

# Sanitizers (docs/sanitizers.md): every report is fatal, at build time
# (no recovery) and at run time (SAN_ENV, set for every test run).
comma := ,
SAN_FLAGS :=
ifneq ($(SANITIZER),)
ifeq ($(SANITIZER),thread)
# no target_clones (lib/base/hot.h): their ifunc resolvers run, instrumented,
# while the dynamic loader relocates, before TSan's runtime is up (SIGSEGV)
SAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer -DOIALR_NO_CLONES
else ifeq ($(filter-out address undefined,$(subst $(comma), ,$(SANITIZER))),)
SAN_FLAGS := -fsanitize=$(SANITIZER) -fno-sanitize-recover=all -fno-omit-frame-pointer
else
$(error SANITIZER must be address, undefined, address,undefined or thread (got '$(SANITIZER)'))
endif
endif
# The user's own *SAN_OPTIONS come last and win.
SAN_ENV := ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:$$ASAN_OPTIONS" \
	UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:$$UBSAN_OPTIONS" \
	TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp:$$TSAN_OPTIONS"

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(DEPS_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(DEPS_PKGS) 2>/dev/null)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)
# MPI (docs/distributed.md): compiled into the CLI's tools/mpi.c only, never
# into the library (tests/check_symbols.sh)
MPI_CFLAGS := $(shell $(PKG_CONFIG) --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell $(PKG_CONFIG) --libs ompi-c 2>/dev/null)

FINAL_CFLAGS  = $(STD) $(WARN) $(OPT) $(SAN_FLAGS) -fPIC -fvisibility=hidden -pthread -Ilib -Ianalysis -Itools $(PKG_CFLAGS) -MMD -MP $(CFLAGS)
FINAL_LDFLAGS = $(SAN_FLAGS) -pthread $(LDFLAGS)
FINAL_LIBS    = $(PKG_LIBS) -lm $(LIBS)

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRCS   := $(sort $(wildcard lib/*/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/%.o)
ANA_SRCS   := $(sort $(wildcard analysis/*.c))
ANA_OBJS   := $(ANA_SRCS:%.c=$(BUILD)/%.o)
TOOL_SRCS  := $(sort $(wildcard tools/*.c))
TOOL_OBJS  := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS  := $(sort $(wildcard tests/check_*.c))
TEST_BINS  := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_UTIL  := $(sort $(wildcard tests/util_*.c))
TEST_UOBJS := $(TEST_UTIL:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(sort $(wildcard tests/bench/*.c))
BENCH_BINS := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%)

VERSION    := $(shell sed -n 's/^\#define OIALR_VERSION_STRING "\(.*\)"/\1/p' lib/oialr/base.h)
STATIC_LIB := $(BUILD)/liboialr.a
# the same objects with their internal names global, for the CLI, analysis/,
# tests and benchmarks (docs/api.md)
INT_LIB    := $(BUILD)/liboialr-internal.a
SHARED_LIB := $(BUILD)/liboialr.so.$(word 1,$(subst ., ,$(VERSION)))
CLI        := $(BUILD)/oialr

.PHONY: all deps check check-plain check-asan check-tsan valgrind demo bench results install uninstall clean \
	_check _check_tsan _valgrind _demo _bench _results tests
# keep the test helpers' objects between builds
.SECONDARY:
.DEFAULT_GOAL := all

all: $(STATIC_LIB) $(SHARED_LIB) $(INT_LIB) $(CLI)

# --- set-up: find or install what is missing (tools/deps.sh) ---------------
deps:
	$(Q)sh tools/deps.sh

# The real work runs in a second make so that pkg-config is read after deps.
#
# make check: the suite as built (BUILD), again under ASan+UBSan
# (ASAN_BUILD), and the threaded tests under TSan (TSAN_BUILD), each pass
# with its own summary line, then the total (docs/sanitizers.md). With
# SANITIZER given, only that pass, in BUILD. check-plain, check-asan and
# check-tsan run one pass each.
ASAN_BUILD ?= $(BUILD)-asan
TSAN_BUILD ?= $(BUILD)-tsan
# the tests with threads of their own: the recorder's writer (check_record),
# the OIALR checks' workers and nn_parallel's shares (check_oialr), the
# analyzer's engine (check_analyze). check_engine, check_layers and
# check_lowrank run nn_parallel too but take minutes under TSan: add them
# with TSAN_TESTS=... (docs/sanitizers.md).
TSAN_TESTS ?= check_record check_oialr check_analyze
# dependencies of the tests, not of the demo, each used in the plain pass
# only: tests/check_python runs tests/python/test_oialr.py with Debian's
# python3, CPU torch and pandas (the README's example calls dataframe());
# tests/check_report opens a report in headless Chromium
CHECK_DEPS := python3-torch python3-pandas chromium
SUB := --no-print-directory
check: deps
	$(Q)OIALR_DEPS_EXTRA="$${OIALR_DEPS_EXTRA:-} $(CHECK_DEPS)" sh tools/deps.sh
ifeq ($(SANITIZER),)
	$(Q)rm -f $(BUILD)/tests/summary $(ASAN_BUILD)/tests/summary $(TSAN_BUILD)/tests/summary
	$(Q)$(MAKE) $(SUB) _check
	$(Q)$(MAKE) $(SUB) BUILD=$(ASAN_BUILD) SANITIZER=address,undefined _check
	$(Q)$(MAKE) $(SUB) BUILD=$(TSAN_BUILD) SANITIZER=thread _check_tsan
	$(Q)cat $(BUILD)/tests/summary $(ASAN_BUILD)/tests/summary $(TSAN_BUILD)/tests/summary | \
	    awk '{p += $$1; f += $$2} END {printf "tests: %d passed, %d failed (all passes)\n", p, f; exit f > 0}'
else
	$(Q)$(MAKE) $(SUB) _check
endif
check-plain: deps
	$(Q)OIALR_DEPS_EXTRA="$${OIALR_DEPS_EXTRA:-} $(CHECK_DEPS)" sh tools/deps.sh
	$(Q)$(MAKE) $(SUB) SANITIZER= _check
check-asan: deps
	$(Q)$(MAKE) $(SUB) BUILD=$(ASAN_BUILD) SANITIZER=address,undefined _check
check-tsan: deps
	$(Q)$(MAKE) $(SUB) BUILD=$(TSAN_BUILD) SANITIZER=thread _check_tsan
demo: deps
	$(Q)$(MAKE) --no-print-directory _demo
bench: deps
	$(Q)$(MAKE) --no-print-directory _bench
results: deps
	$(Q)$(MAKE) --no-print-directory _results

tests: $(TEST_BINS)

# check_mpi runs mpirun: plain pass only (OpenMPI under ASan/TSan reports
# its own allocations and races; docs/distributed.md)
PLAIN_ONLY := check_mpi
CHECK_BINS = $(if $(SANITIZER),$(filter-out $(PLAIN_ONLY:%=$(BUILD)/tests/%),$(TEST_BINS)),$(TEST_BINS))
_check: all $(CHECK_BINS)
	$(Q)$(SAN_ENV) sh tests/run.sh $(BUILD) $(CHECK_BINS) tests/check_symbols.sh

# OpenBLAS's threads stay on: their false positives are suppressed
# (tests/tsan.supp), and the tests set the BLAS thread count themselves
_check_tsan: all $(TSAN_TESTS:%=$(BUILD)/tests/%)
	$(Q)$(SAN_ENV) sh tests/run.sh $(BUILD) $(TSAN_TESTS:%=$(BUILD)/tests/%)

# make valgrind: a short train + record + analyze under memcheck
# (tests/valgrind.sh, docs/sanitizers.md); installs valgrind if missing
valgrind:
	$(Q)OIALR_DEPS_EXTRA="$${OIALR_DEPS_EXTRA:-} valgrind" sh tools/deps.sh
	$(Q)$(MAKE) $(SUB) _valgrind
_valgrind: all
	$(Q)sh tests/valgrind.sh $(BUILD)

_demo: all
	$(Q)sh tools/demo.sh $(BUILD)

_bench: all $(BENCH_BINS)
	$(Q)sh tests/bench/run.sh $(BUILD)

_results: all
	$(Q)sh tools/results.sh $(BUILD)

# --- compile ----------------------------------------------------------------
# Objects depend on the flags too: a changed OPT, SANITIZER or CFLAGS
# rewrites this stamp, and everything is compiled again (a new optimization
# flag in this Makefile otherwise reached no object that was already built).
FLAGS_STAMP := $(BUILD)/.flags
FLAGS_TEXT   = $(CC) $(STD) $(WARN) $(OPT) $(SAN_FLAGS) $(CFLAGS) $(CONTRACT) $(CONTRACT_OBJS)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(FLAGS_TEXT)' | cmp -s - $@ || echo '$(FLAGS_TEXT)' > $@
FORCE:
.PHONY: FORCE

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(FINAL_CFLAGS) -c $< -o $@
# private: not inherited by the prerequisites, whose flags stamp must read the same
# whichever object asks for it first
$(CONTRACT_OBJS): private OPT += $(CONTRACT)

# The installed archive is one relocatable object whose hidden symbols are
# made local, so that only the OIALR_API names can clash with a user's
# (docs/api.md; tests/check_symbols.sh checks it).
$(STATIC_LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ $(@:.a=.o) && $(LD) -r -o $(@:.a=.o) $^ && $(OBJCOPY) --localize-hidden $(@:.a=.o) && \
		$(AR) rcs $@ $(@:.a=.o) && rm -f $(@:.a=.o)

$(INT_LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-soname,liboialr.so.$(word 1,$(subst ., ,$(VERSION))) $(FINAL_LDFLAGS) -o $@ $^ $(FINAL_LIBS)
	$(Q)ln -sf $(notdir $@) $(BUILD)/liboialr.so

$(CLI): $(TOOL_OBJS) $(ANA_OBJS) $(INT_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(FINAL_LDFLAGS) -o $@ $(TOOL_OBJS) $(ANA_OBJS) $(INT_LIB) $(FINAL_LIBS)

$(BUILD)/tools/mpi.o: PKG_CFLAGS += $(MPI_CFLAGS)
$(CLI): PKG_LIBS += $(MPI_LIBS)

# analysis/ holds the analyze and plot commands, which parse their flags
# with tools/cli.c: whatever links analysis/ links that too
ANA_LINK := $(ANA_OBJS) $(BUILD)/tools/cli.o

$(BUILD)/tests/%: tests/%.c $(TEST_UOBJS) $(ANA_LINK) $(INT_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(FINAL_CFLAGS) $(CHECK_CFLAGS) -Itests -o $@ $< $(TEST_UOBJS) $(ANA_LINK) $(INT_LIB) $(FINAL_LDFLAGS) $(CHECK_LIBS) $(FINAL_LIBS)

$(BUILD)/bench/%: tests/bench/%.c $(ANA_LINK) $(INT_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BENCH   $@")
	$(Q)$(CC) $(FINAL_CFLAGS) -o $@ $< $(ANA_LINK) $(INT_LIB) $(FINAL_LDFLAGS) $(FINAL_LIBS)

# --- fuzz: libFuzzer targets (tests/fuzz/, docs/fuzzing.md) -----------------
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="idx traj"]
# builds every tests/fuzz/fuzz_<target>.c with clang -fsanitize=fuzzer,
# address,undefined (the library too) into $(FUZZ_BUILD)/, runs each for
# FUZZ_SECONDS on a copy of its seed corpus (new inputs and crashes stay in
# $(FUZZ_BUILD)/), and fails if one crashes. make check replays the seeds
# and tests/fuzz/crashes/ through the same sources (tests/check_fuzz.c).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SAN     := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(BUILD)/fuzz/fuzz_%)
# the objects every target links besides the library: its helpers, and
# the commands whose flags fuzz_cli parses (not tools/oialr.c: its main)
FUZZ_LINK    := $(BUILD)/tests/fuzz/util.o $(BUILD)/tools/cmd_train.o $(ANA_LINK)
FUZZ_REPLAY  := $(FUZZ_ALL:%=$(BUILD)/tests/fuzz/replay_%.o)
# cmd_train.o calls tools/mpi.c (which starts MPI only under mpirun)
FUZZ_LINK    += $(BUILD)/tools/mpi.o
$(FUZZ_BINS) $(BUILD)/tests/check_fuzz: PKG_LIBS += $(MPI_LIBS)

.PHONY: fuzz _fuzz
fuzz:
	$(Q)OIALR_DEPS_EXTRA="$(OIALR_DEPS_EXTRA) clang libclang-rt-14-dev" sh tools/deps.sh
	$(Q)$(MAKE) --no-print-directory _fuzz BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) SANITIZER= \
		OPT="-O1 -g -Wno-string-plus-int" SAN_FLAGS="$(FUZZ_SAN)" FUZZ_TARGETS="$(FUZZ_TARGETS)"

_fuzz: $(FUZZ_BINS)
	$(Q)sh tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LINK) $(INT_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/fuzz -fsanitize=fuzzer -o $@ $< $(FUZZ_LINK) $(INT_LIB) $(FINAL_LDFLAGS) $(FINAL_LIBS)

# the Check replay: each target's entry point renamed to a plain function
$(BUILD)/tests/fuzz/replay_%.o: tests/fuzz/fuzz_%.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $< (replay)")
	$(Q)$(CC) $(FINAL_CFLAGS) -Itests/fuzz -DLLVMFuzzerTestOneInput=fuzz_replay_$* -c $< -o $@

$(BUILD)/tests/check_fuzz: tests/check_fuzz.c $(FUZZ_REPLAY) $(FUZZ_LINK) $(TEST_UOBJS) $(INT_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  TEST    $@")
	$(Q)$(CC) $(FINAL_CFLAGS) $(CHECK_CFLAGS) -Itests -Itests/fuzz -o $@ $< $(FUZZ_REPLAY) $(FUZZ_LINK) $(TEST_UOBJS) $(INT_LIB) $(FINAL_LDFLAGS) $(CHECK_LIBS) $(FINAL_LIBS)

-include $(FUZZ_REPLAY:.o=.d) $(BUILD)/tests/fuzz/util.d

# --- install ----------------------------------------------------------------
PUB_HEADERS := $(sort $(wildcard lib/oialr/*.h))

# The Python module (tools/python/oialr, docs/python.md) goes where Debian's
# python3 looks: /usr/lib/python3/dist-packages for PREFIX=/usr, else
# PREFIX/lib/python3.X/dist-packages (Debian's site.py; /usr/local/lib/
# python3/dist-packages is not on its path). PYTHON_SITE=DIR overrides.
PY_SRCS     := $(sort $(wildcard tools/python/oialr/*.py))
PYTHON_SITE ?= $(shell $(PYTHON) -c 'import sys; p = "$(PREFIX)"; print(p + ("/lib/python3/dist-packages" if p == "/usr" else "/lib/python%d.%d/dist-packages" % sys.version_info[:2]))' 2>/dev/null)

.PHONY: install-python uninstall-python
install-python:
	@test -n "$(PYTHON_SITE)" || { echo "install: $(PYTHON) not found: set PYTHON_SITE=DIR" >&2; exit 1; }
	install -d $(DESTDIR)$(PYTHON_SITE)/oialr
	install -m 644 $(PY_SRCS) $(DESTDIR)$(PYTHON_SITE)/oialr/
	@echo "install: the Python module oialr is in $(DESTDIR)$(PYTHON_SITE)/oialr (import oialr; python3 -m oialr)"

uninstall-python:
	rm -rf $(DESTDIR)$(PYTHON_SITE)/oialr

install: all install-python
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/oialr $(DESTDIR)$(PREFIX)/bin
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SHARED_LIB)) $(DESTDIR)$(PREFIX)/lib/liboialr.so
	install -m 644 lib/oialr.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(PUB_HEADERS) $(DESTDIR)$(PREFIX)/include/oialr/
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' tools/oialr.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/oialr.pc

uninstall: uninstall-python
	rm -f $(DESTDIR)$(PREFIX)/lib/liboialr.a $(DESTDIR)$(PREFIX)/lib/liboialr.so $(DESTDIR)$(PREFIX)/lib/$(notdir $(SHARED_LIB))
	rm -f $(DESTDIR)$(PREFIX)/include/oialr.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/oialr.pc $(DESTDIR)$(PREFIX)/bin/oialr
	rm -rf $(DESTDIR)$(PREFIX)/include/oialr

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(ANA_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(TEST_UOBJS:.o=.d)
