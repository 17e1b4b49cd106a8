"""The LAVIDA model, tensors in and tensors out: the five parts (`mllm`, `text_encoder`, `segmenter`,
`projector`, composed in `model`) and the token-compression steps. Never sees file paths, uint8 frames
or RLE (that is `lavida_core.detector` and its helpers); imports nothing from `lavida_core.training`."""
