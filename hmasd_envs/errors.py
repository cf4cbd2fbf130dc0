"""The one exception type of hmasd_envs."""


class EnvError(ValueError):
    """An environment id, argument or space that HMASD cannot use.

    The message is one line: it names the env id and the offending agent or space and says what
    is supported, so that it can be shown to a user as it is.
    """
