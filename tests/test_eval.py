"""`lavida eval` end to end: tiny datasets laid out exactly as each benchmark publishes them
(tests/benchmark_layouts.py), through the real scan (Ray Data on one local Ray, started once for
the module), read back with DuckDB, scored.

Most runs use the FAKE detector tests/fake_detector.BrightDetector (score = frame brightness, mask =
bright pixels): the generated anomalies are bright squares, so a correct evaluation gives frame AUC
(and AP) exactly 1 and a label/frame misalignment (off by one sample, wrong tail, wrong file for a
label line) drops it. One run uses the tiny LAVIDA preset (random weights) as the user would.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from benchmark_layouts import (
    HEIGHT,
    WIDTH,
    Spec,
    write_shanghaitech,
    write_ubnormal,
    write_ucf_crime,
    write_ucsd_ped2,
    write_xd_violence,
)
from PIL import Image

from jobs.cli import main
from jobs.out import duck

pytestmark = pytest.mark.slow

TESTS = Path(__file__).resolve().parent
FAKE = "fake_detector:BrightDetector"  # FAKE detector: known scores and masks
LOGIT_FAKE = "logit_detector:LogitBrightDetector"  # FAKE detector with logits too
FAST = ["--sample-interval", "2", "--frames-per-clip", "3", "--batch-size", "4"]

# dataset -> (layout writer, test videos). Anomalous ranges start on a sampled frame (even) and end
# before the next one, so scores repeated over the sample interval match the labels exactly.
DATASETS = {
    "ucsd_ped2": (write_ucsd_ped2, [Spec("x", 10, ((2, 5),)), Spec("y", 7)]),
    "shanghaitech": (write_shanghaitech, [Spec("01_0014", 10, ((4, 7),)), Spec("01_0015", 6, ((0, 5),)), Spec("02_0001", 7)]),
    "ubnormal": (write_ubnormal, [Spec("abnormal_scene_1_scenario_1", 10, ((4, 7),)), Spec("normal_scene_2_scenario_3", 8)]),
    "ucf_crime": (
        write_ucf_crime,
        [Spec("Abuse028_x264.mp4", 14, ((2, 5), (10, 11)), "Abuse"), Spec("Normal_Videos_003_x264.mp4", 9)],
    ),
    "xd_violence": (
        write_xd_violence,
        [Spec("Bad.Boys.1995", 12, ((6, 9),), "B1-0-0"), Spec("Calm.Day.2001", 8, (), "A")],
    ),
}


def layout(tmp_path, dataset):
    writer, specs = DATASETS[dataset]
    root = tmp_path / dataset
    root.mkdir()
    writer(root, specs)
    return root, specs


def lavida_eval(capsys, *args):
    """Run `lavida eval …`; returns (exit status, stdout, stderr)."""
    status = main(["eval", *map(str, args)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def json_of(stdout):
    """The JSON document the command printed (Ray may print lines of its own before it)."""
    start = stdout.rindex("\n{\n") + 1 if "\n{\n" in stdout else stdout.index("{")
    return json.JSONDecoder().raw_decode(stdout[start:])[0]


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_eval_each_benchmark_layout_end_to_end(local_ray, tmp_path, capsys, dataset):
    root, specs = layout(tmp_path, dataset)
    pixel = ["--pixel"] if dataset in ("ucsd_ped2", "shanghaitech", "ubnormal") else []
    status, out, err = lavida_eval(
        capsys, "--dataset", dataset, "--root", root, "--out", tmp_path / "out", "--detector-class", FAKE, *FAST, *pixel,
        "--protocol", "lavida", "--format", "json",
    )  # fmt: skip
    assert status == 0, err
    result = json_of(out)
    assert (result["n_videos"], result["n_scored"], result["n_failed"]) == (len(specs), len(specs), 0)
    assert result["n_frames"] == sum(spec.n_frames for spec in specs)  # every frame labelled and scored
    assert result["frame_auc"] == 1.0
    single_class = sum(len(set(spec.labels().tolist())) == 1 for spec in specs)
    assert result["n_videos_skipped"] == single_class
    assert result["video_mean"] == 1.0
    assert result["sample_interval"] == 2 and result["frames_per_clip"] == 3
    if dataset == "xd_violence":
        assert result["frame_ap"] == 1.0 and result["paper_metric"] == "frame AP" and result["ours_for_paper"] == 100.0
    else:
        assert result["frame_ap"] is None
    if pixel:  # mask x score against the ground-truth squares (lossy codecs blur the edges a little)
        assert result["pixel_auc"] > (0.999 if dataset == "ucsd_ped2" else 0.97)
    else:
        assert result["pixel_auc"] is None
    from jobs.eval.vad_datasets import BENCHMARKS

    assert result["anomaly_types"] == list(BENCHMARKS[dataset].anomaly_types)  # the dataset's defaults


def test_eval_reference_protocol_pixel_auc_from_logits_over_whole_windows(local_ray, tmp_path, capsys):
    """--protocol reference (the default) on Ped2 with --pixel: the videos are scored again in process
    for their mask logits (OUT keeps binary masks), whole windows only (interval 2 x 3 frames = 6:
    x keeps 6 of its 10 frames, y 6 of 7), frame scores as logits against the 0/1 end points."""
    root, specs = layout(tmp_path, "ucsd_ped2")
    status, out, err = lavida_eval(
        capsys, "--dataset", "ucsd_ped2", "--root", root, "--out", tmp_path / "out", "--detector-class", LOGIT_FAKE,
        *FAST, "--pixel", "--format", "json",
    )  # fmt: skip
    assert status == 0, err
    result = json_of(out)
    assert result["protocol"] == "reference" and result["n_scored"] == 2 and result["n_frames"] == 6 + 6
    assert result["frame_auc"] == 1.0 and result["n_videos_skipped"] == 0  # y (all normal) counts in the mean
    assert result["video_mean"] == 1.0
    assert result["pixel_auc"] > 0.99  # the square's edges blur a little through bilinear 1024 x 1024 and 158 x 238


def test_report_over_eval_of_a_frame_folder_benchmark_shows_the_peak_frames(local_ray, tmp_path, capsys):
    """UCSD Ped2 ships frame folders of .tif images: the report reads its peak frames through the
    same video reader as the scan (jobs/video/reader.py), not through decord alone."""
    root, specs = layout(tmp_path, "ucsd_ped2")
    out, to = tmp_path / "out", tmp_path / "report"
    status, _, err = lavida_eval(capsys, "--dataset", "ucsd_ped2", "--root", root, "--out", out, "--detector-class", FAKE, *FAST)
    assert status == 0, err
    # BrightDetector's score is the frame's mean brightness: about 0.16 without the square, 0.23 with it
    assert main(["report", str(out), "--to", str(to), "--min-score", "0.2", "--min-duration", "0"]) == 0
    page = (to / "index.html").read_text(encoding="utf-8")
    assert "peak frame not shown" not in page
    pictures = sorted((to / "events").glob("*.png"))
    assert len(pictures) == 1  # the square in video x (frames 2..5); y has none
    image = np.asarray(Image.open(pictures[0]).convert("RGB"))
    assert image.shape == (HEIGHT, WIDTH, 3)  # the decoded peak frame, at the benchmark's size
    assert (image.max(axis=2) > 150).sum() > 100  # the bright square (16 x 16, under its mask overlay)


def test_eval_tiny_model_table_then_resume(local_ray, tmp_path, capsys):
    """The tiny preset (random weights) on Ped2 with the paper's interval 1, table output; a second
    run over the same OUT scans nothing again and prints the same numbers."""
    root, specs = layout(tmp_path, "ucsd_ped2")
    out = tmp_path / "out"
    args = (
        "--dataset",
        "ucsd_ped2",
        "--root",
        root,
        "--out",
        out,
        "--frames-per-clip",
        "4",
        "--pixel",
        "--protocol",
        "lavida",
        "--anomaly",
        "a car",
        "--anomaly",
        "a bicycle",
    )
    status, first, err = lavida_eval(capsys, *args)
    assert status == 0, err
    table = first[first.index("UCSD Ped2") :]
    assert "2 of 2 test videos scored" in table and "sample interval 1" in table and "UNTRAINED" in table
    pixel_row = next(line for line in table.splitlines() if line.startswith("pixel AUC"))
    ours, paper, definition = pixel_row.split()[-3:]
    assert paper == "87.68" and 0.0 <= float(ours) <= 100.0 and definition == "lavida"
    frame_row = next(line for line in table.splitlines() if line.startswith("frame AUC"))
    assert 0.0 <= float(frame_row.split()[-3]) <= 100.0 and frame_row.split()[-2] == "-"

    status, second, err = lavida_eval(capsys, *args)
    assert status == 0, err
    assert second[second.index("UCSD Ped2") :] == table
    con = duck.connect(str(out))
    runs = con.sql("select n_ok, n_skipped from runs order by started_at").fetchall()
    assert runs == [(2, 0), (0, 2)]
    frames = con.sql("select count(*) from frames").fetchall()
    assert frames == [(sum(spec.n_frames for spec in specs),)]  # interval 1: every frame scored once


def test_eval_refuses_to_mix_runs_with_other_settings(local_ray, tmp_path, capsys):
    root, _ = layout(tmp_path, "ucsd_ped2")
    out = tmp_path / "out"
    common = ("--dataset", "ucsd_ped2", "--root", root, "--out", out, "--detector-class", FAKE, "--frames-per-clip", "3")
    assert lavida_eval(capsys, *common, "--sample-interval", "2")[0] == 0
    status, _, err = lavida_eval(capsys, *common, "--sample-interval", "3")
    assert status == 2 and "already holds" in err and "sample interval 2" in err and "--rescan" in err
    status, out_text, err = lavida_eval(capsys, *common, "--sample-interval", "3", "--rescan", "--format", "json")
    assert status == 0, err
    assert json_of(out_text)["sample_interval"] == 3


def _drop(path):
    path.unlink()


# dataset, how to break its layout, a piece of the error message (the file that does not fit)
BROKEN = [
    ("ucsd_ped2", lambda root: _drop(root / "UCSDped2/Test/Test002_gt/003.bmp"), "Test002_gt should hold one .bmp mask per frame"),
    ("ucsd_ped2", lambda root: shutil.rmtree(root / "UCSDped2"), "no UCSDped2/Test folder"),
    # the reference protocol (the default) takes ShanghaiTech's frame labels from its pixel masks
    ("shanghaitech", lambda root: _drop(root / "testing/test_pixel_mask/02_0001.npy"), "test_pixel_mask/02_0001.npy does not exist"),
    ("ubnormal", lambda root: _drop(root / "abnormal_test_video_names.txt"), "no abnormal_test_video_names.txt"),
    (
        "ubnormal",
        lambda root: (root / "Scene1/abnormal_scene_1_scenario_1_annotations/abnormal_scene_1_scenario_1_tracks.txt").write_text("1;4;7\n"),
        "abnormal_scene_1_scenario_1_tracks.txt line 1",
    ),
    ("ubnormal", lambda root: _drop(root / "Scene1/abnormal_scene_1_scenario_1.mp4"), "abnormal_scene_1_scenario_1.mp4 does not exist"),
    (
        "ucf_crime",
        lambda root: (root / "Temporal_Anomaly_Annotation_for_Testing_Videos.txt").write_text("Abuse028_x264.mp4  Abuse  2  5\n"),
        "Temporal_Anomaly_Annotation_for_Testing_Videos.txt line 1",
    ),
    (
        "ucf_crime",
        lambda root: _drop(root / "Anomaly-Videos-Part-1/Abuse/Abuse028_x264.mp4"),
        "expected Anomaly-Videos*/Abuse/Abuse028_x264.mp4",
    ),
    (
        "xd_violence",
        lambda root: (root / "XD-Violence-test/annotations.txt").write_text("Gone.Movie__#00-01_label_B2 3 9\n"),
        "annotates 'Gone.Movie__#00-01_label_B2'",
    ),
    ("xd_violence", lambda root: _drop(root / "XD-Violence-test/annotations.txt"), "no annotations.txt"),
]


@pytest.mark.parametrize("dataset, damage, message", BROKEN)
def test_a_layout_that_does_not_fit_is_one_line_naming_the_file(tmp_path, capsys, dataset, damage, message):
    root, _ = layout(tmp_path, dataset)
    damage(root)
    status, _, err = lavida_eval(capsys, "--dataset", dataset, "--root", root, "--out", tmp_path / "out")
    assert status == 2
    assert message in err and err.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "out").exists()  # nothing scanned


def test_pixel_on_a_dataset_without_masks_is_refused(tmp_path, capsys):
    root, _ = layout(tmp_path, "ucf_crime")
    status, _, err = lavida_eval(capsys, "--dataset", "ucf_crime", "--root", root, "--out", tmp_path / "out", "--pixel")
    assert status == 2 and "has no pixel masks" in err
