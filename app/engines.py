"""Engine factories: build each engine family by the name the config gives it.

Every factory returns its family's interface (``Telephony``, ``StreamingAsr``, ``TtsEngine``,
``IntentClassifier``, ``CrmAdapter``), so the rest of the composition root never depends on
which engine it got. Heavy dependencies (pjsua2, faster-whisper, coqui) are imported only when
their engine is chosen; the interface modules are imported for the type checker only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from app.config import Config

if TYPE_CHECKING:
    from callflow.bargein import BargeInPolicy
    from callflow.gate import Screening
    from callflow.script import Script
    from callflow.session import CallSession
    from campaigns.store import ClaimedLead
    from crm_sync.base import CrmAdapter
    from nlu.base import IntentClassifier
    from nlu.knowledge.base import KnowledgeBase
    from speech.asr.base import StreamingAsr
    from speech.cache import PromptCache
    from speech.tts.base import PromptSource, TtsEngine
    from speech.vad import Endpointer
    from telephony.base import CallHandle, Telephony
    from telephony.callerid import CallerIdPool
    from telephony.trunk import TrunkSpec

EndpointerFactory = Callable[[], "Endpointer"]


class EngineConfigError(ValueError):
    """An engine name or an engine setting in the config is not usable."""


def _unknown(kind: str, name: str, choices: str) -> EngineConfigError:
    return EngineConfigError(f"unknown {kind} engine {name!r} (choose one of: {choices})")


def make_telephony(
    cfg: Config, *, listen: bool = False, sip_port: int | None = None, processes: int | None = None
) -> Telephony:
    """The media worker pool (``telephony.engine``); `listen` accepts inbound calls (the
    simulated callee), `sip_port`/`processes` override the config for a second pool. The
    trunk settings and the caller-ID pool apply to the dialing pool only."""
    t = cfg.telephony
    if t.engine == "pjsua2":
        from telephony.pool import WorkerPool

        trunk, caller_ids = (None, None) if listen else _trunk(cfg)
        return WorkerPool(
            processes=processes or t.processes,
            calls_per_worker=t.calls_per_worker,
            sip_host=t.sip_host,
            sip_port=t.sip_port if sip_port is None else sip_port,
            listen=listen,
            hang_timeout_s=t.worker_hang_timeout_s,
            trunk=trunk,
            caller_ids=caller_ids,
            trunk_rest_s=t.trunk_rest_s,
        )
    if t.engine == "fake":
        from telephony.fake import FakeTelephony

        return FakeTelephony()
    raise _unknown("telephony", t.engine, "pjsua2, fake")


def _trunk(cfg: Config) -> tuple[TrunkSpec, CallerIdPool | None]:
    """The trunk and its caller-ID pool from ``telephony``; a setting that cannot work is an
    `EngineConfigError` (one line at start-up)."""
    from telephony.callerid import CallerIdPool
    from telephony.trunk import TrunkSpec, TrunkSpecError, parse_codecs

    t = cfg.telephony
    try:
        trunk = TrunkSpec(
            name=t.trunk_name,
            transport=t.transport,
            username=t.username,
            password=t.password,
            realm=t.auth_realm or "*",
            register=t.register,
            registrar=t.registrar,
            register_expiry_s=t.register_expiry_s,
            outbound_proxy=t.outbound_proxy,
            domain=t.from_domain,
            display=t.caller_id_display,
            codecs=parse_codecs(t.codecs),
        )
        numbers = [n for n in t.caller_ids.replace(" ", "").split(",") if n]
        pool = None
        if numbers:
            pool = CallerIdPool(
                numbers,
                min_calls=t.caller_id_min_calls,
                min_answer_rate=t.caller_id_min_answer_rate,
                rest_s=t.caller_id_rest_s,
            )
    except (TrunkSpecError, ValueError) as exc:
        raise EngineConfigError(f"telephony: {exc}") from None
    return trunk, pool


def _asr_engine(cfg: Config, name: str, make_endpointer: EndpointerFactory) -> StreamingAsr:
    """One stream engine by name (``make_asr`` shares each across languages/fallbacks)."""
    s = cfg.speech
    if name == "whisper":
        from speech.asr.adapter import StreamAdapter
        from speech.asr.whisper import WhisperAsr

        whisper = WhisperAsr(
            s.whisper_model_dir,
            device=s.asr_device,
            compute_type=s.asr_compute_type,
            cpu_threads=s.asr_threads,
            max_workers=s.asr_workers,
        )
        confirm = None
        if s.vad_confirm:
            from speech.silero import SileroVad

            confirm = SileroVad()
        return StreamAdapter(
            whisper,
            make_endpointer,
            partial_interval_s=s.asr_partial_interval_s or None,
            speculate_ms=s.asr_speculate_ms or None,
            early_end_ms=(s.asr_early_end_ms or None) if s.asr_speculate_ms else None,
            confirm=confirm,
            batch_ms=s.asr_batch_ms,
            batch_max=s.asr_batch_max,
        )
    if name == "vosk":
        from speech.asr.vosk import VoskAsr

        return VoskAsr(s.vosk_model_dir, max_workers=s.asr_workers)
    if name == "fake":
        from speech.asr.adapter import StreamAdapter
        from speech.asr.fake import FakeAsr

        return StreamAdapter(FakeAsr(), make_endpointer)
    raise _unknown("ASR", name, "whisper, vosk, fake")


def make_asr(cfg: Config) -> StreamingAsr:
    """The node's shared recognizer: a stream engine (``stream()`` per call). With the default
    config it is a StreamAdapter over Whisper, which also has ``transcribe()``."""
    s = cfg.speech
    make_endpointer = make_endpointer_factory(cfg)
    built: dict[str, StreamingAsr] = {}

    def get(name: str) -> StreamingAsr:
        if name not in built:
            built[name] = _asr_engine(cfg, name, make_endpointer)
        return built[name]

    engine = get(s.asr_engine)
    if s.asr_backup:
        from speech.asr.fallback import FallbackAdapter

        engine = FallbackAdapter([engine, get(s.asr_backup)])
    routes = dict(
        pair.split("=", 1) for pair in s.asr_languages.replace(" ", "").split(",") if pair
    )
    if routes:
        from speech.asr.routing import LanguageRouter

        engine = LanguageRouter(engine, {lang: get(name) for lang, name in routes.items()})
    return engine


def make_tts(
    cfg: Config, *, voice: str | None = None, speed: int | None = None, variant: str | None = None
) -> TtsEngine:
    """The voice (``speech.tts_engine``); `voice`/`speed`/`variant` override espeak's settings
    (the simulated callee speaks with a different voice than the robot)."""
    s = cfg.speech
    if s.tts_engine in ("espeak", "recorded"):
        from speech.tts.espeak import EspeakTts

        espeak = EspeakTts(voice or s.tts_voice, speed=speed or s.tts_speed, variant=variant)
        if s.tts_engine == "espeak":
            return espeak
        from speech.tts.recorded import RecordedTts

        # the voice talent's recordings; slots and unrecorded lines fall back to espeak
        return RecordedTts(s.recordings_dir, backup=espeak)
    if s.tts_engine == "coqui":
        from speech.tts.coqui import CoquiTts

        if s.coqui_frontend not in ("text", "pinyin"):
            raise EngineConfigError("speech.coqui_frontend must be text or pinyin")
        return CoquiTts(
            s.coqui_model_dir, frontend="pinyin" if s.coqui_frontend == "pinyin" else "text"
        )
    if s.tts_engine == "fake":
        from speech.tts.fake import FakeTts

        return FakeTts()
    raise _unknown("TTS", s.tts_engine, "espeak, recorded, coqui, fake")


def make_prompts(cfg: Config, tts: TtsEngine, subdir: str = "robot") -> PromptCache:
    """A prompt cache over `tts`, stored under ``speech.prompt_cache_dir``/`subdir`. The call
    flow sees it as a ``PromptSource``; its owner also prefetches lines and closes it."""
    from speech.cache import PromptCache

    return PromptCache(tts, f"{cfg.speech.prompt_cache_dir}/{subdir}")


def make_endpointer_factory(
    cfg: Config, *, end_silence_ms: int | None = None, max_utterance_s: float | None = None
) -> EndpointerFactory:
    """A fresh VAD endpointer per stream, with the config's settings unless overridden."""
    from speech.vad import Endpointer

    s = cfg.speech

    def factory() -> Endpointer:
        return Endpointer(
            aggressiveness=s.vad_aggressiveness,
            end_silence_ms=end_silence_ms or s.end_silence_ms,
            max_utterance_s=max_utterance_s or s.max_utterance_s,
        )

    return factory


