import pytest
import yaml

from prunelab.errors import PrunelabError
from prunelab.sweep.spec import load_spec

VALID = dict(name="t", base="tiny", target_sizes=[0.3, 0.5], criteria=["magnitude"], methods=["lowrank"],
             schedulers=["oneshot", "incremental"])


def write(tmp_path, data):
    path = tmp_path / "spec.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_shipped_specs_are_valid():
    for name in ("demo", "paper", "schedule-search", "paper-budget", "smollm2"):
        spec = load_spec(f"sweeps/{name}.yaml")
        assert spec.name == name


def test_valid_spec_sorts_target_sizes_and_applies_overrides(tmp_path):
    spec = load_spec(write(tmp_path, VALID), overrides={"storage": "/x", "name": None})
    assert spec.target_sizes == [0.5, 0.3] and spec.storage == "/x" and spec.name == "t"


@pytest.mark.parametrize("change, message", [
    (dict(criteria=["magnitud"]), "criteria.0: 'magnitud' is not allowed; expected 'magnitude', 'taylor' or 'activation'"),
    (dict(methods=["pruned"]), "methods.0: 'pruned' is not allowed"),
    (dict(schedulers=["cubic"]), "schedulers.0: 'cubic' is not allowed"),
    (dict(target_sizes=[1.0]), "target_sizes: each target size must be between 0 and 1"),
    (dict(target_sizes=[0.0]), "target_sizes: each target size must be between 0 and 1"),
    (dict(target_sizes=[]), "target_sizes: List should have at least 1 item"),
    (dict(num_samples=0), "num_samples: Input should be greater than or equal to 1"),
    (dict(max_concurrent=0), "max_concurrent: Input should be greater than or equal to 1"),
    (dict(colour="red"), "unknown key 'colour'"),
    (dict(search="bayes"), "search: 'bayes' is not allowed"),
    (dict(finetune_steps=[200, -1]), "finetune_steps: fine-tuning budgets must be distinct integers >= 0, got [200, -1]"),
    (dict(data={"speed_sentences": 0}), "data.speed_sentences: Input should be greater than or equal to 1"),
    (dict(incremental_mode="each"), "incremental_mode: 'each' is not allowed; expected 'multi-size' or 'per-size'"),
])
def test_invalid_specs_name_the_field_and_allowed_values(tmp_path, change, message):
    with pytest.raises(PrunelabError) as error:
        load_spec(write(tmp_path, {**VALID, **change}))
    assert message in str(error.value)


def test_malformed_yaml_and_missing_file(tmp_path):
    with pytest.raises(PrunelabError, match="malformed YAML"):
        load_spec(write(tmp_path, "name: [unclosed\n"))
    with pytest.raises(PrunelabError, match="does not exist"):
        load_spec(tmp_path / "none.yaml")


@pytest.mark.parametrize("gpu, message", [(-0.5, "resources.gpu: Input should be greater than or equal to 0"),
                                          ("many", "resources.gpu: Input should be a valid number")])
def test_resources_gpu_is_validated(tmp_path, gpu, message):
    with pytest.raises(PrunelabError) as error:
        load_spec(write(tmp_path, {**VALID, "resources": {"cpu": 1, "gpu": gpu}}))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert load_spec(write(tmp_path, {**VALID, "resources": {"cpu": 1, "gpu": 0.25}})).resources.gpu == 0.25
