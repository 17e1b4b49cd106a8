"""`lavida eval`: a scan of a standard VAD benchmark plus its metrics (`evaluate`), the benchmark
readers (`vad_datasets`) and the synthetic held-out sets of the demo model (`shapes_testset`)."""
