"""The error a user's data or model file raises: one line, what is wrong and the fix."""


class DataError(ValueError):
    """Bad data or a bad model file: the message says what is wrong and how to fix it."""
