"""The learning domain's core: courses, content, enrollment and progress.

Used by the API (``api/courses``) and by activities; it never imports either."""
