"""Root pytest configuration: skip the doctests of framework adapters whose framework is missing."""

import importlib.util

_ADAPTERS = {
    "torch": "tnkit/torch/*",
    "jax": "tnkit/jax/*",
    "peft": "tnkit/torch/peft_interop.py",
}

collect_ignore_glob = [
    pattern for module, pattern in _ADAPTERS.items() if importlib.util.find_spec(module) is None
]
