"""The cross-layer contract: the generated extension module is fresh and says what the Python side says."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from export_support import REPO

from gamma_detect import contract
from gamma_detect.contract import ERRORS, JOB_ENDED, JOB_STATUSES, LIMITS, RESULT_FIELDS, VERDICTS
from gamma_detect.verdict import BAND_NAMES

CONTRACT_JS = REPO / "extension" / "lib" / "contract.js"


def test_checked_in_contract_js_is_fresh():
    assert CONTRACT_JS.read_text() == contract.render_js(), \
        "extension/lib/contract.js is stale: run `python -m gamma_detect.contract` and commit it"


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    out = tmp_path / "contract.js"
    assert contract.main(["--out", str(out), "--check"]) == 1 and "is stale" in capsys.readouterr().err
    assert contract.main(["--out", str(out)]) == 0 and out.read_text() == contract.render_js()
    assert contract.main(["--out", str(out), "--check"]) == 0
    out.write_text(out.read_text().replace('"not_found": {"status": 404}', '"not_found": {"status": 410}'))
    assert contract.main(["--out", str(out), "--check"]) == 1


def test_readme_holds_the_generated_tables(capsys):
    readme = (REPO / "README.md").read_text()
    assert contract.markdown() in readme, \
        "README.md's contract tables are stale: paste the output of `python -m gamma_detect.contract --markdown`"
    assert contract.main(["--markdown"]) == 0 and capsys.readouterr().out == contract.markdown() + "\n"
    for code, error in ERRORS.items():   # a job-only code is never shown as an HTTP answer
        assert f"| `{code}` | " + (f"none: a failed job's `error` ({error.status})" if error.job_only
                                   else f"{error.status} |") in readme
    assert {code for code, e in ERRORS.items() if e.job_only} == {"worker_lost", "job_timeout"}


def test_a_job_not_ended_is_queued_or_started():
    """The extension takes any contract status outside the ended ones for a job still running."""
    assert set(JOB_ENDED) <= set(JOB_STATUSES)
    assert [s for s in JOB_STATUSES if s not in JOB_ENDED] == ["queued", "started"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (the extension's tests need it)")
def test_node_loads_the_same_frozen_values():
    script = ("const c = require(process.argv[1]);"
              "const frozen = [c, c.VERDICTS, c.ERRORS, c.ERRORS.not_found, c.LIMITS].every(Object.isFrozen);"
              "console.log(JSON.stringify({frozen, VERDICTS: c.VERDICTS, ERRORS: c.ERRORS, LIMITS: c.LIMITS,"
              " RESULT_FIELDS: c.RESULT_FIELDS}));")
    out = subprocess.run(["node", "-e", script, str(CONTRACT_JS)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["frozen"]
    assert got["VERDICTS"] == list(VERDICTS) == list(BAND_NAMES)
    assert got["ERRORS"] == {code: {"status": e.status} for code, e in ERRORS.items()}
    assert got["LIMITS"] == LIMITS and got["RESULT_FIELDS"] == list(RESULT_FIELDS)


def test_server_and_openapi_read_the_contract():
    from gamma_detect.server.config import Settings
    from gamma_detect.server.errors import ApiError
    from gamma_detect.server.openapi import document

    schemas = document()["components"]["schemas"]
    assert schemas["Result"]["required"] == list(RESULT_FIELDS)
    assert schemas["Result"]["properties"]["verdict"]["enum"] == list(VERDICTS)
    assert schemas["Error"]["properties"]["code"]["enum"] == sorted(ERRORS)
    assert schemas["Feedback"]["properties"]["note"]["maxLength"] == LIMITS["feedback_note_chars"]
    settings = Settings()
    assert (settings.max_upload_bytes, settings.max_scan_images) == (LIMITS["upload_bytes"], LIMITS["scan_images"])
    error = ApiError("fetch_failed")
    assert (error.status, error.to_dict()) == (502, {"code": "fetch_failed", "message": ERRORS["fetch_failed"].message})
    with pytest.raises(ValueError, match="gamma_detect.contract.ERRORS"):
        ApiError("no_such_code")