def make_nlu(cfg: Config) -> IntentClassifier:
    """The shared intent model (``nlu.engine``)."""
    n = cfg.nlu
    if n.engine in ("model", "linear", "student"):
        from nlu import load_classifier

        return load_classifier(
            n.model_dir,
            min_confidence=n.min_confidence,
            cascade_tau=n.cascade_tau or None,
            cascade_margin=n.cascade_margin,
            linear_only_below=n.linear_only_below or None,
        )
    if n.engine == "fake":
        from nlu.fake import FakeClassifier

        return FakeClassifier()
    raise _unknown("NLU", n.engine, "model, fake")


def make_knowledge(cfg: Config, script: Script, nlu: IntentClassifier) -> KnowledgeBase | None:
    """The knowledge base of `script`'s ``knowledge:`` file (``nlu.knowledge_engine``), None
    when it names none. ``hybrid`` uses the intent model's own sentence embedding (``embed``;
    a model without one gives ``lexical``). A bad knowledge file is a ``ScriptError``: the
    campaign using the script does not start."""
    if script.knowledge is None:
        return None
    n = cfg.nlu
    if n.knowledge_engine in ("hybrid", "lexical"):
        from callflow.script import ScriptError
        from nlu.knowledge.file import KnowledgeFileError
        from nlu.knowledge.retrieval import open_knowledge_base

        try:
            return open_knowledge_base(
                script.knowledge,
                engine=n.knowledge_engine,
                embed=getattr(nlu, "embed", None),
                threshold=n.knowledge_threshold or None,
            )
        except KnowledgeFileError as exc:
            raise ScriptError(str(exc)) from None
    if n.knowledge_engine == "fake":
        from nlu.knowledge.fake import FakeKnowledgeBase

        return FakeKnowledgeBase()
    raise _unknown("knowledge", n.knowledge_engine, "hybrid, lexical, fake")


