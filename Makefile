# recon3d_ros developer entry points. `make demo` and `make test` work from a fresh clone:
# they create .venv (ROS 2 wheels, torch CPU, test tools) on first use and whenever
# setup.py / setup.cfg / package.xml / requirements*.txt change.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-done
SETUP_INPUTS := setup.py setup.cfg package.xml requirements.txt requirements-dev.txt

# Optional inputs of `make demo` (empty: the synthetic sequence).
IMAGE ?=
VIDEO ?=
FOLDER ?=
DEMO_ARGS ?=
BENCH_ARGS ?=
TESTS ?= test
PYTEST_ARGS ?=

# DDS stays on this machine; each run gets its own domain unless the caller exported one.
ROS_ENV = ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST \
	ROS_DOMAIN_ID=$${ROS_DOMAIN_ID:-$$((RANDOM % 100 + 100))}

# Assets of `recon3d synth --generator mesh` (optional: CI and the tests do not need them).
SYNTH_DEBS := sweethome3d-furniture gnome-backgrounds

.PHONY: help setup synth-data demo bench test lint typecheck colcon clean distclean

help:
	@echo "make setup   create .venv with ROS 2 wheels, torch (CPU) and test tools"
	@echo "make synth-data  install the furniture models and images of the mesh generator"
	@echo "make demo    run the depth node on a demo sequence (IMAGE=, VIDEO=, FOLDER=, DEMO_ARGS=)"
	@echo "make bench   per-stage latency figures (BENCH_ARGS=)"
	@echo "make test    run every test (TESTS=test/core to narrow, PYTEST_ARGS='-k camera')"
	@echo "make lint    ament_flake8, ament_pep257 and package.xml checks (test/test_linters.py)"
	@echo "make typecheck  mypy --strict over core, inference, models (test/test_typing.py)"
	@echo "make colcon  colcon build into build/ and install/ (as a ROS workspace would)"

setup: $(STAMP)

# The editable install puts the recon3d and depth_node scripts in .venv/bin. The ros-* wheels
# put package.xml files under .venv/share: COLCON_IGNORE keeps colcon from crawling them.
$(STAMP): $(SETUP_INPUTS)
	@$(PYTHON) -c 'import sys; v = sys.version_info[:2]; sys.exit(0 if (3, 10) <= v < (3, 13) else "recon3d_ros needs Python 3.10-3.12; set PYTHON=python3.x")'
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	@# Open3D (requirements.txt) loads the system library libusb-1.0 when imported.
	@if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libusb-1\.0\.so'; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing libusb-1.0-0 (needed by Open3D)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0; \
		else \
			echo "Open3D needs the system library libusb-1.0, which is not installed; run:" >&2; \
			echo "  sudo apt-get install libusb-1.0-0" >&2; \
			echo "(other systems: install libusb 1.0), then run make setup again" >&2; \
			exit 1; \
		fi; \
	fi
	$(VPY) -m pip install -r requirements-dev.txt
	$(VPY) -m pip install --no-deps --no-build-isolation -e .
	touch $(VENV)/COLCON_IGNORE
	touch $@

synth-data:
	@if [ -d /usr/share/sweethome3d/furniture ] && [ -d /usr/share/backgrounds/gnome ]; then \
		echo "$(SYNTH_DEBS): already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYNTH_DEBS); \
	else \
		echo "the mesh generator needs Debian packages; run:" >&2; \
		echo "  sudo apt-get install $(SYNTH_DEBS)" >&2; \
		exit 1; \
	fi

DEMO_INPUT = $(if $(IMAGE),--image "$(IMAGE)") $(if $(VIDEO),--video "$(VIDEO)") \
	$(if $(FOLDER),--folder "$(FOLDER)")

demo: $(STAMP)
	$(ROS_ENV) $(VENV)/bin/recon3d demo $(strip $(DEMO_INPUT) $(DEMO_ARGS))

bench: $(STAMP)
	$(ROS_ENV) $(VENV)/bin/recon3d bench $(BENCH_ARGS)

test: $(STAMP)
	$(ROS_ENV) $(VPY) -m pytest $(TESTS) -q -p no:cacheprovider $(PYTEST_ARGS)

lint: $(STAMP)
	$(VPY) -m pytest test/test_linters.py -q -p no:cacheprovider $(PYTEST_ARGS)

typecheck: $(STAMP)
	$(VPY) -m pytest test/test_typing.py -q -p no:cacheprovider $(PYTEST_ARGS)

colcon: $(STAMP)
	$(VPY) -m colcon build --paths . --build-base build --install-base install

clean:
	rm -rf build install log *.egg-info .mypy_cache

distclean: clean
	rm -rf $(VENV)
