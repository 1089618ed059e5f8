"""Toneless pinyin, folded: how Chinese text sounds, with the confusions of phone ASR merged.

Whisper on 8 kHz phone audio swaps near-homophones (关机 ~ 关几, 通话 ~ 同花, 在 ~ 再); matching
on folded syllables instead of characters makes a phrase survive those swaps. Shared by the NLU
features (``nlu.features``) and the call screening's phrase table (``callflow.screening``).
"""

from __future__ import annotations

from pypinyin import lazy_pinyin

# Finals folded onto their partner (longest first): an/ang, en/eng, in/ing.
_FOLDED_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))


def fold(syllable: str) -> str:
    """Toneless pinyin with the usual confusions merged: one symbol per near-homophone set.

    Initials: zh/z, ch/c, sh/s -> z, c, s; n/l -> l; f/h -> f. Finals: -ang/-an, -eng/-en,
    -ing/-in -> -an, -en, -in. So 能 (neng) and 冷 (leng) -> len, 是 (shi) and 四 (si) -> si,
    胡 (hu) and 付 (fu) -> fu. Non-pinyin chunks (Latin words, punctuation) pass unchanged.
    """
    if not syllable.isalpha() or not syllable.isascii():
        return syllable
    if syllable[:2] in ("zh", "ch", "sh"):
        syllable = syllable[0] + syllable[2:]
    elif syllable[0] == "n" and len(syllable) > 1:
        syllable = "l" + syllable[1:]
    elif syllable[0] == "h":
        syllable = "f" + syllable[1:]
    for long, short in _FOLDED_FINALS:
        if syllable.endswith(long):
            return syllable[: -len(long)] + short
    return syllable


def folded_syllables(text: str) -> list[str]:
    """The folded syllables of the Chinese characters in `text`, in order (other characters
    dropped: punctuation, Latin words, digits)."""
    return [fold(s) for s in lazy_pinyin(text, errors="ignore") if s.isascii() and s.isalpha()]
