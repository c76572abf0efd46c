"""``/api/v1`` controllers, one module per area."""
