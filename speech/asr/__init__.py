"""Speech recognition: the utterance and stream interfaces, their events, and the engines.

``speech.asr.base`` holds the interfaces and the stream events (``SpeechStarted``, ``Partial``,
``SpeechEnded``, ``Final``; the endpointer's own events are ``speech.vad.VoiceStarted`` /
``VoiceEnded``). Engines: ``whisper.WhisperAsr`` (utterance), ``adapter.StreamAdapter`` (any
utterance engine + VAD -> stream), ``vosk.VoskAsr`` (stream), ``fallback.FallbackAdapter``,
``routing.LanguageRouter``, and the fakes in ``fake``.
"""
