import pytest

from gamma_detect.train.config import TrainConfig, apply_overrides, load_preset


def test_overrides_and_roundtrip():
    cfg = load_preset("starter", ["epochs=2", "model.reverse_attention=false", "augment.quality=[40,90]"])
    assert cfg.epochs == 2 and cfg.model.reverse_attention is False and cfg.augment.quality == (40, 90)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_overrides_say_what_to_do():
    cfg = load_preset("tiny")
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["epochs"])
    with pytest.raises(ValueError, match="unknown setting 'epoch'"):
        apply_overrides(cfg, ["epoch=3"])
    with pytest.raises(ValueError, match="choose from"):
        load_preset("huge")
