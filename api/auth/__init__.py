"""Account endpoints: registration, verification, sessions and passwords."""
