"""Training configuration: defaults template, YAML/TOML, overrides, clear errors naming the key."""

from __future__ import annotations

import re

import pytest
import yaml

from reann_driver.train.config import Config, ConfigError, config_from_dict, defaults_template, load_config


def test_template_lists_every_key_and_reads_back_as_the_defaults(tmp_path):
    path = tmp_path / "defaults.yaml"
    path.write_text(defaults_template())
    assert load_config(path) == Config()
    raw = yaml.safe_load(defaults_template())
    assert raw == Config().to_dict()


def test_yaml_toml_and_overrides(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("train:\n  lr: 1e-3\n  epochs: 7\nmodel:\n  hidden: [16, 8]\n")
    toml_file = tmp_path / "c.toml"
    toml_file.write_text("[train]\nlr = 1e-3\nepochs = 7\n[model]\nhidden = [16, 8]\n")
    from_yaml, from_toml = load_config(yaml_file), load_config(toml_file)
    assert from_yaml == from_toml
    assert from_yaml.train.lr == 1e-3 and from_yaml.model.hidden == [16, 8]
    overridden = load_config(
        yaml_file, ["train.lr=5e-4", "model.hidden=[4, 4]", "data.reference_energies={H: -1}"]
    )
    assert overridden.train.lr == 5e-4
    assert overridden.model.hidden == [4, 4]
    assert overridden.data.reference_energies == {"H": -1.0}
    assert overridden.train.epochs == 7


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"train": {"lr": "abc"}}, "train.lr: expected float, got 'abc'"),
        ({"train": {"epochs": 2.5}}, "train.epochs: expected int"),
        ({"train": {"batch_size": True}}, "train.batch_size: expected int"),
        ({"train": {"learning_rate": 1e-3}}, "train.learning_rate: unknown key"),
        ({"optim": {"lr": 1e-3}}, "unknown section(s) optim"),
        ({"model": {"hidden": [16, "x"]}}, "model.hidden[1]: expected int"),
        ({"model": {"activation": "relu"}}, "model.activation: expected one of"),
        ({"train": {"lr": -1.0}}, "train.lr: must be positive"),
        ({"train": "fast"}, "train: expected a mapping"),
    ],
)
def test_bad_keys_and_types_name_the_key(raw, message):
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    assert message in str(error.value)


def test_bad_override_and_bad_file(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("expected section.key=value")):
        load_config(None, ["lr=1e-3"])
    with pytest.raises(ConfigError, match=re.escape("train.epochs: expected int")):
        load_config(None, ["train.epochs=many"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match=re.escape("broken.yaml")):
        load_config(broken)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
