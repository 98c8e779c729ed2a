# Thin wrapper over CMake and the scripts. See README.md.
BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)
BUF        := tools/node_modules/.bin/buf

.PHONY: all deps build build-asan check test test-asan test-container lint format demo clean

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

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: build-asan
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -LE no-sanitize

# Builds the images and runs deploy/compose.yaml on a private Docker engine
# (root only; see scripts/container-test.sh).
test-container: build
	bash scripts/container-test.sh

# Everything CI runs: dependencies, lint, the test suite, the test suite
# again under ASan+UBSan, and the container stack.
check: deps lint test test-asan test-container

demo: deps build
	bash scripts/demo.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
