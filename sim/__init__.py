"""The simulated world: an in-memory Kubernetes API, kubelet and Ray, in virtual time."""
