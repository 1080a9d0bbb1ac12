# hwotp: `make run` starts everything with its defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STUBS := hwotp/v1/__init__.py
PROTOS := $(wildcard proto/hwotp/v1/*.proto proto/hwotp/internal/v1/*.proto)
# buf (lint and breaking-change checks of the contracts), pinned, from npm
BUF := build/tools/node_modules/.bin/buf
BUF_VERSION := 1.75.0
# MediaPipe Hands (model files and runtime) for the web pad's air mode, pinned, from npm;
# the demo serves it from build/web: the browser never fetches it from elsewhere
MEDIAPIPE := build/web/node_modules/@mediapipe/hands/hands.js
MEDIAPIPE_VERSION := 0.4.1675469240
EVAL_OUT ?= build/eval
# UNIPEN 1a as a stroke set (training.strokes), written from its archive by `make data`
STROKE_SET := build/unipen-1a.jsonl

.PHONY: help install stubs contracts release-contract run up down test data train evaluate bench loadtest clean

help:
	@echo "make run       start redis + the four services, run the demo, serve until Ctrl-C"
	@echo "make up/down   start / stop the stack in the background (gateway on 127.0.0.1:50051)"
	@echo "make test      install what the tests need, check the contracts and layers, run the whole suite"
	@echo "make contracts buf lint of the .proto files, buf breaking of the public API against proto/released/"
	@echo "make data      download the public MNIST + QMNIST originals (when ../shared/data is absent); UNIPEN as a stroke set"
	@echo "make train     retrain both models from scratch, calibrate, evaluate on the test writers"
	@echo "make evaluate  evaluate the committed models on the test writers ($(EVAL_OUT))"
	@echo "make bench     model-only bound vs end-to-end throughput (bench/result.json, BENCHMARKS.md)"
	@echo "make loadtest  60 s of logins against a local stack of its own (build/loadtest)"

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[tools]'
	touch $@

$(VENV)/.full: $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[tools,train,test]'
	touch $@

install: $(VENV)/.runtime

$(STUBS): $(PROTOS) $(VENV)/.runtime
	rm -rf hwotp/v1 hwotp/internal
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)
	touch hwotp/internal/__init__.py hwotp/internal/v1/__init__.py $@

$(MEDIAPIPE):
	npm install --silent --no-audit --no-fund --prefix build/web @mediapipe/hands@$(MEDIAPIPE_VERSION)

$(BUF):
	npm install --silent --no-audit --no-fund --prefix build/tools @bufbuild/buf@$(BUF_VERSION)

# The contracts: buf's standard lint rules, and no breaking change to the public
# API against its released state (proto/released/, recorded by `make release-contract`).
contracts: $(BUF)
	$(BUF) lint proto
	$(BUF) breaking proto --against proto/released/hwotp-v1.binpb

release-contract: $(BUF)
	$(BUF) build proto --path proto/hwotp/v1 -o proto/released/hwotp-v1.binpb

stubs: $(STUBS)

run: $(STUBS) $(MEDIAPIPE)
	$(PY) -m local.stack run

up: $(STUBS) $(MEDIAPIPE)
	$(PY) -m local.stack up

down:
	$(PY) -m local.stack down

# The suite against one redis-server, then its Redis tests again against a 6-node
# Redis Cluster (the tests that touch no Redis, or bring their own, run once).
CLUSTER_SKIPS = $(addprefix --ignore=tests/,test_training.py test_offline_commands.py test_deploy.py \
                  test_redis_sentinel.py test_cluster_faults.py test_web.py)

test: $(VENV)/.full $(STUBS) $(STROKE_SET) $(MEDIAPIPE) contracts
	$(BIN)/lint-imports
	$(PY) -m pytest
	HWOTP_LOCAL_REDIS=cluster $(PY) -m pytest -m integration $(CLUSTER_SKIPS)

data: $(VENV)/.runtime
	$(PY) -m training.download
	$(PY) -m training.unipen

$(STROKE_SET): $(VENV)/.runtime training/unipen.py training/strokes.py
	$(PY) -m training.unipen --out $@

train: $(VENV)/.full $(STUBS) $(STROKE_SET)
	$(PY) -m training.train_recognizer --strokes $(STROKE_SET)
	$(PY) -m training.train_verifier --method cosface --epochs 24 --patience 5
	$(PY) -m training.train_verifier --method contrastive --epochs 8 --patience 3 \
	    --onnx models/baseline-verifier.onnx
	$(PY) -m training.quantize
	$(PY) -m training.calibrate
	$(PY) -m training.calibrate_strokes --strokes $(STROKE_SET)
	$(PY) -m training.train_online --strokes $(STROKE_SET)
	$(PY) -m training.calibrate_online --strokes $(STROKE_SET)
	$(PY) -m training.train_online_recognizer --strokes $(STROKE_SET)
	$(PY) -m training.evaluate_signatures --fit-users 1-30 --save models --out $(EVAL_OUT)/signatures-served
	$(MAKE) evaluate
	$(PY) -m training.evaluate --writers test --verifier baseline --out $(EVAL_OUT)/baseline --record
	$(PY) -m training.model_card

evaluate: $(VENV)/.runtime $(STROKE_SET)
	$(PY) -m training.evaluate --writers test --out $(EVAL_OUT)/test --record
	$(PY) -m training.evaluate --strokes $(STROKE_SET) --writers test --enroll 1 --out $(EVAL_OUT)/test-strokes --record
	$(PY) -m training.evaluate --strokes $(STROKE_SET) --writers test --enroll 3 --lengths 1,4,6 --out $(EVAL_OUT)/test-strokes-enrol3 --record
	$(PY) -m training.evaluate_signatures --folds 5 --out $(EVAL_OUT)/signatures

bench: $(STUBS) $(STROKE_SET)
	$(PY) -m bench.run

# A bounded 60-second load against a stack of its own (loopback, load-test limits).
# Against `make up` instead: python -m bench.loadgen --target 127.0.0.1:50051 --duration 60
loadtest: $(STUBS)
	$(PY) -m bench.loadgen --start-stack --concurrency 8 --duration 60 --out build/loadtest

clean:
	rm -rf hwotp/v1 hwotp/internal build run .pytest_cache
