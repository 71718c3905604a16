"""``python -m monitor`` and the ``monitor`` console script (``[project.scripts]``).

The console script is the ``__main__`` that multiprocessing runs again in every extraction
worker it starts (as ``__mp_main__``, to find what the worker may need from it): this module
imports the command line only when called, so under ``monitor run`` (systemd, Docker) a worker
imports no click and no commands (it did: ~25 ms and 2.5 MB in each). ``python -m monitor`` is
never run again there (a ``__main__`` module is skipped).
"""


def main() -> None:
    import gc

    # The command line's modules (click, the commands) live as long as the process: no
    # collection while they load (its passes were ~5 % of their import's instructions, issue
    # 15). `run` and `check-config` turn it off again for their own start (see them).
    gc.disable()
    try:
        from monitor.cli import main as cli
    finally:
        gc.enable()
    cli()


if __name__ == "__main__":
    main()
