"""Knowledge answers: a campaign's knowledge file and retrieval over it.

``base`` is the interface the call flow imports (``KnowledgeBase``, ``Answer``); ``file`` reads
and checks a knowledge file; ``lexical`` and ``hybrid`` are the engines; ``fake`` serves unit
tests. Nothing heavy is imported here: ``callflow`` imports ``nlu.knowledge.base``.
"""