def make_crm(cfg: Config) -> CrmAdapter | None:
    """The CRM adapter named by ``crm.engine`` (None for "none": leads stay in the outbox)."""
    c = cfg.crm
    if c.engine == "none":
        return None
    if c.engine == "webhook":
        from crm_sync.base import CrmConfigError
        from crm_sync.webhook import WebhookCrm

        if not c.webhook_url:
            raise EngineConfigError("crm.engine is webhook but crm.webhook_url is empty")
        try:
            return WebhookCrm(
                c.webhook_url,
                token=c.token or None,
                secret=c.webhook_secret or None,
                timeout_s=c.timeout_s,
                allow_insecure_http=c.allow_insecure_http,
            )
        except CrmConfigError as exc:  # e.g. a token over plain http: refused at start
            raise EngineConfigError(str(exc)) from None
    if c.engine in ("hubspot", "salesforce"):
        from crm_sync import make_api_crm

        try:
            return make_api_crm(c.engine, c)
        except ValueError as exc:  # CrmConfigError: a missing token or URL, insecure http
            raise EngineConfigError(str(exc)) from None
    if c.engine == "fake":
        from crm_sync.fake import FakeCrm

        return FakeCrm()
    raise _unknown("crm", c.engine, "none, webhook, hubspot, salesforce, fake")


def barge_in_policy(cfg: Config) -> BargeInPolicy:
    """The call flow's barge-in knobs (``callflow.bargein``) from the config."""
    from callflow.bargein import BargeInPolicy, parse_backchannels

    flow = cfg.callflow
    if flow.barge_in_backchannel_max_s < 0 or flow.barge_in_final_wait_s < 0:
        raise EngineConfigError("callflow.barge_in_* durations must be >= 0")
    return BargeInPolicy(
        backchannel_max_s=flow.barge_in_backchannel_max_s,
        final_wait_s=flow.barge_in_final_wait_s,
        unclear_below=flow.barge_in_unclear_below,
        backchannels=parse_backchannels(flow.backchannels),
    )


def make_session_factory(
    cfg: Config,
    script: Script,
    asr: StreamingAsr,
    nlu: IntentClassifier,
    prompts: PromptSource,
) -> Callable[[CallHandle, ClaimedLead], CallSession]:
    """One CallSession per answered call of `script`'s campaign, sharing the node's engines."""
    from callflow.personal import lead_fields
    from callflow.session import CallSession

    knowledge = make_knowledge(cfg, script, nlu)
    if script.intents:  # the script's own few-shot intents, on top of the shared model
        from nlu import with_custom_intents

        nlu = with_custom_intents(nlu, script.intents)

    from callflow.transfer import TransferPolicy, parse_targets

    transfer = TransferPolicy(parse_targets(cfg.callflow.transfer_to), cfg.callflow.transfer_mode)

    barge_in = barge_in_policy(cfg)
    screening = make_screening(cfg)

    def make(call: CallHandle, lead: ClaimedLead) -> CallSession:
        fields = lead_fields(lead.name, lead.extra)  # personal lines (PII: never logged)
        return CallSession(
            call=call,
            script=script,
            asr=asr,
            nlu=nlu,
            prompts=prompts,
            no_input_timeout_s=cfg.callflow.no_input_timeout_s,
            max_call_s=cfg.callflow.max_call_s,
            continuation_s=cfg.callflow.continuation_s,
            asr_prompt=script.asr_prompt if cfg.speech.asr_hints else None,
            decoder_hints=cfg.speech.asr_hints,
            context={"lead_id": lead.lead_id, "timezone": lead.timezone},
            transfer=transfer,
            barge_in=barge_in,
            screening=screening,
            knowledge=knowledge,
            lead=fields,
        )

    return make


def make_screening(cfg: Config) -> Screening | None:
    """The call screening's parts (``callflow.gate``): webrtcvad + tone cues per call phase;
    None when ``callflow.screening`` is off."""
    flow = cfg.callflow
    if not flow.screening:
        return None
    from callflow.gate import Screening
    from callflow.screening import ScreenConfig
    from speech.amd import AudioCues

    try:
        timing = ScreenConfig(
            greet_cap_s=flow.screen_greet_cap_s,
            hold_max_s=flow.screen_hold_max_s,
            watch_s=flow.screen_watch_s,
        )
    except ValueError as exc:
        raise EngineConfigError(f"callflow.screen_*: {exc}") from None
    return Screening(make_cues=AudioCues, config=timing)
