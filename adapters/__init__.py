"""The live world: the official `kubernetes` client and the real Ray head's load.

The live Kubernetes adapter (`ray-operator` process) and the Ray load adapter are issues 5
and 7; they implement `driver.execute.Api` and feed the same `driver.operator.Operator` loop
the simulator uses.
"""
