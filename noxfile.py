"""GateBench's entry points. `nox -l` lists them; `nox -s NAME -- ARGS` passes ARGS on.

Every session installs what it needs into its own virtual environment. torch is installed first and
pinned to 2.13.0, the CPU build this project's machines carry on disk: any other version makes pip
download a multi-GB CUDA build.
"""

from __future__ import annotations

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["lint", "tests"]

PYTHON = "3.11"
TORCH = "torch==2.13.0"


def _install(session: nox.Session, extras: str = "") -> None:
    session.install(TORCH)
    session.install("-e", f".[{extras}]" if extras else ".")
    session.run(
        "python",
        "-c",
        "import sys, torch, numpy, pydantic, datasets; "
        "print(f'python {sys.version.split()[0]}, torch {torch.__version__}, '"
        "f'numpy {numpy.__version__}, pydantic {pydantic.__version__}, '"
        "f'datasets {datasets.__version__}')",
    )


def _pytest(session: nox.Session, *marker_args: str) -> None:
    session.run("pytest", "--strict-markers", "--strict-config", *marker_args, *session.posargs)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The fast test suite (what CI runs): everything but the `slow` and `gpu` markers."""
    _install(session, "test")
    _pytest(session, "-m", "not slow and not gpu")


@nox.session(name="tests-slow", python=PYTHON, default=False)
def tests_slow(session: nox.Session) -> None:
    """Paper-scale reproduction tests (minutes on 2 cores)."""
    _install(session, "test")
    _pytest(session, "-m", "slow")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(name="run-all", python=PYTHON, default=False)
def run_all(session: nox.Session) -> None:
    """Every task × every registered gate × the spec's seeds, default profile, on the CPU; then
    the results site (the last line prints the path to open)."""
    _install(session)
    session.run("gatebench", "run", "--profile", "default", "--site", *session.posargs)


@nox.session(python=PYTHON, default=False)
def run(session: nox.Session) -> None:
    """`gatebench run` with the arguments after `--` (e.g. -- --task transition/anticipation)."""
    _install(session)
    session.run("gatebench", "run", *session.posargs)


@nox.session(python=PYTHON, default=False)
def site(session: nox.Session) -> None:
    """Render the static results site from results/ (arguments go to `gatebench site`)."""
    _install(session)
    session.run("gatebench", "site", *session.posargs)


@nox.session(name="new-submission", python=PYTHON, default=False)
def new_submission(session: nox.Session) -> None:
    """Scaffold submissions/NAME from the template: `nox -s new-submission -- NAME`."""
    _install(session)
    session.run("gatebench", "new-submission", *session.posargs)


@nox.session(python=PYTHON, default=False)
def submit(session: nox.Session) -> None:
    """Check and run a submission: `nox -s submit -- submissions/NAME`."""
    _install(session)
    session.run("gatebench", "submit", *session.posargs)


@nox.session(python=PYTHON, default=False)
def reproduce(session: nox.Session) -> None:
    """The paper profile (the papers' exact scale), then the claims' verdicts."""
    _install(session)
    session.run("gatebench", "run", "--profile", "paper", *session.posargs)


@nox.session(python=PYTHON, default=False)
def bench(session: nox.Session) -> None:
    """Speed measurements: per-epoch cost of each gate, the paper ablation's wall time, the
    untrusted-gate proxy's overhead and Dask's 2-worker speed-up."""
    _install(session, "dask")
    session.run("python", "-m", "suite.bench", *session.posargs)
