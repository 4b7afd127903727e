"""A rule of the contract broken on a real run: the run is rejected, never ranked.

Raised by the harness's audits (``suite.gates.audit``) and by an untrusted gate's own process
(``suite.gates.host``), whose error crosses back as text and is raised here again (``proxy``).
"""


class AuditViolation(RuntimeError):
    """The gate broke a rule of the contract on the real run."""
