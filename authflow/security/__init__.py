"""Security primitives: password hashing, tokens, one-time codes, encryption."""
