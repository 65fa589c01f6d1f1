import pytest
import torch
from skimage import data as skdata

from gamma_detect.crops import resize
from gamma_detect.train.backbones import available_backbones, create_backbone

# ImageNet classes 281-287: tabby, tiger cat, Persian, Siamese, Egyptian cat, cougar, lynx.
CAT_CLASSES = set(range(281, 288))


def test_lite0_imagenet_weights_load_correctly():
    net = create_backbone("efficientnet_lite0", imagenet_head=True).eval()
    image = resize(skdata.chelsea(), 224, 224)
    x = torch.from_numpy(image.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.inference_mode():
        top5 = net.imagenet_logits(x).topk(5).indices[0].tolist()
    assert CAT_CLASSES & set(top5), f"no cat class in top-5 {top5}: weights or preprocessing are wrong"


def test_multiscale_features():
    net = create_backbone("efficientnet_lite0", pretrained=False).eval()
    feats, pooled = net.forward_features(torch.zeros(2, 3, 224, 224))
    assert [tuple(f.shape) for f in feats] == [(2, 40, 28, 28), (2, 112, 14, 14), (2, 320, 7, 7)]
    assert tuple(pooled.shape) == (2, net.pooled_channels)
    assert [f.shape[1] for f in feats] == list(net.channels)


def test_unknown_backbone_and_bad_weights(tmp_path):
    with pytest.raises(ValueError, match="available"):
        create_backbone("resnet9000")
    bad = tmp_path / "bad.pth"
    torch.save({"foo": torch.zeros(1)}, bad)
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        create_backbone("efficientnet_lite0", weights=bad)
    assert "efficientnet_lite0" in available_backbones()


def test_imagenet_head_is_optional():
    net = create_backbone("efficientnet_lite0", pretrained=False)
    with pytest.raises(RuntimeError, match="imagenet_head=True"):
        net.imagenet_logits(torch.zeros(1, 3, 64, 64))
    assert not any(k.startswith("classifier") for k in net.state_dict())
