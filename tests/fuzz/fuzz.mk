# tests/fuzz/fuzz.mk: libFuzzer targets (FAULTS.md item 43), included by
# the top-level Makefile, which provides WARN, ALL_CPPFLAGS and LIBS.
#
#   make fuzz-build    build every target into build/fuzz/
#   make fuzz          fuzz each target in turn for FUZZ_SECONDS seconds
#   make fuzz-replay   run each target once over its seeds and regressions
#
# The targets get their own objects of lib/*.c, built for libFuzzer with
# ASan and UBSan, so they never mix with build/ or build/san.  `fuzz`
# starts from tests/fuzz/seeds/<target>/ and the shared corpus, keeps what
# it finds in build/fuzz/corpus/<target>/ (libFuzzer writes only to the
# first directory it is given) and leaves a crashing input in
# build/fuzz/crash/<target>/; copied into tests/fuzz/regress/<target>/, it
# becomes a regression test of `fuzz-replay`.  One fuzzer runs at a time,
# whatever -j says: each recipe is a single shell loop.

FUZZ_CC      = clang
FUZZ_B       = build/fuzz
FUZZ_SECONDS ?= 30
FUZZ_TIMEOUT ?= 10
FUZZ_RSS_MB  ?= 2048
FUZZ_SHARED  ?= $(or $(SHARED),../shared)/corpus
FUZZ_TARGETS = ndjson xml sigv4 sns retry_after

# Each target's folders of the shared corpus.
FUZZ_SHARED_ndjson      = json
FUZZ_SHARED_xml         = vendor/aws-ec2 vendor/aws-iam
FUZZ_SHARED_sigv4       = sigv4
FUZZ_SHARED_sns         = vendor/aws-sns
FUZZ_SHARED_retry_after =

FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  = $(WARN) -pthread -g -O1 -fno-omit-frame-pointer -MMD -MP
FUZZ_LIB_CFLAGS = $(FUZZ_CFLAGS)
FUZZ_LIB_SRC = $(sort $(wildcard lib/*.c))
FUZZ_LIB_OBJ = $(FUZZ_LIB_SRC:%.c=$(FUZZ_B)/obj/%.o)
FUZZ_BINS    = $(FUZZ_TARGETS:%=$(FUZZ_B)/fuzz_%)
FUZZ_ENV     = ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
               UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# A target's own environment: fuzz_xml hands libjq text it refuses, and
# libjq 1.6 leaks on some of it (see the file).
FUZZ_ENV_xml = LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan-libjq.supp

.PHONY: fuzz fuzz-build fuzz-replay

fuzz-build: $(FUZZ_BINS)

$(FUZZ_B)/obj/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_LIB_CFLAGS) $(FUZZ_SAN) \
		-fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_B)/obj/tests/fuzz/%.o: tests/fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(ALL_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SAN) \
		-fsanitize=fuzzer -c -o $@ $<

# An archive, so that a target links only the modules it calls (fuzz_xml.c
# holds a copy of lib/awscreds.c, whose object is then never pulled in).
$(FUZZ_B)/libsoar.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	$(AR) rcs $@ $(FUZZ_LIB_OBJ)

$(FUZZ_B)/fuzz_%: $(FUZZ_B)/obj/tests/fuzz/fuzz_%.o $(FUZZ_B)/libsoar.a
	$(FUZZ_CC) -pthread -g $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_B)/libsoar.a $(LIBS)

# $(call fuzz_dirs,TARGET): its seeds and its shared corpus folders.
fuzz_dirs = tests/fuzz/seeds/$(1) \
	$(addprefix $(FUZZ_SHARED)/,$(FUZZ_SHARED_$(1)))

# $(call fuzz_run,TARGET): one fuzzing session.  A failure adds the target
# to $failed and names the input libFuzzer saved.
define fuzz_run
	echo "fuzz: $(1) for $(FUZZ_SECONDS) s"; \
	for d in $(call fuzz_dirs,$(1)); do \
		[ -d "$$d" ] || { echo "fuzz: $(1): no corpus $$d"; exit 2; }; \
	done; \
	mkdir -p $(FUZZ_B)/corpus/$(1) $(FUZZ_B)/crash/$(1); \
	touch $(FUZZ_B)/crash/$(1)/.start; \
	if ! $(FUZZ_ENV) $(FUZZ_ENV_$(1)) $(FUZZ_B)/fuzz_$(1) \
		-max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) \
		-rss_limit_mb=$(FUZZ_RSS_MB) -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_B)/crash/$(1)/ \
		$(FUZZ_B)/corpus/$(1) $(call fuzz_dirs,$(1)); then \
		failed="$$failed $(1)"; \
		echo "fuzz: $(1) FAILED; input:" $$(find $(FUZZ_B)/crash/$(1) \
			-type f -newer $(FUZZ_B)/crash/$(1)/.start); \
	fi;
endef

fuzz: fuzz-build
	@failed=; \
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_run,$(t))) \
	if [ -n "$$failed" ]; then echo "fuzz: FAILED:$$failed"; exit 1; fi; \
	echo "fuzz: no failure in $(words $(FUZZ_TARGETS)) targets"

# $(call fuzz_replay,TARGET): runs the target once on each seed and
# regression input; libFuzzer only executes the files named on its
# command line.  The output is shown when it fails.
define fuzz_replay
	files=$$(find tests/fuzz/seeds/$(1) tests/fuzz/regress/$(1) \
		-type f 2>/dev/null | sort); \
	if [ -z "$$files" ]; then \
		echo "fuzz-replay: $(1): no inputs"; failed="$$failed $(1)"; \
	elif ! $(FUZZ_ENV) $(FUZZ_ENV_$(1)) $(FUZZ_B)/fuzz_$(1) \
		-timeout=$(FUZZ_TIMEOUT) -rss_limit_mb=$(FUZZ_RSS_MB) $$files \
		>$(FUZZ_B)/replay-$(1).log 2>&1; then \
		failed="$$failed $(1)"; \
		tail -n 40 $(FUZZ_B)/replay-$(1).log; \
		echo "fuzz-replay: $(1) FAILED (log: $(FUZZ_B)/replay-$(1).log)"; \
	else \
		echo "fuzz-replay: $(1): $$(echo "$$files" | wc -l) inputs ok"; \
	fi;
endef

fuzz-replay: fuzz-build
	@failed=; \
	$(foreach t,$(FUZZ_TARGETS),$(call fuzz_replay,$(t))) \
	if [ -n "$$failed" ]; then echo "fuzz-replay: FAILED:$$failed"; \
		exit 1; fi

-include $(wildcard $(FUZZ_B)/obj/lib/*.d $(FUZZ_B)/obj/tests/fuzz/*.d)
