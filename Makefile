# The two commands a person needs (README.md): `make run` and `make test`.
# Everything else is a step they call. CMake does the building (docs/BUILD.md says why);
# this file only installs what is missing, picks build directories and runs things.

BUILD_DIR      := build/release
TEST_BUILD_DIR := build/asan
DATA_DIR       ?= ./data
LISTEN         ?= 127.0.0.1:3000
JOBS           ?= $(shell nproc)

.PHONY: all deps build build-test build-race run test unit-test format clean bench

all: build

deps:
	@scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTALLY_SANITIZE=OFF >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

build-test: deps
	@cmake -S . -B $(TEST_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTALLY_SANITIZE=ON >/dev/null
	@cmake --build $(TEST_BUILD_DIR) -j $(JOBS)

run: build
	@scripts/run-demo.sh build/tallyd build/tally "$(DATA_DIR)" "$(LISTEN)"

# ThreadSanitizer build of what runs threads: the server, the CLI, and the unit tests of
# the engine and the published usage views. scripts/test.sh runs them as its "race" suite.
build-race: deps
	@cmake -S . -B build/tsan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DTALLY_SANITIZE=THREAD >/dev/null
	@cmake --build build/tsan -j $(JOBS) --target tallyd tally test_engine test_usage_view test_key_cache test_syncer test_bigmem

test: build build-test build-race
	@scripts/test.sh $(TEST_BUILD_DIR) build/tsan $(BUILD_DIR)

format:
	@clang-format -i $$(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 'tests/*.h' 'bench/*.c' | grep -v '_table\.c$$')

bench: build
	@bench/run.sh

clean:
	rm -rf build
