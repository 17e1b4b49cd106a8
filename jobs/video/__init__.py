"""Reading videos, shared by the scan, the report and the benchmarks: one clip's sampled frames with
the decoder's timestamps (`reader`, decoding in order through `frame_decoder`), folders of numbered
images read as videos (`frame_sequences`), and frames scaled to a model's input sizes as they are
decoded (`frame_scaling`, `lavida scan --frames-at-model-size`)."""
