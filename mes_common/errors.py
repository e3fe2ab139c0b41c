"""Base of the domain exceptions: every error carries the facts a user needs, in its message."""


class DomainError(Exception):
    """A refused command. The message names what is wrong and where (order, operation, quantity...)."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
