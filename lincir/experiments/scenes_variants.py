"""Every scenes-world variant tried besides the current one, with the numbers it gave (R@10 per seed: phi fed the
image and phi fed the reference's full caption, no noise, and the paper's noise minus none). They are records of
other code or other CLIPs (`git show` of the commit named, or the command named, brings each back), kept so that the
main job's JSON holds every variant tried, as the issue asks, not only the one that is current.
docs/scenes-findings.md has their full tables and the commands that made them."""
from __future__ import annotations

PHASE_1_COMMIT = "ce9df22"  # the tree that holds world scenes-v1, its presets and the headroom prototype
DATA_PER_SEED_COMMIT = "b434c95"  # world scenes-v2, the main job drawing each seed's own captions and images
ONE_DATA_SET_COMMIT = "7b95a69"  # the 1,000-step CLIPs and the job on one data set, current until variant F
# Variant E: the code, the CLIP's two commands and how its M comparison ran.
E_COMMAND = ("52645ad; lincir world train-clip --preset scenes-clip-m --steps 3000 --eval-every 500 --out E; "
             "lincir world ship-clip --preset scenes-clip-m --from E --out E/ship; the M comparison "
             "(backbone_results) with weights E/ship/scenes-clip-m.safetensors")

VARIANTS: list[dict] = [
    {"name": "A", "world": "scenes-v1", "code": PHASE_1_COMMIT, "clip": "scenes-clip-s (phase 1), step 500",
     "recipe": "groups of 16 sharing 3 random factors of 10; captions at the alt-text rates",
     "phi_steps": 300, "seeds": [0], "image_R@10": [5.1], "full_caption_R@10": [9.7], "headroom_R@10": [4.6],
     "paper_noise_minus_none_R@10": [1.8], "note": "context factors at chance zero-shot"},
    {"name": "B", "world": "scenes-v1", "code": PHASE_1_COMMIT, "clip": "scenes-clip-s (phase 1), step 1000",
     "recipe": "6 groups sharing the object and 1 context factor; CLIP captions at 2x the rates",
     "phi_steps": 300, "seeds": [0, 1, 2], "image_R@10": [3.8, 3.9, 5.1], "full_caption_R@10": [9.7, 10.2, 11.8],
     "headroom_R@10": [5.9, 6.3, 6.7], "paper_noise_minus_none_R@10": [-0.5, -1.3, -2.0],
     "note": "shape starved (.28 zero-shot)"},
    {"name": "B, phi 1,500 steps", "world": "scenes-v1", "code": PHASE_1_COMMIT,
     "clip": "scenes-clip-s (phase 1), step 1000", "recipe": "as B", "phi_steps": 1500, "seeds": [0, 1, 2],
     "image_R@10": [14.1, 11.7, 11.6], "full_caption_R@10": [19.3, 18.5, 19.4], "headroom_R@10": [5.2, 6.8, 7.8],
     "paper_noise_minus_none_R@10": [-4.7, -1.7, -2.4], "note": "chosen after seeing the 300-step results"},
    {"name": "B, phi 6,000 steps", "world": "scenes-v1", "code": PHASE_1_COMMIT,
     "clip": "scenes-clip-s (phase 1), step 1000", "recipe": "as B", "phi_steps": 6000, "seeds": [0],
     "image_R@10": [13.2], "full_caption_R@10": [17.8], "headroom_R@10": [4.6],
     "paper_noise_minus_none_R@10": [-2.4], "note": "single run"},
    {"name": "C", "world": "scenes-v1", "code": PHASE_1_COMMIT, "clip": "scenes-clip-s-c (phase 1), step 500",
     "recipe": "3 groups sharing the object + 1 context factor, 3 sharing 4 random factors", "phi_steps": None,
     "seeds": [], "image_R@10": [], "full_caption_R@10": [], "headroom_R@10": [],
     "paper_noise_minus_none_R@10": [], "note": "CLIP only (shape .27 at step 500); no phi measured"},
    # Phase 2's first main job (world scenes-v2, the same CLIPs as now): each seed drew its own corpus and image
    # pool. The current job fixes the data (world_seed 0) and varies the rest; these are the M CLIP's numbers
    # of that run (`git show b434c95:figures/scenes_main_job.json` has every size and arm).
    {"name": "D, data per seed", "world": "scenes-v2", "code": DATA_PER_SEED_COMMIT, "clip": "scenes-clip-m",
     "recipe": "groups of 16 sharing 3 random factors of 10; CLIP captions at 2x the rates; 1,000 steps",
     "phi_steps": 300, "seeds": [0, 1, 2, 3, 4], "image_R@10": [11.5, 10.3, 11.2, 10.8, 13.0],
     "full_caption_R@10": [20.7, 21.0, 21.4, 22.0, 22.6], "headroom_R@10": [9.2, 10.7, 10.2, 11.2, 9.6],
     "paper_noise_minus_none_R@10": [-1.2, -1.3, -2.8, -1.6, -1.8],
     "note": "each seed its own data; S: headroom +5.3, noise -1.8; L: headroom +9.8, noise -3.8 (means of 5)"},
    # The job on one data set (world_seed 0) with the 1,000-step CLIPs: current from phase 2's second run until the
    # CLIPs were retrained on the 500-step schedule (variant F, the current one). M's numbers; the commit's
    # figures/scenes_main_job.json has every size and arm.
    {"name": "D, one data set", "world": "scenes-v2", "code": ONE_DATA_SET_COMMIT, "clip": "scenes-clip-m",
     "recipe": "as D, but one data set for every seed (world_seed 0); CLIPs 1,000 steps", "phi_steps": 300,
     "seeds": [0, 1, 2, 3, 4], "image_R@10": [11.5, 12.4, 10.5, 10.7, 12.9],
     "full_caption_R@10": [20.7, 22.2, 19.5, 21.6, 22.5],
     "headroom_R@10": [9.2, 9.8, 9.0, 10.9, 9.6], "paper_noise_minus_none_R@10": [-1.2, -1.1, -1.2, -1.9, -2.0],
     "note": "M: image retrieval 20.3, Pic2Word-style 24.0, modality gap 0.450, image variance off the text span "
             "0.145; S: headroom +4.7, noise -2.5; L: headroom +9.3, noise -2.4 (means of 5); 1,160 s fresh; "
             "replaced by F (500-step CLIPs), chosen on M's headroom with its noise result seen"},
    # The CLIP schedule tried after "D, one data set": the M CLIP trained three times as long (the shapes CLIP's
    # 3,000 steps), everything else as that job's M comparison (one data set, 5 seeds). Not shipped: the CLIP lived
    # in a scratch folder; the command below trains it again. (Variant F, the current one, went the other way.)
    {"name": "E, M CLIP 3,000 steps", "world": "scenes-v2", "code": E_COMMAND,
     "clip": "scenes-clip-m trained 3,000 steps (not shipped)",
     "recipe": "as D, one data set; the M CLIP's schedule 3,000 steps instead of 1,000", "phi_steps": 300,
     "seeds": [0, 1, 2, 3, 4], "image_R@10": [5.6, 5.2, 5.1, 6.3, 5.9],
     "full_caption_R@10": [8.8, 9.2, 10.0, 10.6, 9.8], "headroom_R@10": [3.2, 4.0, 4.9, 4.3, 3.9],
     "paper_noise_minus_none_R@10": [-2.5, -0.4, -1.3, -0.9, -1.1],
     "note": "M only; zero-shot shape .28, colour .53 (1,000-step M: .25, .74); modality gap 0.273 (0.450); image "
             "variance off the text span 0.078 (0.145); image retrieval 13.2 (20.3), Pic2Word-style 13.9 (24.0); "
             "not adopted: the headroom fell from +9.7 to +4.1"},
]
