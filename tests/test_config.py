from __future__ import annotations

from pathlib import Path

import pytest

from app.config import ConfigError, load_config


def test_shipped_config_loads() -> None:
    cfg = load_config("config.yaml", env={})
    assert cfg.telephony.calls_per_worker <= 4
    assert cfg.speech.tts_voice == "cmn-latn-pinyin"


def test_standard_urls_override_everything(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql+psycopg://u:p@127.0.0.1/db",
        "MQTT_URL": "mqtt://127.0.0.1:1883/x",
        "CALLBOT__DATABASE__URL": "sqlite:///other.db",
    }
    cfg = load_config("config.yaml", env=env)
    assert cfg.database.url == env["DATABASE_URL"]
    assert cfg.bus.mqtt_url == env["MQTT_URL"]


def test_section_key_overrides_are_typed() -> None:
    cfg = load_config("config.yaml", env={"CALLBOT__TELEPHONY__PROCESSES": "3"})
    assert cfg.telephony.processes == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CALLBOT__TELEPHONY__PROCESSES": "many"},
            "CALLBOT__TELEPHONY__PROCESSES: expected a number",
        ),
        ({"CALLBOT__TELEPHONY__NOPE": "1"}, "unknown key 'nope'"),
        ({"CALLBOT__PROCESSES": "1"}, "expected CALLBOT__SECTION__KEY"),
    ],
)
def test_bad_overrides_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("config.yaml", env=env)


def test_bad_file_names_section(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("speech:\n  asr_engin: whisper\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c.yaml:speech: unknown key 'asr_engin'"):
        load_config(p, env={})
