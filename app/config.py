"""Configuration: one YAML file with environment overrides.

Precedence (highest first): DATABASE_URL / MQTT_URL, CALLBOT__SECTION__KEY variables,
the YAML file, the defaults below. The file is read with the strict loader
(``core.yamlload``) and every value must have its setting's type: a mistake is a one-line
ConfigError naming the file and the key, never a silent default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from campaigns.reports import ReportConfig  # campaigns owns the report's settings
from campaigns.retry import DEFAULT_POLICY as DEFAULT_RETRY_POLICY
from core.yamlload import YamlLoadError, load_yaml

ENV_PREFIX = "CALLBOT__"


@dataclass
class DatabaseConfig:
    url: str = "sqlite:///var/callbot.db"


@dataclass
class BusConfig:
    mqtt_url: str = ""
    topic_prefix: str = "callbot"
    heartbeat_s: float = 2.0  # a node publishes its presence (calls, free slots) this often


@dataclass
class TelephonyConfig:
    engine: str = "pjsua2"
    processes: int = 1
    calls_per_worker: int = 4
    sip_host: str = "127.0.0.1"
    sip_port: int = 0
    trunk_uri: str = "sip:{phone}@127.0.0.1:5070"
    username: str = ""
    password: str = ""
    ring_timeout_s: float = 30.0
    worker_hang_timeout_s: float = 10.0  # a media worker silent this long is killed, restarted
    # the trunk (telephony.trunk.TrunkSpec): see config.yaml for a carrier and a PBX
    trunk_name: str = "default"  # named in logs and errors
    transport: str = "udp"  # udp | tcp
    auth_realm: str = ""  # digest realm of username/password; empty: any
    register: bool = False  # False: IP authentication (nothing registered)
    registrar: str = ""  # sip:host[:port]; empty: sip:<from_domain>
    register_expiry_s: int = 300
    outbound_proxy: str = ""  # sip:host[:port]: every request goes through it
    from_domain: str = ""  # host of our From (and registered AOR); empty: sip_host:port
    caller_ids: str = ""  # comma list of our numbers, rotated as the From user; empty: username
    caller_id_display: str = ""  # From display name
    caller_id_min_calls: int = 20  # a number's answer rate is judged after this many calls ...
    caller_id_min_answer_rate: float = 0.1  # ... and below this it is rested
    caller_id_rest_s: float = 3600.0
    codecs: str = "PCMA,PCMU,G722"  # preference order; others off
    trunk_rest_s: float = 60.0  # a trunk that refused our credentials: no calls this long


@dataclass
class SpeechConfig:
    asr_engine: str = "whisper"
    whisper_model_dir: str = "build/models/whisper-base"
    asr_threads: int = 1
    asr_workers: int = 1
    asr_device: str = "cpu"  # cpu | cuda | auto: where CTranslate2 runs Whisper
    asr_compute_type: str = "int8"  # int8 (CPU); int8_float16 or float16 on a GPU
    # batch recognition: finals of many calls arriving within this many ms are decoded
    # together, at most asr_batch_max per batch (speech.asr.schedule); 0: one at a time
    asr_batch_ms: int = 0
    asr_batch_max: int = 8
    # decode with the script's asr_hints as Whisper's prompt (callflow.script). Off: on
    # bench/understanding.py's phone audio a prompt made Whisper write hint phrases the callee
    # never said (one clip in nine) and the robot act on a wrong intent 4x as often
    asr_hints: bool = False
    tts_engine: str = "espeak"
    tts_voice: str = "cmn-latn-pinyin"
    tts_speed: int = 150
    recordings_dir: str = "prompts/recorded"
    coqui_model_dir: str = ""
    coqui_frontend: str = "text"
    prompt_cache_dir: str = "var/prompt-cache"
    vad_aggressiveness: int = 2
    end_silence_ms: int = 700
    max_utterance_s: float = 15.0
    vad_confirm: bool = True  # Silero (ONNX, no torch) confirms onsets and unconfirmed speech
    asr_partial_interval_s: float = 0.7  # re-decode while the callee talks; 0: no partials
    asr_speculate_ms: int = 80  # decode after this much silence, before the endpoint; 0: off
    asr_early_end_ms: int = 300  # end a turn that reads complete after this silence; 0: off
    asr_backup: str = ""  # second engine name: FallbackAdapter([asr_engine, asr_backup])
    asr_languages: str = ""  # per-lead routing, "language=engine,...", e.g. "yue=vosk"
    vosk_model_dir: str = ""  # an unpacked Vosk model folder (engine "vosk")


@dataclass
class NluConfig:
    engine: str = "model"
    model_dir: str = "nlu/models/student-int8"
    min_confidence: float = 0.35
    # skip the student when the linear model alone is this sure (top prob, top-1 minus top-2;
    # nlu.ensemble, chosen on a dev split by nlu.training.cascade); cascade_tau 0: always both
    cascade_tau: float = 0.95
    cascade_margin: float = 0.15
    # a transcript the recognizer heard with less confidence than this is read by the ensemble's
    # phone-trained linear model alone (nlu.ensemble); 0: off
    linear_only_below: float = 0.5
    # knowledge answers (a script's `knowledge:` file): hybrid (TF-IDF + the intent model's
    # embedding) | lexical | fake; threshold 0: the engine's own, chosen on the dev questions
    knowledge_engine: str = "hybrid"
    knowledge_threshold: float = 0.0


@dataclass
class CallflowConfig:
    script: str = "callflow/scripts/saas_demo.yaml"
    no_input_timeout_s: float = 8.0
    max_call_s: float = 180.0
    continuation_s: float = 1.0  # callee resumes within this after a turn: one turn; 0: off
    # transfer targets a script names ({transfer: agent}): "agent=sip:8001@10.0.0.1,..."
    transfer_to: str = ""
    transfer_mode: str = "auto"  # refer | bridge | auto (REFER, a bridge when REFER is refused)
    # barge-in (callflow.bargein): an onset pauses the robot; speech longer than this stops it,
    # shorter speech that is only backchannel words (嗯, 对, 好的) lets it resume; 0: stop at once
    barge_in_backchannel_max_s: float = 0.8
    barge_in_final_wait_s: float = 2.0  # a short utterance's end and words are awaited this long
    barge_in_unclear_below: float = 0.4  # a short utterance heard less surely: not a barge-in
    backchannels: str = ""  # comma list of backchannel words; empty: the built-in list
    # call screening (callflow.screening): a person or a machine, before the greeting
    screening: bool = True  # false: greet at the answer, unscreened
    screen_greet_cap_s: float = 1.5  # greet by then after the answer unless the callee talks
    screen_hold_max_s: float = 4.0  # a talking callee delays the greeting at most this long
    screen_watch_s: float = 10.0  # then a beep or machine phrase still ends it this long


@dataclass
class RecordingConfig:
    """Call recordings (``campaigns.recordings``): both directions, one folder per call."""

    enabled: bool = False  # on: every script needs a recording_notice: line
    folder: str = "var/recordings"
    retention_days: int = 30  # older recordings are deleted by the node; 0: kept for ever


@dataclass
class CampaignConfig:
    max_concurrent_calls: int = 3
    calling_hours: str = "09:00-12:00,14:00-20:00"  # lead's local time; several ranges a day
    calling_days: str = "mon-sun"  # e.g. "mon-fri"; a campaign may override hours and days
    holidays: str = ""  # "2026-10-01,2026-10-02": no calls on these local dates
    max_calls_per_day: int = 1  # per number, across campaigns, lead's local day; 0: no cap
    max_calls_per_week: int = 3  # per number, across campaigns, local Monday-based week; 0: off
    timezone: str = "Asia/Shanghai"
    max_attempts: int = 3
    retry_policy: str = DEFAULT_RETRY_POLICY  # per disposition: delay and (/N) max attempts
    calls_per_second: float = 5.0  # calls started per second by the node; 0: no limit
    trunk_calls_per_second: float = 0.0  # per trunk; 0: no limit
    trunk_max_concurrent: int = 0  # calls at once per trunk; 0: max_concurrent_calls alone
    status_poll_s: float = 0.5  # how often the node re-reads which campaigns are running
    auto_complete: bool = True  # a running campaign with nothing left to dial -> completed
    shutdown_grace_s: float = 30.0  # SIGTERM/Ctrl-C: live calls may finish this long, then hang up
    # a node's claim on a lead (or a CRM outbox row) lasts this long unless renewed (a live
    # call's is, every third of it); a dead node's leads are dialled again after it
    lease_s: float = 600.0


@dataclass
class CalleeConfig:
    sip_host: str = "127.0.0.1"
    sip_port: int = 5070
    personas: str = "simcallee/personas.yaml"
    recordings_dir: str = "var/callee-recordings"


@dataclass
class CrmConfig:
    engine: str = "none"  # none | webhook | fake: where qualified leads go
    webhook_url: str = ""  # webhook: http(s) URL that takes a JSON POST per lead
    token: str = ""  # webhook: sent as "Authorization: Bearer <token>"
    timeout_s: float = 10.0
    poll_s: float = 5.0  # how often `main.py run` delivers the outbox
    allow_insecure_http: bool = False  # allow the token over plain http:// to a remote host
    # issue 14: adapters hubspot | salesforce, signed webhooks, payload links, dead letters
    webhook_secret: str = ""  # webhook: HMAC-SHA256 key (X-Callbot-Signature); set it in the env
    base_url: str = ""  # hubspot: API base (default https://api.hubapi.com); salesforce: instance
    unique_property: str = "phone"  # hubspot: the contact property a lead is found by
    api_version: str = "v60.0"  # salesforce REST API version
    external_id_field: str = ""  # salesforce: Lead external id field (upsert by lead id); ""=POST
    console_url: str = ""  # base of the payload's call/transcript/recording links
    max_tries: int = 8  # failed deliveries before an outbox row becomes a dead letter


@dataclass
class WebConfig:
    """`main.py serve`: the console and its API (``web/``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_upload_mb: float = 20.0  # a larger lead list is refused (HTTP 413)
    secret_file: str = "var/web-secret"  # signs session cookies; made (0600) if missing
    secure_cookies: bool = False  # True behind HTTPS: cookies only over HTTPS


@dataclass
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    telephony: TelephonyConfig = field(default_factory=TelephonyConfig)
    speech: SpeechConfig = field(default_factory=SpeechConfig)
    nlu: NluConfig = field(default_factory=NluConfig)
    callflow: CallflowConfig = field(default_factory=CallflowConfig)
    campaign: CampaignConfig = field(default_factory=CampaignConfig)
    callee: CalleeConfig = field(default_factory=CalleeConfig)
    crm: CrmConfig = field(default_factory=CrmConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    web: WebConfig = field(default_factory=WebConfig)


class ConfigError(ValueError):
    pass


def _coerce(value: Any, like: Any, where: str) -> Any:
    """`value` (from YAML or the environment) as the type of the default `like`."""
    if isinstance(value, (list, dict)):
        raise ConfigError(f"{where}: expected a single value, got a {type(value).__name__}")
    if isinstance(like, bool):
        return _boolean(value, where)
    if isinstance(like, (int, float)):
        return _number(value, like, where)
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a string, got {value!r} (quote it)")
    return "" if value is None else str(value)


def _boolean(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off", ""):
            return False
    raise ConfigError(f"{where}: expected a boolean, got {value!r}")


def _number(value: Any, like: int | float, where: str) -> int | float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    try:
        number = float(value) if isinstance(like, float) else int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, float) and number != value:
        raise ConfigError(f"{where}: expected a whole number, got {value!r}")
    return number


def _apply(section: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        setattr(section, key, _coerce(value, getattr(section, key), f"{where}.{key}"))


def load_config(
    path: str | Path | None = "config.yaml", env: dict[str, str] | None = None
) -> Config:
    """Load the YAML file, then environment overrides. A missing file is a ConfigError;
    `path` None means no file at all (the defaults, then the environment)."""
    env = dict(os.environ if env is None else env)
    cfg = Config()
    if path is not None:
        try:
            data = load_yaml(path, what="config file") or {}
        except YamlLoadError as exc:
            raise ConfigError(str(exc)) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: top level must be a mapping")
        for name, values in data.items():
            if not hasattr(cfg, name):
                raise ConfigError(f"{path}: unknown section {name!r}")
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: section {name!r} must be a mapping")
            _apply(getattr(cfg, name), values, f"{path}:{name}")
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX):
            continue
        parts = key[len(ENV_PREFIX) :].lower().split("__")
        if len(parts) != 2 or not hasattr(cfg, parts[0]):
            raise ConfigError(f"environment {key}: expected {ENV_PREFIX}SECTION__KEY")
        section = getattr(cfg, parts[0])
        if not hasattr(section, parts[1]):
            raise ConfigError(f"environment {key}: unknown key {parts[1]!r}")
        setattr(section, parts[1], _coerce(value, getattr(section, parts[1]), f"environment {key}"))
    if env.get("DATABASE_URL"):
        cfg.database.url = env["DATABASE_URL"]
    if env.get("MQTT_URL"):
        cfg.bus.mqtt_url = env["MQTT_URL"]
    return cfg
