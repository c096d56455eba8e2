# Every target creates the virtualenv it needs when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SCALE ?= M
export PYTHONPATH := $(CURDIR)
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: catalogs catalogs-update demo serve token fuzz test browser crash lint openapi bench import-time package package-check deploy-smoke iam-audit cost clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check 'pip<26.3'
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

# Receipt words: .po sources in git, .mo compiled here (never committed) for tests, the demo and the
# Lambda package. catalogs-update re-extracts the words from the layouts (babel.cfg) into every .po.
catalogs: $(STAMP)  ## compile the receipt catalogs (chalicelib/locales/*/LC_MESSAGES/receipts.po → .mo)
	$(PY) -m deploy.catalogs

catalogs-update: $(STAMP)  ## after changing a receipt layout's words: new words into receipts.pot and every .po
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output --project=retail-sync --version=1 \
		-o chalicelib/locales/receipts.pot .
	$(VENV)/bin/pybabel update -i chalicelib/locales/receipts.pot -d chalicelib/locales -D receipts --no-wrap

demo: $(STAMP) catalogs  ## run every job on the embedded local stack; outputs in demo-output/
	$(PY) -m devstack demo

serve: $(STAMP) catalogs  ## keep the local stack running: HTTP API, schedules, migration drops
	$(PY) -m devstack serve --workers $(or $(WORKERS),1)

# With make serve running: make token ROLE=operator | make token ROLE=store STORE=S001. STORE counts
# only on the command line: the shell's $$STORE is the store token that make serve's export line sets.
TOKEN_STORE = $(if $(filter command line,$(origin STORE)),--store-id "$(STORE)")
token: $(STAMP)  ## mint a token on the running local stack (ROLE=operator|store, STORE=<store id>, LABEL=..., EXPIRES_IN=12h)
	$(PY) -m devstack tokens create --role "$(ROLE)" $(TOKEN_STORE) --label "$(or $(LABEL),make token)" \
	  $(if $(EXPIRES_IN),--expires-in "$(EXPIRES_IN)")

fuzz: $(STAMP) catalogs  ## Schemathesis over every operation of the contract, on a local stack of its own
	$(PY) -m devstack fuzz

test: $(STAMP) catalogs  ## the test suite (unit and integration, moto in process); not the browser tests
	$(PY) -m pytest -n 2 -q --ignore=tests/browser

# Debian's chromium package (apt-get install -y chromium); CHROMIUM=<path> for another build.
browser: $(STAMP) catalogs  ## the console in headless Chromium against make serve's stack; screenshots in build/screenshots/
	$(PY) -m pytest -q -p no:cacheprovider tests/browser

crash: $(STAMP) catalogs  ## every job killed/throttled at every AWS call of its run; prints crash points per job
	CRASH_POINTS=1 $(PY) -m pytest -n 2 -q -p no:cacheprovider tests/crash

lint: $(STAMP)
	$(VENV)/bin/ruff check .

openapi: $(STAMP)  ## regenerate the committed contract docs/openapi.json from the routes and their models
	$(PY) -m chalicelib.http.openapi docs/openapi.json

bench: $(STAMP) catalogs  ## make bench SCALE=M [WORKERS=1]: per-job requests, time and memory into BENCHMARKS.md
	$(PY) -m devstack bench --scale $(SCALE) --workers $(or $(WORKERS),1)

import-time: $(STAMP)  ## make import-time [RUNS=21]: median `import app` beside chalice, pynamodb.models, boto3
	$(PY) -m devstack importtime --runs $(or $(RUNS),21)

# The AWS provider comes from a local filesystem mirror (no registry access): found at run time,
# the folder holding registry.terraform.io/; TF_PROVIDER_MIRROR=<dir> overrides the search.
FIND_MIRROR = find / -path /proc -prune -o -name 'terraform-provider-aws*' -print 2>/dev/null \
	| grep -m1 registry.terraform.io | sed 's|/registry.terraform.io/.*||'

STAGE_ARG = $(if $(STAGE),--stage $(STAGE))

package: $(STAMP) catalogs  ## make package [STAGE=prod]: chalice package + the stack per stage into build/terraform/<stage>
	$(PY) -m deploy package $(STAGE_ARG)

package-check: package  ## terraform init (offline, local provider mirror) and validate every stage
	TF_PROVIDER_MIRROR="$${TF_PROVIDER_MIRROR:-$$($(FIND_MIRROR))}" $(PY) -m deploy check $(STAGE_ARG)

deploy-smoke: package  ## terraform apply the dev package to a local moto server; assert what exists
	TF_PROVIDER_MIRROR="$${TF_PROVIDER_MIRROR:-$$($(FIND_MIRROR))}" DEPLOY_SMOKE=1 \
		$(PY) -m pytest -q tests/integration/test_deploy_smoke.py

iam-audit: $(STAMP) catalogs  ## the demo replayed as deployed: AWS requests per function and route, IAM denials
	$(PY) -m deploy audit

cost: $(STAMP)  ## make cost [SCALE=M]: monthly AWS cost at a benchmarked scale (BENCHMARKS.md, public prices), arithmetic shown
	$(PY) -m deploy cost --scale $(SCALE)

clean:  ## removes what make builds; never the Terraform state in .terraform-state/
	rm -rf $(VENV) demo-output bench-output build .pytest_cache chalicelib/locales/*/LC_MESSAGES/*.mo
