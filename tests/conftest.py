"""Test-wide setup shared by tests/unit and tests/integration.

Hypothesis profiles: in CI (environment variable ``CI`` is "true", as CI runners set it)
the "ci" profile is loaded: ``derandomize=True`` (the examples are derived from each test
function, so a red CI run is reproducible; it implies ``database=None``) and
``deadline=None`` (a loaded runner is not a failure). It extends Hypothesis' own "ci"
profile (which also prints the reproduction blob and does not fail on slow data
generation). Developers keep Hypothesis' default profile: random examples, a fresh chance
to find a bug on each run. ``pytest --hypothesis-profile=ci`` selects a profile by hand
(the pytest plugin loads it after this module).

Hypothesis (>= 6.13x) loads its built-in "ci" profile by itself whenever a variable named
``CI`` exists, whatever its value; ``CI=false`` or an empty ``CI`` is a developer's
machine here, so the default profile is loaded back then.

This module is imported before any test module, so the profile is loaded before the
tests' own ``settings(...)`` objects are created: those inherit every field they do not
set (derandomize included) from the loaded profile (hypothesis ``settings`` attribute
inheritance), e.g. ``settings(max_examples=40, deadline=None)`` stays derandomized in CI.
"""

import os

from hypothesis import settings

settings.register_profile("ci", parent=settings.get_profile("ci"), derandomize=True, deadline=None)

_ci = os.environ.get("CI")
if _ci == "true":
    settings.load_profile("ci")
elif _ci is not None:
    settings.load_profile("default")
