# tidemark: the README's two commands.
#   make demo   install what is missing, build, run the main job on a local journal
#   make test   install what is missing, build (also ASan+UBSan), run every test,
#               end with "N passed, N failed, N skipped"
#   make bench  build and run the benchmarks
.PHONY: all deps build build-demo build-asan demo test bench clean

BUILD ?= build
ASAN_BUILD ?= build-asan

all: build

deps:
	@tests/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

# Only what the demo runs: the tidemark binary (a full build is ~150 targets).
build-demo: deps $(BUILD)/build.ninja
	ninja -C $(BUILD) tools/tidemark

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) --buildtype=debug -Dwerror=false -Db_sanitize=address,undefined -Db_lundef=false -Dbench=disabled

# Only what its unit suite runs (the integration suite runs on $(BUILD) only).
build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD) $$(tests/unit-targets.sh $(ASAN_BUILD))

demo: build-demo
	@tools/demo.sh $(BUILD)/tools/tidemark

test: build build-asan
	@tests/run-all.sh $(BUILD) $(ASAN_BUILD)

bench: build
	@bench/run.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
