"""The scenes world: a main object (shape, colour, size) in a context that captions mostly leave out (position,
backdrop colour and pattern, lighting, a distractor object, clutter, occlusion); alt-text-like captions; composed
queries that change the object and keep the context, on a gallery built around them (exact ground truth and hard
negatives). Everything is seeded; see data.py for the splits and coverage.py for caption coverage.
"""
from lincir.world.scenes.coverage import caption_coverage, named_factors
from lincir.world.scenes.data import (SCENES_VERSION, SceneBench, SceneGallery, SceneQuery, benchmark, clip_pairs,
                                      train_caption_scenes, train_captions)
from lincir.world.scenes.factors import (CONTEXT_FACTORS, CONTEXT_NAMES, FACTOR_NAMES, FACTORS, OBJECT_FACTORS,
                                         OBJECT_NAMES, Scene, random_scenes, scene_codes)
from lincir.world.scenes.language import full_caption, modification_text, sample_caption
from lincir.world.scenes.render import render, render_many

__all__ = ["CONTEXT_FACTORS", "CONTEXT_NAMES", "FACTORS", "FACTOR_NAMES", "OBJECT_FACTORS", "OBJECT_NAMES",
           "SCENES_VERSION", "Scene", "SceneBench", "SceneGallery", "SceneQuery", "benchmark", "caption_coverage",
           "clip_pairs", "full_caption", "modification_text", "named_factors", "random_scenes", "render",
           "render_many", "sample_caption", "scene_codes", "train_caption_scenes", "train_captions"]
