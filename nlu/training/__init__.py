"""Training and evaluation of the intent models; nothing on the runtime path imports this.

The runtime (``nlu.load_classifier``, the linear, student and ensemble classifiers, rules,
slots, custom intents) lives in ``nlu``; this package holds what only training and offline
evaluation need, the way ``speech.adapt`` holds the ASR fine-tuning:

- ``dataset``: the labelled data, its taxonomy mapping (``taxonomy``) and the held-out split;
- ``augment``: ASR-noise and dialect variants of training utterances;
- ``train``: the char/pinyin linear model (scikit-learn);
- ``metrics``: macro-F1 and the confusion matrix;
- ``distill``: teacher -> student -> int8 (torch; ``python -m nlu.training.distill``).

Training data is raw text, so it is put in canonical form (``core.text``) where it is read
(``nlu.prepare.raw_model_text``); the models see it exactly as they see recognizer output.
"""
