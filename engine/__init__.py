"""The pure core of the Ray operator.

Everything in this package is a function of its inputs: observed facts arrive as events
(`engine.events`), decisions leave as actions (`engine.actions`), and the state in between
(`engine.state`) is folded by `engine.state.evolve` and read by `engine.planner.plan`.
No module here reads a clock, draws random numbers, performs I/O or imports a Kubernetes
client: the live adapter and the simulator both drive the same core, and any recorded run
can be replayed decision for decision.
"""
