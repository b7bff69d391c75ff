"""Random timelines over the whole simulated world (see sim.testing)."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from sim.testing import InstallsMachine, WorldMachine

TestWorld = WorldMachine.TestCase
TestWorld.settings = settings(max_examples=60, stateful_step_count=25, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])

TestInstalls = InstallsMachine.TestCase
TestInstalls.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])
