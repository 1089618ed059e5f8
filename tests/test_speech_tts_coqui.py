"""CoquiTts: model folder discovery, the extra's error message, and loading + synthesis of a
tiny randomly initialized VITS model that the test builds (when coqui-tts is importable)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from speech import audio
from speech.tts.coqui import EXTRA_HINT, CoquiModelError, CoquiTts, find_model_files


def _coqui_import_error() -> str | None:
    try:
        import TTS  # noqa: F401
        from TTS.tts.models.vits import Vits  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a torchaudio built for another torch
        first = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {first[0] if first else ''}"
    return None


_IMPORT_ERROR = _coqui_import_error()
needs_coqui = pytest.mark.skipif(
    _IMPORT_ERROR is not None,
    reason=f"coqui-tts not importable ({_IMPORT_ERROR}); pip install .[coqui] with a torch that "
    "has a matching torchaudio + torchcodec (none exists on PyPI for the CPU torch 2.13.0)",
)


def test_model_folder_discovery(tmp_path: Path) -> None:
    with pytest.raises(CoquiModelError, match="config.json"):
        find_model_files(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CoquiModelError, match="checkpoint"):
        find_model_files(tmp_path)
    (tmp_path / "checkpoint_100.pth").write_bytes(b"x")
    (tmp_path / "best_model.pth").write_bytes(b"x")
    assert find_model_files(tmp_path)[1].name == "best_model.pth"


def test_missing_extra_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.pth").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "TTS", None)  # import TTS -> ImportError
    with pytest.raises(ImportError, match=r"pip install \.\[coqui\]") as info:
        CoquiTts(tmp_path)
    assert EXTRA_HINT in str(info.value)


def _tiny_vits(folder: Path) -> Path:
    import torch
    from TTS.config.shared_configs import BaseAudioConfig
    from TTS.tts.configs.shared_configs import CharactersConfig
    from TTS.tts.configs.vits_config import VitsArgs, VitsConfig
    from TTS.tts.models.vits import Vits

    chars = CharactersConfig(
        characters_class="TTS.tts.utils.text.characters.Graphemes", pad="_", eos="~", bos="^",
        blank="#", characters="abcdefghijklmnopqrstuvwxyz12345", punctuations=" ,.?!",
        is_unique=True, is_sorted=True,
    )  # fmt: skip
    args = VitsArgs(
        hidden_channels=16, hidden_channels_ffn_text_encoder=32, num_layers_text_encoder=1,
        num_layers_flow=1, num_layers_posterior_encoder=1, resblock_type_decoder="2",
        resblock_kernel_sizes_decoder=[3], resblock_dilation_sizes_decoder=[[1, 3]],
        upsample_rates_decoder=[8, 8, 4], upsample_initial_channel_decoder=32,
        upsample_kernel_sizes_decoder=[16, 16, 8], use_sdp=False, init_discriminator=False,
    )  # fmt: skip
    config = VitsConfig(
        model_args=args, characters=chars, use_phonemes=False, text_cleaner="basic_cleaners",
        add_blank=False,
        audio=BaseAudioConfig(sample_rate=16000, hop_length=256, win_length=1024,
                              fft_size=1024, num_mels=80),
    )  # fmt: skip
    torch.manual_seed(0)
    model = Vits(config)
    folder.mkdir(parents=True, exist_ok=True)
    config.save_json(str(folder / "config.json"))
    torch.save({"model": model.state_dict()}, folder / "model.pth")
    return folder


@needs_coqui
@pytest.mark.asyncio
async def test_loads_and_synthesizes_a_tiny_vits_at_8khz(tmp_path: Path) -> None:
    tts = CoquiTts(_tiny_vits(tmp_path / "tiny-vits"), frontend="pinyin")
    assert tts.model_rate == 16000 and tts.version.startswith("coqui-")
    assert tts.to_model_text("您好，每月300元") == "nin2 hao3, mei3 yue4 san1 bai3 yuan2"
    pcm = await tts.synthesize("您好，每月300元")
    assert pcm and len(pcm) % 2 == 0 and audio.duration_s(pcm) > 0.1
    frames = [f async for f in tts.synthesize_stream("您好，每月300元。现在方便吗？")]
    assert frames and {len(f) for f in frames} == {320}
    assert await tts.synthesize("。") == b""
