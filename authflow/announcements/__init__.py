"""Announcements: broadcasts to many users, sent by one workflow per announcement.

``states`` (the state machines) imports only the standard library, so workflows may use
it; ``models``, ``repository`` and ``service`` are the database side.
"""
