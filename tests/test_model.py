import pytest
import torch

from gamma_detect.train.model import MAP_STRIDE, NUM_SOURCES, GammaModel, ModelConfig

SMALL = dict(pretrained=False, decoder_dim=32, attention_dim=32, attention_heads=2, learned_tokens=2, token_grid=7)


@pytest.mark.parametrize("seg,rca", [(True, True), (True, False), (False, False)])
def test_output_shapes(seg, rca):
    model = GammaModel(ModelConfig(**SMALL, seg_heads=seg, reverse_attention=rca)).eval()
    out = model(torch.randn(3, 3, 96, 96))
    assert out.logit.shape == (3,)
    if seg:
        side = 96 // MAP_STRIDE  # the maps stay at the decoder's stride; losses and runtimes upsample them
        assert out.mask_logits.shape == (3, 1, side, side)
        assert out.source_logits.shape == (3, NUM_SOURCES, side, side)
    else:
        assert out.mask_logits is None and out.source_logits is None


def trained_like(model: GammaModel) -> GammaModel:
    """The correction head starts at zero; give it weights as after training."""
    torch.nn.init.normal_(model.classifier[1].weight, std=0.5)
    return model


def test_every_head_gets_gradients():
    model = trained_like(GammaModel(ModelConfig(**SMALL)))
    out = model(torch.randn(2, 3, 96, 96))
    (out.logit.sum() + out.mask_logits.mean() + out.source_logits.mean()).backward()
    for name in ("mask_head", "source_head", "decoder", "reverse_attention", "classifier", "global_head"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), name
        assert any(g.abs().sum() > 0 for g in grads), name


def test_classification_reads_segmentation_features():
    """Reverse attention: changing the segmentation evidence changes the image logit."""
    torch.manual_seed(0)
    model = trained_like(GammaModel(ModelConfig(**SMALL, dropout=0.0))).eval()
    x = torch.randn(1, 3, 96, 96)
    before = model(x).logit
    with torch.no_grad():
        model.mask_head.body[-1].bias += 5.0
    assert not torch.allclose(before, model(x).logit)


def test_new_model_gives_the_global_decision_until_the_correction_learns():
    torch.manual_seed(0)
    model = GammaModel(ModelConfig(**SMALL)).eval()
    x = torch.randn(2, 3, 96, 96)
    pooled = model.backbone.forward_features(x)[1]
    torch.testing.assert_close(model(x).logit, model.global_head(pooled).squeeze(1))
    without = GammaModel(ModelConfig(**SMALL, global_head=False))
    assert not hasattr(without, "global_head")


def test_reverse_attention_needs_seg_heads():
    with pytest.raises(ValueError, match="needs seg_heads"):
        ModelConfig(seg_heads=False, reverse_attention=True)
