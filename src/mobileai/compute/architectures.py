"""Real model architectures, built from scratch in PyTorch, as chains of splittable blocks.

Each builder returns ``(blocks, example_input)``: an ``nn.Sequential`` whose children are the
points where an inference can be split between device and server (one tensor crosses each
boundary, as in Neurosurgeon, Kang et al., ASPLOS 2017), and an input of the model's native shape.
Weights are random: only FLOPs, parameter/activation sizes and latency matter here.

- ``resnet18``: He et al., "Deep residual learning for image recognition", CVPR 2016 (Table 1,
  18-layer), 224x224 input; ImageNet top-1 69.76 % (torchvision reference weights).
- ``mobilenet_v2``: Sandler et al., "MobileNetV2: inverted residuals and linear bottlenecks",
  CVPR 2018 (Table 2), width 1.0, 224x224; ImageNet top-1 71.88 % (torchvision).
- ``yolov3_tiny``: Redmon & Farhadi, "YOLOv3: an incremental improvement", arXiv:1804.02767,
  2018 (the tiny config), 416x416, one detection head (the second, upsampled head reads a
  tensor from the trunk and is left out so the chain stays splittable); COCO mAP@0.5 33.1.
- ``conformer_s``: Gulati et al., "Conformer: convolution-augmented transformer for speech
  recognition", Interspeech 2020 (Conformer-S: 16 blocks, d=144, 4 heads, conv kernel 32),
  1 s of 80-band log-mel features; LibriSpeech test-clean WER 2.7 %.
- ``gpt2_decode``: Radford et al., "Language models are unsupervised multitask learners", 2019
  (GPT-2 small: 12 layers, d=768, 12 heads, vocabulary 50,257): one decode step of one token
  against a 256-token KV cache held by each layer; LAMBADA accuracy 45.99 %.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

# --------------------------------------------------------------------------- ResNet-18


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.down = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


def resnet18() -> tuple[nn.Sequential, torch.Tensor]:
    blocks: list[tuple[str, nn.Module]] = [
        (
            "stem",
            nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
            ),
        )
    ]
    c_in = 64
    for stage, c_out in enumerate((64, 128, 256, 512), start=1):
        for i in range(2):
            stride = 2 if (i == 0 and stage > 1) else 1
            blocks.append((f"layer{stage}.{i}", BasicBlock(c_in, c_out, stride)))
            c_in = c_out
    blocks.append(("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())))
    blocks.append(("fc", nn.Linear(512, 1000)))
    return _chain(blocks), torch.randn(1, 3, 224, 224)


# --------------------------------------------------------------------------- MobileNetV2


class InvertedResidual(nn.Module):
    """Expand (1x1) - depthwise 3x3 - project (1x1), residual when shapes match (Sandler 2018)."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


