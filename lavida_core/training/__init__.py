"""Training LAVIDA on pseudo-anomalies: the losses, the Anomaly Exposure Sampler, the readers of
segmentation datasets (local files), the synthetic shapes data, the grounding stage and the pure
train step (`loop`). No Ray, no job config, no train-state folders (those are `jobs.train`)."""
