"""The ``rkat`` command line: sessions, streaming turns, config and models from a shell.

The CLI runs the host in-process (no server): each invocation opens the realm,
does its one thing through :class:`actors.SessionService` and exits. Modules:

* ``main``      the console-script entry point: argv rewrite, exit codes, ``Error: ...``
* ``argv``      the prompt-first shorthand (``rkat "hi"`` is ``rkat run "hi"``)
* ``app``       the root command group, its aliases and the realm options
* ``context``   which realm an invocation serves and where it lives
* ``run``       ``run``, ``c``/``continue`` and ``resume``
* ``turn``      one turn: streaming, the spinner, Ctrl-C as an interrupt
* ``render``    stream views (primary / mux / focus) and result summaries
* ``handles``   resume targets: ``last``, ``~N``, prefixes and suffixes, full ids
* ``sessions``, ``config``, ``models``  the other verbs
* ``inputs``    ``--param``/``--label`` values and a prompt from stdin

Heavy modules (the actor runtime, provider SDKs) are imported inside commands,
so ``rkat --help`` stays fast.
"""
