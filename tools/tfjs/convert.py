"""Convert a SavedModel to a TF.js graph model with the official converter (run in tools/tfjs/.venv).

    tools/tfjs/.venv/bin/python tools/tfjs/convert.py SAVED_MODEL_DIR OUT_DIR

tensorflowjs' converter module imports tensorflow_decision_forests at the top, only to support Decision
Forest models; converting a plain SavedModel never touches it, and importing the real package fails on a
protobuf clash. An empty stand-in module is registered before the import; nothing else is changed.
"""

import sys
import types

sys.modules.setdefault("tensorflow_decision_forests", types.ModuleType("tensorflow_decision_forests"))

from tensorflowjs.converters import tf_saved_model_conversion_v2  # noqa: E402


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    saved_model_dir, out_dir = sys.argv[1:]
    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model_dir, out_dir, signature_def="serving_default", saved_model_tags="serve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
