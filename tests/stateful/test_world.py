"""Random timelines over the whole simulated world (see sim.testing).

CI runs a fixed, derandomized set of examples; `scripts/fuzz` runs many random ones
(`STATEFUL_EXAMPLES`), which is how the lease bugs in docs/decisions.md were found."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from sim.testing import InstallsMachine, WorldMachine

EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", "60"))

TestWorld = WorldMachine.TestCase
TestWorld.settings = settings(max_examples=EXAMPLES, stateful_step_count=25, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])

TestInstalls = InstallsMachine.TestCase
TestInstalls.settings = settings(max_examples=EXAMPLES, stateful_step_count=30, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])
