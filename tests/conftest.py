"""Shared pytest configuration: hypothesis profiles sized for a 2-core CI machine."""

import os

from hypothesis import HealthCheck, settings

# The default profile is derandomized, so a CI run is reproducible; "thorough" explores.
settings.register_profile(
    "default",
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("default"), max_examples=500, derandomize=False
)
# Mutation testing (docs/mutation.md) reruns the tests once per mutant: few examples each.
settings.register_profile("mutation", parent=settings.get_profile("default"), max_examples=10)
settings.load_profile(os.environ.get("TNKIT_HYPOTHESIS_PROFILE", "default"))
