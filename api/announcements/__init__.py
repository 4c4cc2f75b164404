"""Announcements: broadcasts to all users, a role or a course's learners."""
