"""World images to model input without PIL: the same tensors open_clip's preprocess gives for 64x64 renders."""
from __future__ import annotations

import numpy as np
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD


def images_to_tensor(images: np.ndarray, mean=OPENAI_DATASET_MEAN, std=OPENAI_DATASET_STD) -> torch.Tensor:
    """uint8 (B, H, W, 3) at the model's image size -> normalised float32 (B, 3, H, W).

    Equals open_clip's Resize + CenterCrop + ToTensor + Normalize when H = W = the model's image size (PIL's resize
    to the same size is an exact copy); tested against the preprocess on real renders.
    """
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - m) / s


def encode_world_images(backbone, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """Unnormalised image features (N, d) of uint8 world images through a Backbone, in batches, without grad."""
    size = backbone.model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    if images.shape[1:3] != (size, size):
        raise ValueError(f"world images are {images.shape[1]}x{images.shape[2]}, the backbone expects {size}x{size}")
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            out.append(backbone.encode_images(images_to_tensor(images[i:i + batch_size])).float().cpu())
    return torch.cat(out) if out else torch.empty(0, backbone.embed_dim)
