"""Email preferences and one-click unsubscribe."""
