"""Raw NER formats: one module per format, each holding that format's reader.

Read a file with :func:`read_file`, which checks the file as a whole, then streams it with the
reader of its :class:`FormatSpec`'s format::

    for batch in read_file(path, FormatSpec("conll", "en", scheme="bioes")):
        batch.samples, batch.rejects  # polars frames

Adding a format means adding one file, ``tasks/formats/<name>.py``, that ends with::

    FORMAT = Format(name="<name>", read=read)

:func:`registry` finds it by itself: every module of this package whose name does not start with
``_`` is a format, and one without a matching ``FORMAT`` is an error. :data:`FORMATS`, the
check of :class:`FormatSpec` and :func:`read_file` follow. Modules starting with ``_`` hold what
formats share: ``_base`` (spec, batches, errors, the registry, file checks and chunked reading)
and ``_jsonrecords`` (JSON lines and arrays streamed record by record). A JSON format only writes
``extract(payload, spec)``, which yields ``(text, spans)`` per sample or raises ``BadRecord``
with the reject reason, and passes ``read=json_reader(extract)``; see ``cmeee.py``. A dataset of
the new format is then declared in ``tasks/catalog/datasets/`` with ``format: <name>``.
"""

from tasks.formats._base import (
    REJECT_COLUMNS,
    Format,
    FormatSpec,
    ParsedBatch,
    UnreadableFileError,
    likely_cause,
    read_file,
    registry,
)

FORMATS: tuple[str, ...] = tuple(registry())  # every format's name, alphabetical

__all__ = [
    "FORMATS",
    "REJECT_COLUMNS",
    "Format",
    "FormatSpec",
    "ParsedBatch",
    "UnreadableFileError",
    "likely_cause",
    "read_file",
    "registry",
]
