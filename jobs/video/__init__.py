"""Reading videos, shared by the scan, the report and the benchmarks: one clip's sampled frames with
the decoder's timestamps (`reader`), and folders of numbered images read as videos (`frame_sequences`)."""
