"""The one exception type a user can cause; the CLI prints it as a single line."""


class LincirError(Exception):
    """A problem with the user's input: the message names the file, record or option at fault."""
