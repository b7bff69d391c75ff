"""The live world: the official `kubernetes` client and the real Ray head's load.

`adapters.kube.KubeApi` implements `driver.execute.Api` on the official client; the
contract suite (`tests/contract/`) runs the same API tests against it (over HTTP, to
`python -m sim serve` and a real kube-apiserver) and against the simulator's in-process
API. `adapters.process` lists and watches into `driver.operator.Operator`;
`adapters.__main__` is the `ray-operator` process (flags, `/metrics`, `/healthz`,
`/readyz`); `adapters.ray_load` reads the real Ray heads' load.
"""
