"""Suites: definitions (name, lmms-eval tasks, metrics with direction, primary metric, version) and task folders."""
