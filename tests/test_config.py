import pytest

from edge.config import default_config, load_config, parse_config
from edge.errors import ConfigError


def test_defaults_load():
    config = default_config()
    assert config.detector.input_size == 320
    assert config.embedder.model == "sface_2021dec"


def test_unknown_key_names_key_and_line():
    text = "[detector]\ninput_size = 256\nmin_scroe = 0.5\n"
    with pytest.raises(
        ConfigError, match=r"cfg.toml:3: detector.min_scroe: unknown key \(valid keys: "
    ):
        parse_config(text, source="cfg.toml")


def test_unknown_section_names_its_line():
    with pytest.raises(ConfigError, match=r":2: \[detectr\]: unknown section"):
        parse_config("\n[detectr]\nx = 1\n")


def test_a_renamed_section_says_its_new_name():
    with pytest.raises(ConfigError, match=r":3: \[enrollment\]: renamed to \[enrolment\]$"):
        parse_config("[matcher]\nmin_similarity = 0.5\n[enrollment]\nframes = 5\n")
    assert parse_config("[enrolment]\nframes = 5\n").enrolment.frames == 5


def test_wrong_type_and_bounds_and_cross_rule():
    with pytest.raises(ConfigError, match=r":2: detector.input_size: expected an integer"):
        parse_config("[detector]\ninput_size = 'big'\n")
    with pytest.raises(ConfigError, match=r":2: detector.min_score: 1.5 is above the maximum 1.0"):
        parse_config("[detector]\nmin_score = 1.5\n")
    with pytest.raises(ConfigError, match=r":3: detector.input_size: 300 is not a multiple of 32"):
        parse_config("[detector]\n\ninput_size = 300\n")


def test_invalid_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse_config("[detector\n")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")


def test_config_errors_are_value_errors():
    with pytest.raises(ValueError):
        parse_config("[quality]\nmin_face_px = -1\n")


def test_a_retired_key_says_what_replaced_it():
    with pytest.raises(ConfigError, match=r"liveness\.model: no longer used; .*'models'"):
        parse_config('[liveness]\nmodel = "liveness_rgb_v2"\n')
