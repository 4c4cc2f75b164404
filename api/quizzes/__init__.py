"""Routes of the quizzes domain (``/lessons/{id}/quiz``, ``/quizzes``, ``/attempts``)."""
