"""PCM helpers: PCM16 <-> float, resampling, WAV read/write, G.711 mu-law, RMS.

All audio in the speech layer is PCM16 little-endian mono bytes unless a name says otherwise.
The phone frame format (8 kHz, PCM16, 20 ms) and durations are ``core.audio``'s. Pure numpy,
no I/O except the explicit path helpers.
"""

from __future__ import annotations

import io
import math
import struct
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from core.audio import FRAME_MS, SAMPLE_RATE, SAMPLE_WIDTH, pcm_bytes

WHISPER_RATE = 16000  # what Whisper's feature extractor expects

FloatArray = npt.NDArray[np.float32]
Int16Array = npt.NDArray[np.int16]


# --- PCM16 <-> numpy -------------------------------------------------------------------------


def pcm16_to_float(pcm: bytes) -> FloatArray:
    """PCM16 LE bytes -> float32 samples in [-1, 1)."""
    if len(pcm) % 2:
        raise ValueError("PCM16 data must have an even number of bytes")
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: npt.ArrayLike) -> bytes:
    """float samples in [-1, 1] -> PCM16 LE bytes (clipped)."""
    arr = np.asarray(samples, dtype=np.float64)
    ints = np.clip(np.round(arr * 32768.0), -32768, 32767).astype("<i2")
    return ints.tobytes()


