"""`lavida scan` arguments and user errors (no Ray is started: these fail before the pipeline)."""

import pytest

from jobs.cli import build_parser, main
from jobs.common.arguments import parse_storage_options
from jobs.common.errors import UserError
from jobs.scan.job import ScanOptions, options_from_args, read_prompts, scan
from jobs.scan.options import DEFAULT_ANOMALY_TYPES
from lavida_core.clips import SAMPLE_KEYFRAMES


def parse(*argv):
    return options_from_args(build_parser().parse_args(["scan", *argv]))


def test_defaults_and_options(tmp_path):
    options = parse("/archive", "--out", "/out")
    assert (options.sample_interval, options.frames_per_clip, options.model, options.device) == (16, 8, "tiny", "cpu")
    assert options.anomaly_types == DEFAULT_ANOMALY_TYPES and options.gpus_per_actor == 0 and options.decode_cpus == 1
    assert parse("/archive", "--out", "/out", "--sample-interval", "keyframes").sample_interval == SAMPLE_KEYFRAMES
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("# surveillance\nsmoke near the dock\n\na person climbing the fence\n")
    options = parse("s3://cams/", "--out", "s3://out/", "--anomaly", "fire", "--prompts", str(prompts), "--device", "cuda",
                    "--storage-option", "endpoint_url=http://127.0.0.1:9000", "--storage-option", "anon=false", "--rescan")  # fmt: skip
    assert options.anomaly_types == ("fire", "smoke near the dock", "a person climbing the fence")
    assert options.gpus_per_actor == 1.0 and options.rescan
    assert options.storage_options == {"endpoint_url": "http://127.0.0.1:9000", "anon": False}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sample-interval", "0"], "--sample-interval must be >= 1, or keyframes"),
        (["--sample-interval", "keyframe"], "--sample-interval must be >= 1, or keyframes"),
        (["--frames-per-clip", "0"], "--frames-per-clip must be >= 1"),
        (["--num-actors", "0"], "--num-actors must be >= 1"),
        (["--decode-cpus", "0"], "--decode-cpus must be >= 1"),
        (["--device", "cuda", "--gpus-per-actor", "0"], "--gpus-per-actor > 0"),
        (["--model", "/no/such/model"], "no such model folder"),
        (["--storage-option", "endpoint_url"], "KEY=VALUE"),
        (["--prompts", "/no/such/prompts.txt"], "cannot read --prompts"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    (tmp_path / "archive").mkdir()
    assert main(["scan", str(tmp_path / "archive"), "--out", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_missing_source_is_a_user_error(tmp_path, capsys):
    assert main(["scan", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "neither a folder" in capsys.readouterr().err


def test_empty_archive_finishes_without_ray(tmp_path):
    (tmp_path / "archive").mkdir()
    summary = scan(ScanOptions(source=str(tmp_path / "archive"), out=str(tmp_path / "out")))
    assert (summary.n_ok, summary.n_failed, summary.n_skipped) == (0, 0, 0)
    from deltalake import DeltaTable

    runs = DeltaTable(str(tmp_path / "out" / "runs")).to_pyarrow_table()  # as another Delta reader sees it
    assert runs.num_rows == 1 and runs["finished_at"][0].is_valid  # the start row was compacted away


def test_prompts_and_storage_option_parsing(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    with pytest.raises(UserError, match="no anomaly type"):
        read_prompts(str(empty))
    assert parse_storage_options(["key=a=b", "use_ssl=TRUE"]) == {"key": "a=b", "use_ssl": True}
