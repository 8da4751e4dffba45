"""rotator: a Kubernetes operator that rotates credentials with zero downtime."""

__version__ = "0.1.0"
