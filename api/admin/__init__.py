"""Admin endpoints: users, roles and permissions, code deliveries, audit log."""
