"""The crop-policy comparison in a released model's report: put in once, replaced (never duplicated) on a rerun."""

import json

from gamma_detect.train.report import CROP_POLICY_HEADING, with_crop_policies


def comparison(views: float) -> dict:
    boot = {"worst_ai_rate_diff_ci95": [0.0, 0.01], "recall_diff_ci95": [-0.02, 0.0]}
    return {"command": "python3 bench/policy_loso.py --out x.json", "seeds": [0, 1], "bootstrap": 100,
            "rows": [{"policy": "one stage", "views_per_image": 6.44, "worst_photo_ai_rate": 0.048,
                      "ai_recall_flag": 0.764, "paired_bootstrap": [boot, boot]},
                     {"policy": "staged", "views_per_image": views, "worst_photo_ai_rate": 0.048,
                      "ai_recall_flag": 0.764, "paired_bootstrap": [boot, boot]}]}


def test_the_comparison_lands_before_the_reliability_section_and_a_rerun_replaces_it(tmp_path):
    (tmp_path / "report.md").write_text("# Report\n\n## Ablation\n\nrows\n\n## Reliability of the calibrated "
                                        "probability\n\nplot\n")
    (tmp_path / "report.json").write_text(json.dumps({"loso": {}}))
    with_crop_policies(tmp_path, comparison(4.96))
    with_crop_policies(tmp_path, comparison(4.22))
    text = (tmp_path / "report.md").read_text()
    assert text.count(CROP_POLICY_HEADING) == 1 and "| staged | 4.22 |" in text and "4.96" not in text
    assert text.index("## Ablation") < text.index(CROP_POLICY_HEADING) < text.index("## Reliability")
    assert text.endswith("plot\n")
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["loso"] == {} and report["crop_policies"]["rows"][1]["views_per_image"] == 4.22
