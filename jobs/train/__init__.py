"""`lavida train --config FILE`: train LAVIDA on pseudo-anomalies, in one process or through Ray Train.

The config file (JSON, or TOML by its .toml suffix) names the model to start from, the segmentation
datasets and their sampling ratios, and the TrainConfig / SamplerConfig / LossConfig fields:

    {
      "model": "tiny",                         # a preset (random weights) or a model folder
      "checkpoint": {"sam2_path": "sam2.1_hiera_small.pt"},   # optional, with a preset: local weights
      "model_config": {"prompt_templates": "fixed"},          # optional, with a preset: LavidaConfig fields changed
      "datasets": [
        {"layout": "coco", "name": "coco", "images": "coco/train2017",
         "annotations": "coco/annotations/instances_train2017.json", "ratio": 0.5},
        {"layout": "video_folders", "name": "vos", "root": "ytvos/train", "ratio": 0.5},
        {"layout": "synthetic_shapes", "name": "shapes", "ratio": 1.0, "n_videos": 64, "seed": 0}
      ],
      "synthetic_shapes": {"n_videos": 64},    # shorthand for one synthetic dataset, ratio 1
      "sampler": {"anomaly_ratio": 0.5, "n_anomalies": 8},
      "train": {"steps": 200, "batch_size": 2, "grad_accum": 1, "lr": 1e-3, "checkpoint_every": 50},
      "loss": {},
      "grounding": {"steps": 600, "batch_size": 32},   # optional: pre-train the encoders first
      "validation": {"every": 250, "sets": [{"name": "ped2", "dataset": "ucsd_ped2", "root": "UCSD"}]},
                                               # optional: probe held-out sets, keep the best (validation.py)
      "out": "runs/tiny-shapes"
    }

Dataset layouts (`DATASET_LAYOUTS` in config.py; each reader's published layout is in its module under
lavida_core/training/seg_datasets/): coco, video_folders, youtube_vos, ref_youtube_vos, ref_davis,
mevis, refer (RefCOCO/+/g, RefCLEF, gRefCOCO), ade20k, cityscapes, mapillary, cocostuff,
synthetic_shapes. `models/paper_train.json` is the reference's mixture (its datasets, ratios and
recipe) for the paper preset: replace each `<PATH>` with a local checkpoint or dataset folder.

OUT holds `checkpoints/step_NNNNNN/` (resumable train states, see jobs/train/state.py),
`loss.csv` (one row per step), `train_config.json` (the config as run) and, at the end, `model/`
(a `save_lavida` folder that `lavida scan --model OUT/model` reads). With a "grounding" section the
image and text encoders are first pre-trained to ground the datasets' names (lavida_core.training.grounding, not
part of the paper: for models that start from random weights), or those of its own "datasets" when it gives
any (entries as above; e.g. a synthetic_shapes dataset with "hold_out": false, every colour-shape
combination, as pretrained encoders know them); the result is kept in `grounding/` and reused by a
re-run or `--resume`. With a "validation" section, rank 0 scores the sets every
`every` steps as `lavida eval` would (validation.csv, a loss.csv column) and the model folder holds
the best probe's weights (jobs/train/validation.py). `--resume` continues from the
newest checkpoint; several workers (`--workers N`) run through Ray Train's TorchTrainer, gloo on CPU
and nccl on GPU, each drawing its own samples; rank 0 writes OUT (a folder every worker's node can
reach when they are on several nodes).

A config with "stage": "clip_contrastive" trains something else: the search's CLIP image tower of
a trained model folder ("init"), against its frozen text tower, every LAVIDA weight unchanged
(jobs/train/clip_stage.py has its format; models/demo_clip_train.json made the demo model's).

Modules: `config` (the file -> JobConfig, datasets -> sampler), `loop` (one process's training),
`state` (the OUT folder: train states, loss.csv, grounding/), `validation` (probes, best/),
`ray_train` (--workers N), `clip_stage` (the clip_contrastive stage), `cli`.
"""
