"""Files written whole or not at all: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path beside `path` (hidden, this process's own) to write to; when the
    block ends without an error it replaces `path` in one rename, otherwise it is removed."""
    folder, name = os.path.split(os.fspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """`text` to `path` (UTF-8), whole or not at all."""
    with replaced_atomically(path) as temporary, \
            open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
