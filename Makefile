# Thin wrapper over CMake and the scripts. See README.md.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
BUF        := tools/node_modules/.bin/buf
# `make fuzz`: the compiler (Debian's clang-14, with libclang-rt-14-dev),
# seconds per target, and libFuzzer's memory limit.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 30
FUZZ_RSS_MB  ?= 2048
# Fails unless every test of tests/expected-tests.txt ran and passed.
CHECK_RAN   = python3 tests/check-ran.py

.PHONY: all deps build build-asan build-fuzz check test test-asan fuzz \
	test-container lint format demo clean

all: build

deps:
	bash scripts/deps.sh

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

build-asan:
	cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSMAUG_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_ASAN) -j $(JOBS)

lint:
	$(BUF) lint
	@files=$$(git ls-files '*.c' '*.h'); \
	  [ -z "$$files" ] || clang-format --dry-run -Werror $$files

# libFuzzer targets (fuzz/), built with clang under ASan and UBSan.
build-fuzz:
	cmake -S . -B $(BUILD_FUZZ) -DCMAKE_C_COMPILER=$(FUZZ_CC) \
	  -DCMAKE_BUILD_TYPE=Debug -DSMAUG_FUZZ=ON -DSMAUG_TESTS=OFF >/dev/null
	cmake --build $(BUILD_FUZZ) -j $(JOBS) --target smaug-fuzz

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) \
	  --output-junit ctest-junit.xml
	$(CHECK_RAN) $(BUILD)/ctest-junit.xml tests/expected-tests.txt

test-asan: build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --output-junit ctest-junit.xml
	$(CHECK_RAN) $(BUILD_ASAN)/ctest-junit.xml tests/expected-tests.txt

# Runs each fuzz target for FUZZ_SECONDS from its corpus (fuzz/run.sh).
fuzz: build-fuzz
	bash fuzz/run.sh $(BUILD_FUZZ) $(FUZZ_SECONDS) $(FUZZ_RSS_MB)

# Builds the images and runs deploy/compose.yaml on a private Docker engine
# (root only; see scripts/container-test.sh).
test-container: build
	bash scripts/container-test.sh

# Everything CI runs: dependencies, lint, the test suite, the test suite
# again under ASan+UBSan, the fuzz targets, and the container stack.
check: deps lint test test-asan fuzz test-container

demo: deps build
	bash scripts/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ)
