"""The fuzz suite's hypothesis profile (the checks every outcome meets are in harness.py).

"fuzz" is derandomized (the same examples every run), keeps no example database
(nothing is carried between runs or machines) and has no per-example deadline
(harness.watchdog bounds a hang instead: hypothesis's deadline only reports
slowness after the fact). Each test sets its max_examples (harness.examples) so
that the suite runs 30 to 60 s in all (docs/testing.md). GOMEMU_FUZZ=deep runs
randomized, with ten times as many examples, for a search by hand.
"""

import os

from hypothesis import HealthCheck, settings

DEEP = os.environ.get("GOMEMU_FUZZ") == "deep"
settings.register_profile(
    "fuzz", derandomize=not DEEP, database=None, deadline=None, print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
