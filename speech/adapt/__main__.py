"""python -m speech.adapt --data DIR --base MODEL_DIR --out OUT_DIR"""

import sys

from speech.adapt.cli import main

sys.exit(main())
