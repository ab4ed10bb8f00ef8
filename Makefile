# spikefm — quick start: `make demo` (train → evaluate on built-in data), `make test` (every test).
# Both install the Debian packages they need first (scripts/setup-deps.sh; a no-op when present).
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo bench clean

all: build

deps:
	@./scripts/setup-deps.sh

configure: deps
	@test -f $(BUILD)/build.ninja || cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@BUILD=$(BUILD) ./scripts/demo.sh

bench: build
	@BUILD=$(BUILD) ./scripts/bench.sh

clean:
	rm -rf $(BUILD) out/demo
