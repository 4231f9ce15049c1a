"""How fastdl puts an error into a message: one line, whatever the library that raised it wrote."""


def one_line(what: object, with_type: bool = False) -> str:
    """``what`` (an exception, or any text) on one line: every run of white space, newlines
    included, becomes one space.

    An exception gives its message, or its type's name when the message is empty; an OSError
    that names a file gives ``<file>: <reason>`` (``[Errno 2] ...`` says less). ``with_type``
    puts the type's name in front (``ValueError: <message>``) when there is a message.
    """
    if not isinstance(what, BaseException):
        return " ".join(str(what).split())
    if isinstance(what, OSError) and what.filename and what.strerror:
        text = f"{what.filename}: {what.strerror}"
    else:
        text = str(what)
    text = " ".join(text.split())
    name = type(what).__name__
    if not text:
        return name
    return f"{name}: {text}" if with_type else text
