"""HTTP edge of the learning domain: courses, content, enrollment and progress."""
