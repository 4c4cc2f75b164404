"""Response bodies from quiz records.  Right answers enter a learner's body only
through ``_results`` and only when ``answers_visible`` says the policy allows."""

from __future__ import annotations

from api.quizzes.schemas import (
    AttemptOut,
    LearnerQuestion,
    QuestionResult,
    QuestionStats,
    QuizLearnerOut,
    QuizOwnerOut,
    QuizStatsOut,
    SubmitOut,
)
from authflow.quizzes import repository as repo
from authflow.quizzes.definitions import QuizDefinition
from authflow.quizzes.grading import (
    answers_visible,
    attempt_order,
    grade,
    learner_question,
    learner_questions,
    qid,
    right_answer,
)
from authflow.quizzes.models import AttemptState
from authflow.quizzes.service import AttemptRecord, QuizRecord


def quiz_out(record: QuizRecord, *, owner: bool) -> QuizOwnerOut | QuizLearnerOut:
    d = record.definition
    common = {
        "id": record.quiz.id,
        "lesson_id": record.lesson.id,
        "version": record.quiz.version,
        "pass_percent": d.pass_percent,
        "time_limit_seconds": d.time_limit_seconds,
        "max_attempts": d.max_attempts,
        "shuffle": d.shuffle,
        "show_answers": d.show_answers,
        "max_score": d.max_score,
    }
    if owner:
        return QuizOwnerOut(**common, questions=list(d.questions))
    return QuizLearnerOut(
        **common,
        questions=[LearnerQuestion.model_validate(learner_question(q)) for q in d.questions],
    )


def attempt_out(record: AttemptRecord) -> AttemptOut:
    attempt = record.attempt
    submitted = attempt.state == AttemptState.SUBMITTED
    return AttemptOut(
        id=attempt.id,
        quiz_id=attempt.quiz_id,
        state="submitted" if submitted else "open",
        started_at=attempt.started_at,
        deadline=attempt.deadline,
        answers=repo.attempt_answers(attempt),
        submitted_by=attempt.submitted_by,
        submitted_at=attempt.submitted_at,
        score=attempt.score,
        max_score=attempt.max_score,
        percent=attempt.percent,
        passed=attempt.passed,
        questions=[
            LearnerQuestion.model_validate(q)
            for q in learner_questions(record.definition, attempt.id)
        ],
        results=_results(record) if submitted else None,
    )


def submit_out(record: AttemptRecord) -> SubmitOut:
    attempt = record.attempt
    assert attempt.submitted_at is not None
    assert attempt.submitted_by is not None
    return SubmitOut(
        id=attempt.id,
        quiz_id=attempt.quiz_id,
        score=attempt.score or 0,
        max_score=attempt.max_score or 0,
        percent=attempt.percent or 0.0,
        passed=bool(attempt.passed),
        submitted_by=attempt.submitted_by,
        submitted_at=attempt.submitted_at,
        questions=_results(record),
    )


def _results(record: AttemptRecord) -> list[QuestionResult]:
    """Per question, in the attempt's order; the right answers only if the policy allows."""
    definition, attempt = record.definition, record.attempt
    graded = {r.id: r for r in grade(definition, repo.attempt_answers(attempt)).questions}
    show = answers_visible(definition.show_answers, submitted=True, passed=attempt.passed)
    results = []
    for question_id, _ in attempt_order(definition, attempt.id):
        question = definition.question(question_id)
        assert question is not None
        result = graded[qid(question)]
        extra = right_answer(question) if show else {}
        results.append(
            QuestionResult(
                id=result.id,
                correct=result.correct,
                points=result.points,
                max_points=question.points,
                **extra,
            )
        )
    return results


def stats_out(stats: repo.QuizStats, definition: QuizDefinition) -> QuizStatsOut:
    return QuizStatsOut(
        attempts=stats.attempts,
        learners=stats.learners,
        pass_rate=stats.pass_rate,
        questions=[
            QuestionStats(id=qid(q), correct_rate=stats.correct_rates.get(qid(q)))
            for q in definition.questions
        ],
    )
