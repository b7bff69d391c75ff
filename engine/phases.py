"""The phases a RayCluster's `status.phase` can show, as the project resolved them.

The phases the legacy operator documented are all written, each when it is true.
- `NONE` (the empty string): the operator has not processed the RayCluster yet.
- `UPDATING`: the cluster is launching, or a spec change is being applied, until the head
  pod runs.
- `RUNNING`: the head pod runs and the autoscaler keeps the workers within bounds.
- `RECOVERY` (`AutoscalingExceptionRecovery`): the head died or autoscaling failed; the
  cluster is being restarted with exponential backoff and `autoscalerRetries` went up by 1.
- `ERROR`: the spec is invalid (or an unexpected error); the reason is in the status and in
  a Warning Event. Fixing the spec leaves it.
"""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    NONE = ""
    UPDATING = "Updating"
    RUNNING = "Running"
    RECOVERY = "AutoscalingExceptionRecovery"
    ERROR = "Error"
