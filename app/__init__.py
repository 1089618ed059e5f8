"""The composition root: the only package that knows every other one.

``config`` loads config.yaml and its environment overrides; ``engines`` builds each engine
family by the name the config gives it, typed as that family's interface; ``runtime`` starts a
node's engines in dependency order and closes them in reverse; ``node`` (`main.py run`) and
``demo`` (`main.py demo`, `main.py callee`) run inside a ``Runtime``. Nothing else is imported
here, so `import app.config` stays light; the native thread pools are sized first, before
anything loads numpy (``core.threads``).
"""

from core.threads import pin_native_threads

pin_native_threads()
