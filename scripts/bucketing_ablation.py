"""Bucketing against i.i.d. batches on the shapes world: python scripts/bucketing_ablation.py OUT [SEEDS...]"""
import sys

from lincir.experiments.bucketing import run_bucketing_ablation

if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[2:]] or [0, 1, 2, 3, 4]
    run_bucketing_ablation(seeds, sys.argv[1])
