"""Root pytest configuration: skip the doctests of framework adapters whose framework is missing."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("torch") else ["tnkit/torch/*"]
