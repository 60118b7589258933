"""Ctrl-C inside a database call reaches the import command as the database error that the
rollback after it raised; the command must still see it as an interruption (exit 130)."""

from __future__ import annotations

from sla_engine.cli.ingest_cmds import _caused_by_interrupt


def _raised_during(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit context is what is under test
    except BaseException as caught:
        return caught


def test_a_database_error_raised_while_handling_ctrl_c_is_an_interrupt() -> None:
    error = _raised_during(
        RuntimeError("another command is already in progress"), KeyboardInterrupt()
    )
    assert _caused_by_interrupt(error)


def test_a_plain_database_error_is_not_an_interrupt() -> None:
    assert not _caused_by_interrupt(RuntimeError("connection refused"))
    assert not _caused_by_interrupt(_raised_during(RuntimeError("b"), ValueError("a")))
