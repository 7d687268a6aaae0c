"""One ``error:`` line for a server that cannot start, instead of a traceback.

trio nurseries wrap what fails inside them in exception groups, nested once per
nursery. A port in use or a corrupt ``config.toml`` is one error the operator can
fix: :func:`single_error` finds it, so the entry point prints its message.
"""

from __future__ import annotations

__all__ = ["single_error"]


def single_error(exc: BaseException) -> BaseException:
    """The one error inside (nested) one-member exception groups, else ``exc`` itself.

    Groups whose other members are only cancellations count as one-member groups.
    """
    import trio

    while isinstance(exc, BaseExceptionGroup):
        members = [e for e in exc.exceptions if not isinstance(e, trio.Cancelled)]
        if len(members) != 1:
            return exc
        exc = members[0]
    return exc
