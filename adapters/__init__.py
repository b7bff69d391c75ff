"""The live world: the official `kubernetes` client and the real Ray head's load.

`adapters.kube.KubeApi` implements `driver.execute.Api` on the official client; the
contract suite (`tests/contract/`) runs the same API tests against it (over HTTP, to
`python -m sim serve`) and against the simulator's in-process API. Still to come (issue 5):
list-and-watch feeding `driver.operator.Operator`, the `ray-operator` process with its
flags, `/metrics`, `/healthz` and `/readyz`; and the Ray load adapter (issue 7).
"""
