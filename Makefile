# Every target creates the virtualenv it needs when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE ?= M
export PYTHONPATH := $(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: demo serve test lint bench package package-check clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)  ## run every job on the embedded local stack; outputs in demo-output/
	$(PY) -m devstack demo

serve: $(STAMP)  ## keep the local stack running: HTTP API, schedules, migration drops
	$(PY) -m devstack serve

test: $(STAMP)  ## the test suite (unit and integration, moto in process)
	$(PY) -m pytest -n 2 -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)  ## make bench SCALE=M: per-job requests, time and memory into BENCHMARKS.md
	$(PY) -m devstack bench --scale $(SCALE)

package: $(STAMP)  ## chalice package --pkg-format terraform into build/terraform
	$(PY) -m chalicelib.deploy package

package-check: package
	$(PY) -m chalicelib.deploy check

clean:
	rm -rf $(VENV) demo-output bench-output build .pytest_cache
