"""AWS Secrets Manager: the store (``secrets_manager``) and its authentication (``auth``)."""
