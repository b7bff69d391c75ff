"""The loop shared by both worlds: Kubernetes objects in, engine events; actions out, API calls."""
