# Two commands, each doing its own set-up (idempotent) on a fresh Debian 12 machine as root:
#   make demo   -- the main job: the product tour
#   make test   -- unit tests, then system tests
VENV      ?= .venv
PY        := $(VENV)/bin/python
APT_PKGS  := openvswitch-switch etcd-server iputils-ping ethtool socat iperf3 tcpdump mininet \
             python3-venv python3-pip iproute2 procps podman runc busybox-static \
             containernetworking-plugins
STAMP_APT := $(VENV)/.apt-done
STAMP_PIP := $(VENV)/.pip-done
# Docker for the tests: Debian's packages unpacked, never installed (docker.io's postinst would
# start a system daemon with its own bridge and iptables rules).
DOCKER_CACHE ?= /var/cache/netplugin/docker
DOCKER_PKGS  := docker.io containerd tini
STAMP_DOCKER := $(DOCKER_CACHE)/.unpacked

.PHONY: setup test unit system bench demo lint clean

setup: $(STAMP_PIP) $(STAMP_DOCKER)

$(STAMP_APT):
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo ">> apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# Debian's python3 (not a pyenv one first on PATH) so that Mininet's package is importable.
	@test -x $(PY) || /usr/bin/python3 -m venv --system-site-packages $(VENV)
	@touch $@

$(STAMP_PIP): $(STAMP_APT) requirements.txt requirements-dev.txt pyproject.toml
	@echo ">> pip install (virtualenv $(VENV))"
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -r requirements-dev.txt
	@$(PY) -m pip install -q --no-deps -e .
	@touch $@

$(STAMP_DOCKER):
	@echo ">> docker: apt-get download $(DOCKER_PKGS), unpacked in $(DOCKER_CACHE)/root"
	@mkdir -p $(DOCKER_CACHE)/debs
	@cd $(DOCKER_CACHE)/debs && rm -f *.deb && { apt-get download -qq $(DOCKER_PKGS) 2>/dev/null \
	  || { apt-get update -qq && apt-get download -qq $(DOCKER_PKGS) 2>/dev/null; }; }
	@rm -rf $(DOCKER_CACHE)/root && for f in $(DOCKER_CACHE)/debs/*.deb; do \
	  dpkg -x "$$f" $(DOCKER_CACHE)/root; done
	@test -x $(DOCKER_CACHE)/root/usr/sbin/dockerd || \
	  { echo "!! could not fetch and unpack $(DOCKER_PKGS) into $(DOCKER_CACHE)"; exit 1; }
	@touch $@

test: setup
	@echo ">> unit tests"
	$(PY) -m pytest -q tests/unit
	@echo ">> system tests"
	$(PY) -m pytest -q tests/system

unit: setup
	$(PY) -m pytest -q tests/unit

system: setup
	$(PY) -m pytest -q tests/system

bench: setup
	$(PY) -m tests.bench $(BENCH_ARGS)

demo: setup
	$(PY) -m topologies.tour

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache
