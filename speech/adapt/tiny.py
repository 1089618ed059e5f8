"""A small randomly initialized Whisper checkpoint with the real multilingual tokenizer, for
tests and smoke runs of the adaptation pipeline (it recognizes nothing)."""

from __future__ import annotations

from pathlib import Path


def make_tiny_whisper(
    out: Path, tokenizer_file: Path, *, d_model: int = 64, layers: int = 1, seed: int = 0
) -> Path:
    """Write a HF Whisper folder (config, weights, tokenizer, feature extractor) to `out`."""
    import torch
    from transformers import (  # type: ignore[attr-defined]
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperTokenizerFast,
    )

    tokenizer = WhisperTokenizerFast(tokenizer_file=str(tokenizer_file))
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = WhisperConfig(
        vocab_size=51865, num_mel_bins=80, d_model=d_model,
        encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_source_positions=1500, max_target_positions=448,
        decoder_start_token_id=tokenizer.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    WhisperFeatureExtractor(feature_size=80).save_pretrained(out)
    return out
