"""Features computed once per (corpus, backbone) and kept on disk, memory-mapped: caption targets for
text-only training and image features for the image-based baseline."""
from __future__ import annotations

import contextlib
import os
from typing import Callable, Iterator

import numpy as np
import torch

from lincir.storage import atomic_write, atomic_write_text, cache_dir, sha256_file, sha256_text

# Cached features are computed on this many CPU threads, whatever the caller's: a product's last bits depend on how
# many threads split it, and an entry is read by processes of any thread count (a job's one-thread workers read
# what its main process wrote), so it must not depend on which process happened to fill it first. Two by default:
# the 2-core machines every committed number comes from. LINCIR_ENCODE_THREADS sets another count (a many-core
# machine; the tests, one thread per xdist worker); the count is in every key, so entries of two counts never mix.
ENCODE_THREADS = int(os.environ.get("LINCIR_ENCODE_THREADS", "2"))


@contextlib.contextmanager
def _encode_threads() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(ENCODE_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _cached_features(kind: str, key_parts: tuple[str, ...], compute: Callable[[], np.ndarray],
                     use_cache: bool) -> np.ndarray:
    """A float feature entry: computed on ENCODE_THREADS threads, that count part of its key (after the version,
    key_parts[0]; v2: v1 entries hold the bits of whichever process wrote them)."""
    def fixed() -> np.ndarray:
        with _encode_threads():
            return compute()

    key = sha256_text(key_parts[0], f"threads{ENCODE_THREADS}", *key_parts[1:])
    return _cached_array(key, kind, fixed, use_cache)


def _cached_array(key: str, kind: str, compute: Callable[[], np.ndarray], use_cache: bool = True) -> np.ndarray:
    """A cache entry `<key>.npy` with its content checksum beside it (`<key>.npy.sha256`): an entry that is
    truncated, altered (same size, valid header) or lacks its checksum is recomputed, never trusted."""
    path = cache_dir(kind) / f"{key}.npy"
    check = path.with_name(path.name + ".sha256")
    if use_cache and path.is_file() and check.is_file():
        try:
            if check.read_text(encoding="ascii").strip() == sha256_file(path):
                return np.load(path, mmap_mode="r")
        except (ValueError, OSError, UnicodeDecodeError):
            pass  # a damaged cache entry is recomputed, never trusted
    arr = compute()
    if use_cache:
        atomic_write(path, lambda tmp: np.save(open(tmp, "wb"), arr))
        atomic_write_text(check, sha256_file(path) + "\n")
    return arr


def cached_array(kind: str, key: str, compute: Callable[[], np.ndarray], use_cache: bool = True) -> np.ndarray:
    """An array under cache_dir(kind)/key.npy (memory-mapped), computed once; the caller's key names its content."""
    return _cached_array(key, kind, compute, use_cache)


def cached_tokens(backbone, texts: list[str], use_cache: bool = True, chunk: int = 8192) -> torch.Tensor:
    """(N, context) int64 token ids of texts, tokenized once per (backbone, texts) and kept on disk as int32:
    the runs of one seed share their masked texts whatever their noise, and BPE in Python is slow."""
    def compute() -> np.ndarray:
        ids = torch.cat([backbone.tokenizer(texts[i:i + chunk]) for i in range(0, len(texts), chunk)])
        return ids.numpy().astype(np.int32)

    key = sha256_text("tokens-v1", backbone.fingerprint(), str(len(texts)), *texts)
    return torch.from_numpy(np.array(_cached_array(key, "tokens", compute, use_cache), dtype=np.int64))


def token_lengths(backbone, captions: list[str], chunk: int = 4096) -> torch.Tensor:
    """Tokens per caption (start and end of text included; the full context for towers that must not be
    trimmed), for length bucketing."""
    out = []
    for i in range(0, len(captions), chunk):
        out.append(backbone.lengths(backbone.tokenizer(captions[i:i + chunk])))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def encode_captions(backbone, captions: list[str], batch_size: int = 256, lengths: torch.Tensor | None = None,
                    progress: bool = False) -> np.ndarray:
    """E_T of every caption (N, d) float32, batched by similar length so each batch is trimmed tight."""
    from tqdm.auto import tqdm

    lengths = token_lengths(backbone, captions) if lengths is None else lengths
    order = torch.argsort(lengths, stable=True)
    out = np.zeros((len(captions), backbone.embed_dim), dtype=np.float32)
    with tqdm(total=len(captions), desc="caption features", disable=not progress) as bar:
        feats = backbone.encode_texts([captions[j] for j in order.tolist()], batch_size, on_batch=bar.update)
    out[order.numpy()] = feats.numpy()
    return out


def caption_targets(backbone, captions: list[str], corpus_key: str, use_cache: bool = True,
                    progress: bool = False) -> np.ndarray:
    """Cached E_T(captions): keyed by the corpus content and the backbone with its weights.

    A corpus that is mostly duplicates (at most half its captions distinct) is encoded once per distinct
    caption, so 100,000 copies of one caption cost one encoding; its entry has its own key, since batches of
    other composition may differ in the last bits (corpora with few duplicates are encoded as before)."""
    distinct = list(dict.fromkeys(captions))
    if len(distinct) * 2 > len(captions):
        return _cached_features("targets", ("targets-v2", backbone.fingerprint(), corpus_key, str(len(captions))),
                                lambda: encode_captions(backbone, captions, progress=progress), use_cache)

    def compute() -> np.ndarray:
        where = {c: i for i, c in enumerate(distinct)}
        feats = encode_captions(backbone, distinct, progress=progress)  # (U, d)
        return feats[np.fromiter((where[c] for c in captions), dtype=np.int64, count=len(captions))]

    return _cached_features("targets", ("targets-distinct-v2", backbone.fingerprint(), corpus_key,
                                        str(len(captions))), compute, use_cache)


@torch.no_grad()
def encode_image_tensors(backbone, pixels: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """E_I of preprocessed pixels (N, 3, H, W) -> (N, d) float32."""
    out = [backbone.encode_images(pixels[i:i + batch_size]).float().cpu() for i in range(0, len(pixels), batch_size)]
    return torch.cat(out).numpy()


def cached_image_features(backbone, key: str, compute: Callable[[], np.ndarray], use_cache: bool = True) -> np.ndarray:
    """Image features under a caller's key (image list hash), together with the backbone's fingerprint; computed
    on ENCODE_THREADS threads."""
    return _cached_features("image-features", ("images-v2", backbone.fingerprint(), key), compute, use_cache)
