"""Temporal activities: everything that touches the database or the mail provider.

Activities are methods of classes built with their dependencies (database, code vault,
mailer, pacer); the worker builds each class once and registers its methods.
"""
