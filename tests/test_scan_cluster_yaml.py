"""cluster.yaml is a valid Ray cluster launcher config with GPU workers that run our environment."""

from pathlib import Path

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CONFIG = Path(__file__).resolve().parents[1] / "cluster.yaml"


def test_cluster_yaml_validates_against_rays_schema():
    config = prepare_config(yaml.safe_load(CONFIG.read_text()))
    validate_config(config)  # raises on a schema error
    assert config["head_node_type"] in config["available_node_types"]


def test_gpu_workers_and_our_environment():
    config = yaml.safe_load(CONFIG.read_text())
    workers = {name: t for name, t in config["available_node_types"].items() if name != config["head_node_type"]}
    assert any(t["node_config"]["InstanceType"].startswith(("g", "p")) and t["max_workers"] >= 1 for t in workers.values())
    setup = "\n".join(config["setup_commands"])
    assert "pip install -q -e ~/lavida" in setup and "torch==2.14.1" in setup
    assert config["file_mounts"]["~/lavida"] == "."
    assert all("lavida-env/bin/ray start" in " ".join(config[k]) for k in ("head_start_ray_commands", "worker_start_ray_commands"))


def test_a_cpu_only_worker_type_for_decoding():
    """Decode tasks need CPUs only: a worker type without a GPU that the autoscaler can add (0..N)."""
    config = prepare_config(yaml.safe_load(CONFIG.read_text()))
    cpu = config["available_node_types"]["cpu_worker"]
    assert cpu["node_config"]["InstanceType"].startswith(("c", "m")) and cpu["min_workers"] == 0 and cpu["max_workers"] >= 1
    assert cpu["resources"].get("GPU", 0) == 0
    assert cpu["node_config"]["ImageId"] == config["available_node_types"]["gpu_worker"]["node_config"]["ImageId"]  # same environment
