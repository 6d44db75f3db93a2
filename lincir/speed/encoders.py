"""`lincir bench encoders`: what the text tower costs against the image tower, and a LinCIR step against
an image-based (Pic2Word-style) step, on one backbone.

Encoder sides (forward, no grad): the text tower on captions padded to the full context (as CLIP is usually
run, and as the paper's "about 1.4x faster" compares), the text tower on the same captions cut to each
batch's longest, and the image tower on preprocessed pixels. Step sides (forward, backward, AdamW): our
LinCIR step (masked captions cut to the batch's longest, cached targets) and a Pic2Word-style step, which
must run the frozen image tower on every batch before its contrastive text pass. Pixels are random: decoding
and resizing images, which a real image-based run also pays, is left out, so the image side is a lower bound.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lincir.core.keyed_random import mix64
from lincir.core.losses import keyed_streams, pic2word_loss, smp_loss
from lincir.core.phi import Phi
from lincir.core.text_encoding import encode_text_with_pseudo_tokens
from lincir.data.feature_cache import encode_captions
from lincir.speed.timing import Timing, interleaved

TEMPLATE = "a photo of $"


@dataclass
class EncodersBench:
    """Encoder throughputs and step times on one backbone (each `Timing` handles `batch_size` items)."""

    backbone: str
    batch_size: int
    image_size: int
    text_full: Timing  # text tower, captions padded to the context length
    text_trimmed: Timing  # text tower, captions cut to the batch's longest
    image: Timing  # image tower
    lincir_step: Timing
    pic2word_step: Timing
    trimmed_tokens: float  # mean tokens per row on the trimmed text side
    context_length: int

    @property
    def text_vs_image(self) -> float:
        """How many times faster the text tower (full context) is than the image tower, per item."""
        return self.image.median / self.text_full.median

    @property
    def trimmed_text_vs_image(self) -> float:
        return self.image.median / self.text_trimmed.median

    @property
    def lincir_vs_pic2word(self) -> float:
        return self.pic2word_step.median / self.lincir_step.median


def _image_size(backbone) -> int:
    size = getattr(backbone.model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def bench_encoders(backbone, captions: list[str], masked: list[str], batch_size: int = 16, rounds: int = 3,
                   warmup: int = 1, seed: int = 0, autocast=None) -> EncodersBench:
    """Time the three encoder sides together, then the two step sides together (each interleaved).

    captions / masked: at least (warmup + rounds) * batch_size of each; round r uses the r-th slice.
    autocast: context manager factory used around every side (default: none, fp32).
    """
    b, need = batch_size, (warmup + rounds) * batch_size
    if len(captions) < need or len(masked) != len(captions):
        raise ValueError(f"need at least {need} captions and as many masked ones")
    autocast = autocast or (lambda: torch.autocast(device_type="cpu", enabled=False))
    dev, size = backbone.device, _image_size(backbone)
    g = torch.Generator().manual_seed(mix64(seed, 0x1A6E))
    pixels = torch.randn(b, 3, size, size, generator=g).to(dev)  # (B, 3, H, W), one batch reused
    batches = [slice(r * b, (r + 1) * b) for r in range(warmup + rounds)]
    trimmed: list[int] = []

    @torch.no_grad()
    def text_full(r: int) -> None:
        with autocast():
            encode_text_with_pseudo_tokens(backbone.model, backbone.tokenize(captions[batches[r]]), direct=False)

    @torch.no_grad()
    def text_trimmed(r: int) -> None:
        tokens = backbone.trim(backbone.tokenize(captions[batches[r]]))
        trimmed.append(tokens.shape[1])
        with autocast():
            backbone.encode_text(tokens)

    @torch.no_grad()
    def image(r: int) -> None:
        with autocast():
            backbone.encode_images(pixels)

    enc = interleaved({"text_full": text_full, "text_trimmed": text_trimmed, "image": image}, rounds, warmup, b)

    targets = torch.from_numpy(encode_captions(backbone, captions[:need]))  # the cache's rows, (N, d)
    template = backbone.tokenize([TEMPLATE])
    scale = float(backbone.model.logit_scale.exp())
    phis = {}
    for name in ("lincir", "pic2word"):
        phi = Phi.for_backbone(backbone, seed).to(dev).train()
        phis[name] = (phi, torch.optim.AdamW(phi.parameters(), lr=1e-4, weight_decay=0.01))

    def step(name: str, loss: torch.Tensor) -> None:
        opt = phis[name][1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def lincir(r: int) -> None:
        tokens = backbone.trim(backbone.tokenize(masked[batches[r]]))
        noise_g, drop_g = keyed_streams(seed, r, range(b))
        with autocast():
            loss = smp_loss(backbone, phis["lincir"][0], tokens, targets[batches[r]], "lincir", 1.0, noise_g, drop_g)
        step("lincir", loss)

    def pic2word(r: int) -> None:
        _, drop_g = keyed_streams(seed, r, range(b))
        with autocast():
            with torch.no_grad():
                v = backbone.encode_images(pixels).float()  # (B, d): the frozen image tower, every step
            loss = pic2word_loss(backbone, phis["pic2word"][0], v, template, drop_g, scale)
        step("pic2word", loss)

    steps = interleaved({"lincir": lincir, "pic2word": pic2word}, rounds, warmup, b)
    return EncodersBench(backbone.name, b, size, enc["text_full"], enc["text_trimmed"], enc["image"],
                         steps["lincir"], steps["pic2word"], float(np.mean(trimmed)), int(backbone.context_length))