def frame_bytes_for(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    """Bytes of one PCM16 mono frame at any rate (``core.audio.FRAME_BYTES`` is the phone's);
    ValueError for a rate without whole-sample frames."""
    if sample_rate <= 0 or frame_ms <= 0 or (sample_rate * frame_ms) % 1000:
        raise ValueError(
            f"sample rate {sample_rate} Hz has no whole-sample {frame_ms} ms frames "
            "(use 8000, 16000, 48000, ...)"
        )
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


def silence(seconds: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM16 digital silence."""
    return bytes(pcm_bytes(seconds, sample_rate))


# --- Resampling --------------------------------------------------------------------------------

_ZERO_CROSSINGS = 16  # kernel half-width in zero crossings of the low-pass sinc
_KAISER_BETA = 8.0
_CHUNK_OUT = 32768  # output samples per vectorized block (bounds temporary memory)


@lru_cache(maxsize=16)
def _polyphase_table(up: int, down: int) -> tuple[npt.NDArray[np.float32], int]:
    """Kaiser-windowed sinc taps for each of the `up` output phases: (table[up, taps], half).

    Output sample n sits at input position n * down / up = base + phase / up, and is
    sum_k x[base + k] * table[phase, k + half - 1] for k in [-half + 1, half].
    """
    fc = 0.95 * min(1.0, up / down)  # cutoff, as a fraction of the input Nyquist frequency
    half = int(math.ceil(_ZERO_CROSSINGS / fc))
    offsets = np.arange(-half + 1, half + 1)
    frac = np.arange(up)[:, None] / up
    dist = frac - offsets[None, :]
    window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (dist / half) ** 2, 0.0, 1.0)))
    table = fc * np.sinc(fc * dist) * window / np.i0(_KAISER_BETA)
    return table.astype(np.float32), half


def resample_float(samples: FloatArray, src_rate: int, dst_rate: int) -> FloatArray:
    """Band-limited polyphase resampling (Kaiser-windowed sinc), any rational rate ratio.

    The low-pass cutoff sits at 0.95 x the lower Nyquist frequency, so downsampling
    (e.g. 22050 -> 8000) removes what would alias and upsampling (8000 -> 16000) adds no
    images. ~2 ms per second of audio for 8 -> 16 kHz.
    """
    if src_rate <= 0 or dst_rate <= 0:
        raise ValueError("sample rates must be positive")
    x = np.asarray(samples, dtype=np.float32)
    if src_rate == dst_rate or x.size == 0:
        return x.copy()
    g = math.gcd(src_rate, dst_rate)
    up, down = dst_rate // g, src_rate // g
    table, half = _polyphase_table(up, down)
    n_out = x.size * up // down
    padded = np.concatenate([np.zeros(half, np.float32), x, np.zeros(half + 1, np.float32)])
    offsets = np.arange(2 * half)  # relative to base - half + 1, shifted by the padding
    out = np.empty(n_out, dtype=np.float32)
    for start in range(0, n_out, _CHUNK_OUT):
        n = np.arange(start, min(start + _CHUNK_OUT, n_out), dtype=np.int64)
        base, phase = np.divmod(n * down, up)
        windows = padded[(base + 1)[:, None] + offsets[None, :]]
        out[start : start + n.size] = np.einsum("ij,ij->i", windows, table[phase])
    return out


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Resample PCM16 mono bytes."""
    if src_rate == dst_rate:
        return pcm
    return float_to_pcm16(resample_float(pcm16_to_float(pcm), src_rate, dst_rate))


def upsample_8k_to_16k(pcm: bytes) -> bytes:
    return resample_pcm16(pcm, SAMPLE_RATE, WHISPER_RATE)


def downsample_16k_to_8k(pcm: bytes) -> bytes:
    return resample_pcm16(pcm, WHISPER_RATE, SAMPLE_RATE)


# --- WAV ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WavAudio:
    pcm: bytes  # PCM16 LE mono
    sample_rate: int


def _downmix(data: bytes, channels: int) -> bytes:
    if channels == 1:
        return data
    frames = np.frombuffer(data, dtype="<i2").reshape(-1, channels).astype(np.int32)
    return frames.mean(axis=1).round().astype("<i2").tobytes()


def parse_wav(data: bytes) -> WavAudio:
    """Parse a PCM16 WAV (mono or multi-channel, downmixed to mono).

    Tolerates the streaming headers that ``espeak-ng --stdout`` writes (RIFF and data sizes
    of ~2 GiB): a data chunk that claims more than is present is read to the end.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4 : pos + 8])
        body = data[pos + 8 : pos + 8 + size]
        if chunk_id == b"fmt ":
            audio_format, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            fmt = (audio_format, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data chunk before fmt chunk")
            audio_format, channels, rate, bits = fmt
            if audio_format not in (1, 0xFFFE) or bits != 16:
                raise ValueError(f"unsupported WAV encoding (format={audio_format}, bits={bits})")
            usable = len(body) - len(body) % (2 * channels)
            return WavAudio(_downmix(body[:usable], channels), rate)
        pos += 8 + size + (size & 1)
    raise ValueError("WAV has no data chunk")


def to_wav(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM16 mono bytes -> WAV file bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(SAMPLE_WIDTH)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def read_wav(path: str | Path) -> WavAudio:
    return parse_wav(Path(path).read_bytes())


def write_wav(path: str | Path, pcm: bytes, sample_rate: int = SAMPLE_RATE) -> None:
    Path(path).write_bytes(to_wav(pcm, sample_rate))


# --- G.711 mu-law --------------------------------------------------------------------------------

_MU_BIAS = 0x84


def _build_ulaw_decode_table() -> Int16Array:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _MU_BIAS) << exponent) - _MU_BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_ULAW_DECODE = _build_ulaw_decode_table()


def ulaw_encode(pcm: bytes) -> bytes:
    """PCM16 -> G.711 mu-law bytes (one byte per sample), bit-exact with the CCITT/Sun
    reference (14-bit magnitude, bias 33, clip 8159)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32) >> 2
    mask = np.where(x < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(x), 8159) + 0x21
    raw_segment = np.floor(np.log2(mag)).astype(np.int32) - 5
    segment = np.clip(raw_segment, 0, 7)
    code = np.where(raw_segment > 7, 0x7F, (segment << 4) | ((mag >> (segment + 1)) & 0x0F))
    code ^= mask
    return code.astype(np.uint8).tobytes()


def ulaw_decode(data: bytes) -> bytes:
    """G.711 mu-law bytes -> PCM16."""
    codes = np.frombuffer(data, dtype=np.uint8)
    return _ULAW_DECODE[codes].astype("<i2").tobytes()


def ulaw_roundtrip(pcm: bytes) -> bytes:
    """What a PCM16 signal sounds like after a G.711 mu-law phone leg."""
    return ulaw_decode(ulaw_encode(pcm))


# --- G.711 A-law (ITU-T G.711, the European leg) and a phone leg -------------------------------


def alaw_encode(pcm: bytes) -> bytes:
    """PCM16 -> G.711 A-law bytes (13-bit magnitude, segments of 16 steps, even bits inverted)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.int32) >> 3  # 13-bit signed
    sign = np.where(x >= 0, 0x80, 0x00)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 0xFFF)
    exponent = np.clip(np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4, 0, 7)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    code = (sign | (exponent << 4) | mantissa) ^ 0x55
    return code.astype(np.uint8).tobytes()


def alaw_decode(data: bytes) -> bytes:
    """G.711 A-law bytes -> PCM16."""
    code = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, mag, -mag).astype("<i2").tobytes()


def alaw_roundtrip(pcm: bytes) -> bytes:
    """What a PCM16 signal sounds like after a G.711 A-law phone leg."""
    return alaw_decode(alaw_encode(pcm))


def add_noise(pcm: bytes, dbfs: float, seed: int) -> bytes:
    """White line noise at `dbfs` RMS, seeded (repeatable)."""
    rng = np.random.default_rng(seed)
    x = pcm16_to_float(pcm)
    return float_to_pcm16(x + rng.normal(0.0, 10 ** (dbfs / 20), x.size))


def phone_leg(pcm: bytes, codec: str, noise_dbfs: float | None, seed: int) -> bytes:
    """Line noise (optional), then the G.711 codec round trip."""
    if noise_dbfs is not None:
        pcm = add_noise(pcm, noise_dbfs, seed)
    if codec == "alaw":
        return alaw_roundtrip(pcm)
    if codec == "ulaw":
        return ulaw_roundtrip(pcm)
    raise ValueError(f"codec must be 'ulaw' or 'alaw', not {codec!r}")


# --- Level -------------------------------------------------------------------------------------


def rms(pcm: bytes) -> float:
    """RMS level of PCM16 audio, 0..1 of full scale (0.0 for empty input)."""
    if not pcm:
        return 0.0
    x = pcm16_to_float(pcm).astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


def rms_dbfs(pcm: bytes) -> float:
    """RMS level in dBFS (-inf for digital silence)."""
    level = rms(pcm)
    return 20.0 * math.log10(level) if level > 0 else float("-inf")


def scale_to_rms(pcm: bytes, target_dbfs: float = -20.0) -> bytes:
    """Scale PCM16 audio to a target RMS level (clipping at full scale)."""
    level = rms(pcm)
    if level == 0.0:
        return pcm
    gain = 10 ** (target_dbfs / 20.0) / level
    return float_to_pcm16(pcm16_to_float(pcm) * gain)
