"""DistributedDataParallel through torchrun, on CPU with the gloo backend (the GPU path differs only in NCCL)."""

import os
import subprocess
import sys

from gamma_detect.train.trainer import load_checkpoint


def test_torchrun_two_processes(tiny_dataset, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "gamma_detect.cli", "train", "--preset", "tiny", "--set", f"data=csv:{tiny_dataset}",
           "--set", "model.pretrained=false", "--set", "threads=1", "--out", str(tmp_path / "ddp"), "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = load_checkpoint(tmp_path / "ddp" / "model.pt")
    assert ckpt["config"]["name"] == "tiny"
    assert not any(k.startswith("module.") for k in ckpt["model"])  # saved unwrapped, loadable anywhere
