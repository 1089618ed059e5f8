"""Per-lead language routing: a stream engine that opens each stream on the engine configured
for the lead's language (e.g. ``{"yue": cantonese_engine}``), else on the default engine.

The language is passed on to the chosen engine as well (Whisper decodes in it when its
checkpoint has that language, else in its default language).
"""

from __future__ import annotations

from collections.abc import Mapping

from core.audio import SAMPLE_RATE
from speech.asr.base import RecognizeStream, StreamingAsr


class LanguageRouter:
    def __init__(self, default: StreamingAsr, routes: Mapping[str, StreamingAsr]) -> None:
        self.default = default
        self.routes = {lang.lower(): engine for lang, engine in routes.items()}
        self.name = default.name

    def engine_for(self, language: str | None) -> StreamingAsr:
        if not language:
            return self.default
        lang = language.lower()
        return self.routes.get(lang) or self.routes.get(lang.split("-")[0]) or self.default

    def stream(
        self,
        *,
        prompt: str | None = None,
        language: str | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> RecognizeStream:
        engine = self.engine_for(language)
        return engine.stream(prompt=prompt, language=language, sample_rate=sample_rate)

    async def aclose(self) -> None:
        closed: list[int] = []
        for engine in [self.default, *self.routes.values()]:
            if id(engine) not in closed:
                closed.append(id(engine))
                await engine.aclose()
