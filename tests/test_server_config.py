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