def mobilenet_v2() -> tuple[nn.Sequential, torch.Tensor]:
    cfg = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2))
    cfg += ((6, 320, 1, 1),)
    blocks: list[tuple[str, nn.Module]] = [
        ("stem", nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()))
    ]
    c_in = 32
    for k, (t, c, n, s) in enumerate(cfg):
        for i in range(n):
            blocks.append((f"ir{k}.{i}", InvertedResidual(c_in, c, s if i == 0 else 1, t)))
            c_in = c
    blocks.append(
        ("head", nn.Sequential(nn.Conv2d(320, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6()))
    )
    blocks.append(("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())))
    blocks.append(("fc", nn.Linear(1280, 1000)))
    return _chain(blocks), torch.randn(1, 3, 224, 224)


# --------------------------------------------------------------------------- YOLOv3-tiny


def _cbl(c_in: int, c_out: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.1)]


def yolov3_tiny() -> tuple[nn.Sequential, torch.Tensor]:
    blocks: list[tuple[str, nn.Module]] = []
    c_in = 3
    for i, c in enumerate((16, 32, 64, 128, 256)):
        blocks.append((f"conv{i}", nn.Sequential(*_cbl(c_in, c, 3), nn.MaxPool2d(2, 2))))
        c_in = c
    blocks.append(
        ("conv5", nn.Sequential(*_cbl(256, 512, 3), nn.ZeroPad2d((0, 1, 0, 1)), nn.MaxPool2d(2, 1)))
    )
    blocks.append(("conv6", nn.Sequential(*_cbl(512, 1024, 3))))
    blocks.append(("neck", nn.Sequential(*_cbl(1024, 256, 1))))
    blocks.append(("head", nn.Sequential(*_cbl(256, 512, 3), nn.Conv2d(512, 255, 1))))
    return _chain(blocks), torch.randn(1, 3, 416, 416)


# --------------------------------------------------------------------------- Conformer-S


class _FeedForward(nn.Module):
    def __init__(self, d: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConformerBlock(nn.Module):
    """Macaron FF/2 - MHSA - convolution module - FF/2 - LayerNorm (Gulati et al. 2020, Fig. 1)."""

    def __init__(self, d: int, heads: int, kernel: int) -> None:
        super().__init__()
        self.ff1, self.ff2 = _FeedForward(d), _FeedForward(d)
        self.ln_att = nn.LayerNorm(d)
        self.att = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_conv = nn.LayerNorm(d)
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Conv1d(d, d, 1)
        self.ln_out = nn.LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.5 * self.ff1(x)
        h = self.ln_att(x)
        x = x + self.att(h, h, h, need_weights=False)[0]
        c = self.ln_conv(x).transpose(1, 2)
        c = nn.functional.glu(self.pw1(c), dim=1)
        c = self.pw2(nn.functional.silu(self.bn(self.dw(c))))[..., : x.shape[1]]
        x = x + c.transpose(1, 2)
        return self.ln_out(x + 0.5 * self.ff2(x))


class _Subsample(nn.Module):
    """Two 3x3 stride-2 convolutions over (time, mel), then a linear projection to d."""

    def __init__(self, mels: int, d: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, d, 3, 2), nn.ReLU(), nn.Conv2d(d, d, 3, 2), nn.ReLU())
        f = ((mels - 1) // 2 - 1) // 2
        self.proj = nn.Linear(d * f, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [B, T, mels]
        y = self.conv(x.unsqueeze(1))  # [B, d, T', F']
        b, c, t, f = y.shape
        return self.proj(y.permute(0, 2, 1, 3).reshape(b, t, c * f))


def conformer_s() -> tuple[nn.Sequential, torch.Tensor]:
    d = 144
    blocks: list[tuple[str, nn.Module]] = [("subsample", _Subsample(80, d))]
    blocks += [(f"conformer{i}", ConformerBlock(d, 4, 31)) for i in range(16)]
    blocks.append(("ctc", nn.Linear(d, 1024)))  # 1,024 word pieces
    return _chain(blocks), torch.randn(1, 100, 80)  # 1 s of 10 ms frames


# --------------------------------------------------------------------------- GPT-2 decode step


class CachedDecoderLayer(nn.Module):
    """Pre-LN GPT-2 layer for one new token attending to ``context`` cached keys/values."""

    def __init__(self, d: int, heads: int, context: int) -> None:
        super().__init__()
        self.h, self.dk = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.register_buffer("k_cache", torch.randn(1, heads, context, d // heads))
        self.register_buffer("v_cache", torch.randn(1, heads, context, d // heads))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [1, 1, d]
        q, k, v = self.qkv(self.ln1(x)).split(x.shape[-1], dim=-1)
        shape = (1, self.h, 1, self.dk)
        k = torch.cat((self.k_cache, k.reshape(shape)), dim=2)
        v = torch.cat((self.v_cache, v.reshape(shape)), dim=2)
        att = torch.softmax(q.reshape(shape) @ k.transpose(-1, -2) / math.sqrt(self.dk), dim=-1)
        x = x + self.out((att @ v).reshape(1, 1, -1))
        return x + self.mlp(self.ln2(x))


class _Embed(nn.Module):
    def __init__(self, vocab: int, d: int, context: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context + 1, d)
        self.position = context

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tok(ids) + self.pos.weight[self.position]


def gpt2_decode() -> tuple[nn.Sequential, torch.Tensor]:
    vocab, d, context = 50257, 768, 256
    blocks: list[tuple[str, nn.Module]] = [("embed", _Embed(vocab, d, context))]
    blocks += [(f"layer{i}", CachedDecoderLayer(d, 12, context)) for i in range(12)]
    blocks.append(("lm_head", nn.Sequential(nn.LayerNorm(d), nn.Linear(d, vocab, bias=False))))
    return _chain(blocks), torch.randint(0, vocab, (1, 1))


def _chain(blocks: list[tuple[str, nn.Module]]) -> nn.Sequential:
    seq = nn.Sequential()
    for name, mod in blocks:
        seq.add_module(name.replace(".", "_"), mod)
    return seq.eval()


#: Builders by model name.
ARCHITECTURES: dict[str, Callable[[], tuple[nn.Sequential, torch.Tensor]]] = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "yolov3_tiny": yolov3_tiny,
    "conformer_s": conformer_s,
    "gpt2_decode": gpt2_decode,
}
