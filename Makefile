# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; a range in the extras (torch>=2.3) then installs nothing more.
TORCH_SPEC ?= torch==2.13.0
RAPIDOCR_WHEEL := .cache/wheels/rapidocr_onnxruntime-1.4.4-py3-none-any.whl
NUDENET_WHEEL := .cache/wheels/nudenet-3.4.2-py3-none-any.whl
# ONNX Runtime's OpenVINO build replaces the onnxruntime package: its tests get a venv of their own.
OV_VENV ?= .venv-openvino

.PHONY: demo test test-fast lint bench results clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[cpu,demo]"
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[cpu,dev]"
	touch $@

$(VENV)/.results-installed: $(VENV)/.dev-installed
	$(BIN)/pip install -q -e ".[cpu,dev,results]"
	touch $@

# A foreign ONNX classifier for the tests, read from the wheel file (the package is not installed).
$(RAPIDOCR_WHEEL):
	mkdir -p $(dir $@)
	$(BIN)/pip download -q --no-deps --only-binary=:all: -d $(dir $@) rapidocr-onnxruntime==1.4.4

# A foreign detector (YOLOv8n, 320n.onnx) for the target tests, read from its wheel the same way.
$(NUDENET_WHEEL):
	mkdir -p $(dir $@)
	$(BIN)/pip download -q --no-deps --only-binary=:all: -d $(dir $@) nudenet==3.4.2

demo: $(VENV)/.demo-installed
	$(BIN)/onnxcam demo --out out/

$(OV_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(OV_VENV)
	$(OV_VENV)/bin/pip install -q --upgrade pip
	$(OV_VENV)/bin/pip install -q "$(TORCH_SPEC)"
	$(OV_VENV)/bin/pip install -q -e ".[openvino,torch]" "pytest>=8"
	touch $@

test: $(VENV)/.dev-installed $(RAPIDOCR_WHEEL) $(NUDENET_WHEEL) $(OV_VENV)/.installed
	ONNXCAM_TEST_WHEELS=$(dir $(RAPIDOCR_WHEEL)) $(BIN)/python -m pytest -q -ra
	$(OV_VENV)/bin/python -m pytest -q -ra -p no:cacheprovider tests/test_openvino.py

# The edit loop: everything but the tests marked slow (CI runs `make test`).
test-fast: $(VENV)/.dev-installed $(RAPIDOCR_WHEEL) $(NUDENET_WHEEL)
	ONNXCAM_TEST_WHEELS=$(dir $(RAPIDOCR_WHEEL)) $(BIN)/python -m pytest -q -ra -m "not slow"

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/scorecam.py
	$(BIN)/python bench/methods.py
	$(BIN)/python bench/dataset.py

# docs/results.md: every registered method scored on EfficientNet-Lite0 (~10 min on 2 cores).
results: $(VENV)/.results-installed
	$(BIN)/python bench/results.py

clean:
	rm -rf $(VENV) $(OV_VENV) out .cache .pytest_cache
