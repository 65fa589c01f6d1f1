from pathlib import Path

import pytest
import server_support  # noqa: F401

from gamma_detect.server.config import FIELDS, Settings, env_name, markdown_table


def test_settings_from_environment():
    s = Settings.from_env({"REDIS_URL": "redis://r:6379/1", "GAMMA_BATCH_SIZE": "16", "GAMMA_RATE_LIMIT": "2.5",
                           "GAMMA_ALLOWED_ORIGINS": "chrome-extension://a, moz-extension://b",
                           "GAMMA_FETCH_TEST_ALLOW": "127.0.0.1:8080,[::1]:9"})
    assert s.redis_url == "redis://r:6379/1" and not s.embedded
    assert s.batch_size == 16 and s.rate_limit == 2.5
    assert s.origins == ("chrome-extension://a", "moz-extension://b")
    assert s.test_allow == {("127.0.0.1", 8080), ("::1", 9)}
    assert Settings.from_env({}).embedded and Settings.from_env({}).test_allow == frozenset()
    assert s.key("result", "d", "s") == "gamma:result:d:s"


def test_invalid_settings_refused():
    with pytest.raises(ValueError):
        Settings(require_keys="sometimes")
    with pytest.raises(ValueError):
        Settings.from_env({"GAMMA_BATCH_SIZE": "0"})


def test_readme_holds_the_generated_settings_table():
    """README.md's settings table is exactly what config.markdown_table() generates (regenerate it on a change)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = markdown_table()
    assert table.strip() in readme, "README.md's settings table is stale: paste the output of " \
        "`python3 -c 'from gamma_detect.server.config import markdown_table; print(markdown_table())'`"
    for f in FIELDS:
        assert f"`{env_name(f)}`" in table
        assert env_name(f) == "REDIS_URL" or env_name(f).startswith("GAMMA_")


def test_configure_rq_sets_the_prefix_before_rq_loads_and_refuses_a_mismatch():
    import subprocess
    import sys

    code = """
import os, sys
os.environ.pop("RQ_KEY_PREFIX", None)
from gamma_detect.server.config import Settings, configure_rq
import gamma_detect.server.app   # the app factory's module does not import RQ
assert "rq" not in sys.modules and "RQ_KEY_PREFIX" not in os.environ
configure_rq(Settings(redis_prefix="shop"))
from rq.defaults import RQ_KEY_PREFIX
assert RQ_KEY_PREFIX == "shop:rq", RQ_KEY_PREFIX
os.environ.pop("RQ_KEY_PREFIX")
try:
    configure_rq(Settings(redis_prefix="other"))
except RuntimeError as exc:
    assert "configure_rq" in str(exc)
else:
    raise AssertionError("a second prefix after RQ was imported must be refused")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
