# The common commands, wrapping CMake. `make run` and `make test` are the README's two commands:
# each installs what it needs (Debian packages, idempotently) and works offline after that.

JOBS ?= $(shell nproc)
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo Ninja || echo "Unix Makefiles")
SOURCES = $(shell git ls-files --cached --others --exclude-standard -- \
            'include/*.h' 'src/*.h' 'src/*.cc' 'tests/*.h' 'tests/*.cc' 'bench/*.cc' 'fuzz/*.cc' \
            2>/dev/null | while read -r f; do [ -f "$$f" ] && echo "$$f"; done)
CLANG_FORMAT := $(shell command -v clang-format-14 || command -v clang-format)

.PHONY: deps release run test debug bench fuzz format format-check clean

deps:
	@./scripts/install-deps.sh

# An optimized build of the lockstep binary.
release: deps
	@cmake -S . -B build/release -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Release \
	  -DLOCKSTEP_BUILD_TESTS=OFF >/dev/null
	@cmake --build build/release -j $(JOBS) --target lockstep

# The main job on the embedded default: two SQLite databases edited on both sides, kept equal.
run: release
	@./examples/demo.sh

# Everything the tests need, built with AddressSanitizer and UBSan and warnings as errors, then
# every test through ctest, then the formatting check and a short fuzzing run of every decoder.
test: deps
	@cmake -S . -B build/asan -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug \
	  -DLOCKSTEP_SANITIZE=ON -DLOCKSTEP_WERROR=ON >/dev/null
	@cmake --build build/asan -j $(JOBS)
	@cd build/asan && ctest --output-on-failure -j $(JOBS) --timeout 600
	@$(MAKE) --no-print-directory format-check
	@if command -v clang++ >/dev/null 2>&1; then $(MAKE) --no-print-directory fuzz; fi

# A plain debug build, for gdb.
debug: deps
	@cmake -S . -B build/debug -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Debug >/dev/null
	@cmake --build build/debug -j $(JOBS)

# Benchmarks: separate from the tests; see docs/BENCHMARKS.md for how to read them.
bench: deps
	@cmake -S . -B build/bench -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=Release \
	  -DLOCKSTEP_BUILD_BENCH=ON -DLOCKSTEP_BUILD_TESTS=OFF >/dev/null
	@cmake --build build/bench -j $(JOBS)
	@for b in build/bench/bench/*_bench; do "$$b"; done

# A short run of every libFuzzer target, each on its own corpus kept in build/fuzz (needs clang).
FUZZ_SECONDS ?= 20
FUZZ_DIR ?= build/fuzz
FUZZ_TARGETS := record_decoder frame_reader reconcile_message
fuzz: deps
	@CXX=clang++ cmake -S . -B $(FUZZ_DIR) -G "$(GENERATOR)" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DLOCKSTEP_BUILD_FUZZ=ON -DLOCKSTEP_BUILD_TESTS=OFF >/dev/null
	@cmake --build $(FUZZ_DIR) -j $(JOBS) --target $(FUZZ_TARGETS:%=%_fuzz)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t; \
	  (cd $(FUZZ_DIR) && ./fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=0 corpus/$$t 2>fuzz-$$t.log) \
	  && echo "fuzz: $$t, $(FUZZ_SECONDS) s, no crash" \
	  || { tail -40 $(FUZZ_DIR)/fuzz-$$t.log; exit 1; }; \
	done

format:
	@$(CLANG_FORMAT) -i $(SOURCES)

format-check:
	@$(CLANG_FORMAT) --dry-run --Werror $(SOURCES) && echo "format: tree is formatted"

clean:
	@rm -rf build
