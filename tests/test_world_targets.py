"""The embedded default's targets (issue 3), judged by lincir.experiments.stats' rule and checked on a fresh run of the full main job (slow: minutes)."""
import pytest

from lincir.experiments.main_job import run_main_job
from lincir.experiments.main_job_config import PRESETS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_main_job(PRESETS["full"], tmp_path_factory.mktemp("world-main"), progress=False, log=lambda *_: None)


def test_lincir_beats_image_plus_text(results):
    assert results["claims"]["lincir_beats_image_text_R@10_by_10"]
    assert results["claims"]["lincir_beats_image_text_mAP@10_by_3"]


def test_lincir_level_with_pic2word_and_template_masking(results):
    assert results["claims"]["lincir_level_with_pic2word_R@10"]
    assert results["claims"]["keywords_level_with_template_R@10"]


def test_noise_wins_under_the_largest_gap_shift(results):
    assert results["claims"]["noise_beats_none_at_largest_shift_by_5"]


def test_modality_gap_and_ceiling_are_measured(results):
    assert results["modality_gap"]["gap"] >= 0.4
    assert results["methods"]["target-caption"]["R@10"]["mean"] > 95
    assert results["timings"]["job_seconds"] > 0
