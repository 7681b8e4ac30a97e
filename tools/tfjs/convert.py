"""Convert a SavedModel to a TF.js graph model with the official converter (run in tools/tfjs/.venv).

    tools/tfjs/.venv/bin/python tools/tfjs/convert.py SAVED_MODEL_DIR OUT_DIR

tensorflowjs' converters import tensorflow_decision_forests and jax at the top, only to support Decision
Forest models and JAX functions; converting a plain SavedModel never touches either, and installing them
drags in a protobuf clash, flax and jaxlib. Empty stand-in modules are registered before the import, and
nothing else is changed.
"""

import sys
import types


def _stand_in(name: str, **attributes) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    sys.modules.setdefault(name, module)
    return module


# Import the real libraries first: Keras probes for jax at import time and must not see the stand-in.
import keras  # noqa: E402,F401
import tensorflow  # noqa: E402,F401
import tensorflow_hub  # noqa: E402,F401

_stand_in("tensorflow_decision_forests")
_stand_in("jax", experimental=_stand_in("jax.experimental", jax2tf=_stand_in("jax.experimental.jax2tf")))

from tensorflowjs.converters import tf_saved_model_conversion_v2  # noqa: E402


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        import tensorflow as tf
        import tensorflowjs

        print(f"TF.js converter ready: tensorflowjs {tensorflowjs.__version__}, tensorflow {tf.__version__}")
        return 0
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    saved_model_dir, out_dir = sys.argv[1:]
    tf_saved_model_conversion_v2.convert_tf_saved_model(
        saved_model_dir, out_dir, signature_def="serving_default", saved_model_tags="serve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
