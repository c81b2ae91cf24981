"""The one error the publisher reports: a message for the operator, and exit status 1."""


class OtaError(Exception):
    """Something the operator must fix; the message says what."""
