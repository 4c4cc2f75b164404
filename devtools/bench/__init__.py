"""``authflow bench``: the registration-spike benchmark and the learning scenarios (see
``docs/benchmarks.md``).

Modules: ``stats`` (the arithmetic, unit-tested), ``sink`` (an SMTP sink that
timestamps every send), ``load`` (load generator and /healthz prober, run as separate
processes), ``stack`` (starts or attaches to a platform), ``monitor`` (CPU and memory of
the stack's processes), ``scenarios`` (what each scenario does and measures),
``report`` (tables, JSON, charts) and ``cli``.  The learning scenarios, ``learn`` and
``quiz``: ``seed`` (courses, quizzes and signed-in learners written into the stack's
database), ``learners`` (the learners, run as a separate process) and ``learning``
(what one run does and measures).  ``announce``: one announcement to N users beside
code traffic; ``timing``: known vs unknown email answer times; ``floor``: the machine's
CPU floor of one registration.
"""
