"""Speed benchmarks behind `lincir bench` (not the retrieval benchmarks, which live in lincir.eval.benchmarks).

Each function times two or more sides of one comparison on the same inputs, interleaved, and returns a
dataclass of medians; it prints nothing. `realistic_captions` makes captions of web-caption length.
"""
from lincir.speed.captions import caption_word_counts, realistic_captions
from lincir.speed.encoders import EncodersBench, bench_encoders
from lincir.speed.keywords import KeywordsBench, bench_keywords
from lincir.speed.retrieval import RetrievalBench, bench_retrieval
from lincir.speed.timing import Timing, interleaved, peak_memory, set_threads
from lincir.speed.train_step import TrainStepBench, bench_train_step

__all__ = [
    "EncodersBench", "KeywordsBench", "RetrievalBench", "Timing", "TrainStepBench", "bench_encoders",
    "bench_keywords", "bench_retrieval", "bench_train_step", "caption_word_counts", "interleaved", "peak_memory",
    "realistic_captions", "set_threads",
]
