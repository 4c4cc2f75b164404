"""Quizzes on ``quiz`` lessons: definitions, grading, attempts (issue 16)."""
