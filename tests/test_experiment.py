"""The whole training path on a tiny dataset: protocol, ablation, release, report (CLI included)."""

import json

from gamma_detect.cli import main
from gamma_detect.train.trainer import load_checkpoint
from gamma_detect.verdict import BAND_NAMES


def test_loso_protocol_and_release(tiny_dataset, tmp_path):
    run, release = tmp_path / "run", tmp_path / "release"
    args = ["evaluate", "--preset", "tiny", "--set", f"data=csv:{tiny_dataset}", "--set", "model.global_features=multiscale",
            "--set", "train_correction=false", "--loso", "min_source_photos=1", "--loso", "c_grid=[0.1]",
            "--loso", 'augment=["aug0"]', "--seeds", "0", "--out", str(run), "--features-cache", str(tmp_path / "f"),
            "--no-progress"]
    assert main(args + ["--release", str(release)]) == 0
    summary = json.loads((run / "loso" / "summary.json").read_text())
    assert len(summary["per_seed"][0]["sources"]) == 4  # the 4 tiny photo groups, each held out once
    ckpt = load_checkpoint(release / "gamma-tiny.pt")
    assert ckpt["calibration"]["temperature"] > 0 and set(ckpt["abstention"]) >= {"max_view_spread", "quality"}
    assert ckpt["promise"]["measured_worst_photo_ai_rate"] == summary["worst"]["max_photo_ai_rate"]
    assert [b["name"] for b in ckpt["bands"]] == list(BAND_NAMES)
    assert ckpt["crop_policy"]["input_size"] == 96
    report = (release / "report.md").read_text()
    assert "Per held-out source" in report and "Shortcut audit" in report and "band promise" in report
    assert (release / "reliability.png").stat().st_size > 1000
    assert json.loads((release / "config.json").read_text())["name"] == "tiny"
    assert len((release / "training_data.csv").read_text().splitlines()) == 17  # header + 16 images
    assert {row["path"] for row in json.loads((release / "folds.json").read_text())["assignments"]} == {
        line.split(",")[0] for line in tiny_dataset.read_text().splitlines()[1:]}
    stamp = (release / "gamma-tiny.pt").stat().st_mtime
    assert main(args) == 0  # the protocol resumes from its seed files
    assert json.loads((run / "loso-runs" / "recipe" / "summary.json").read_text())["worst"] == summary["worst"]
    assert (release / "gamma-tiny.pt").stat().st_mtime == stamp


def test_kfold_ablation_resumes(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    args = ["evaluate", "--protocol", "kfold", "--preset", "tiny", "--set", f"data=csv:{tiny_dataset}",
            "--set", "model.pretrained=false", "--variants", "probe,gamma", "--seeds", "0", "--folds", "2",
            "--out", str(run), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((run / "protocol.json").read_text())
    assert set(summary) == {"probe", "gamma"}
    assert 0 <= summary["gamma"]["0"]["roc_auc"] <= 1 and "manipulated" in summary["gamma"]["0"]
    # A second run resumes: nothing is retrained.
    fold0 = run / "gamma" / "seed0" / "fold0"
    stamp = (fold0 / "model.pt").stat().st_mtime
    # A fold scored before the manipulated-photo metric existed gets it from its kept model, without training.
    saved = json.loads((fold0 / "oof.json").read_text())
    (fold0 / "oof.json").write_text(json.dumps({"logits": saved["logits"]}))
    assert main(args) == 0
    assert (fold0 / "model.pt").stat().st_mtime == stamp
    assert json.loads((fold0 / "oof.json").read_text()) == saved
    assert json.loads((run / "protocol.json").read_text())["gamma"] == summary["gamma"]


def test_unknown_variant_is_refused(tiny_dataset, tmp_path):
    import pytest

    with pytest.raises(ValueError, match="unknown variants"):
        main(["evaluate", "--protocol", "kfold", "--preset", "tiny", "--set", f"data=csv:{tiny_dataset}",
              "--variants", "magic",
              "--out", str(tmp_path), "--no-progress"])


def test_keep_heads_needs_a_release_of_a_decision_without_the_attention(tmp_path, capsys):
    import pytest

    for extra in ([], ["--release", str(tmp_path)], ["--release", str(tmp_path), "--decision", "attention_full"]):
        with pytest.raises(SystemExit):
            main(["evaluate", "--protocol", "local-edit", "--keep-heads", *extra, "--out", str(tmp_path), "--no-progress"])
        assert "--keep-heads releases a decision on the checkpoint's own heads" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())   # refused before anything ran
