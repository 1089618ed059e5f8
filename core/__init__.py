"""The shared kernel: vocabularies and formats every package speaks. Imports nothing of ours.

- `core.audio`: the phone audio frame format (8 kHz, PCM16, 20 ms) and duration helpers.
- `core.vocab`: outcomes, dispositions and grades, as stored, reported and sent to the CRM.
- `core.text`: the one text normaliser (NFKC width, traditional -> simplified).
"""
