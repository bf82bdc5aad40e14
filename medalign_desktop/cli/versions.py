"""x"""


def add_parsers(sub) -> None:
    pass
