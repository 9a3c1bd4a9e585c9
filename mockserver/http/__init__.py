"""HTTP plumbing shared by the vendor adapters: errors, validation, security, middleware."""
