"""Raw NER formats: one module per format, each holding that format's reader and writer.

Read a file with :func:`read_file`, which checks the file as a whole, then streams it with the
reader of its :class:`FormatSpec`'s format; write canonical samples (a frame with ``text`` and
``entities``) with the format's writer, which :func:`read_file` reads back to the same samples::

    spec = FormatSpec("conll", "en", scheme="bioes")
    registry()["conll"].write(samples, path, spec)
    for batch in read_file(path, spec):
        batch.samples, batch.rejects  # polars frames

Adding a format means adding one file, ``tasks/formats/<name>.py``, that ends with::

    FORMAT = Format(name="<name>", read=read, write=write)

:func:`registry` finds it by itself: every module of this package whose name does not start with
``_`` is a format, and one without a matching ``FORMAT`` is an error. :data:`FORMATS`, the
check of :class:`FormatSpec`, :func:`read_file` and the round-trip tests of
``tests/test_formats.py`` follow. Modules starting with ``_`` hold what formats share: ``_base``
(spec, batches, errors, the registry, file checks, chunked reading, tokenization) and
``_jsonrecords`` (JSON lines and arrays streamed record by record, and written). A JSON format
only writes ``extract(payload, spec)``, which yields ``(text, spans)`` per sample or raises
``BadRecord`` with the reject reason, passes ``read=json_reader(extract)``, and writes its records
with ``write_json_lines`` or ``write_json_array``; see ``cmeee.py``. A writer raises
:class:`NotRepresentableError` for samples the format cannot hold (see ``conll.py``), and the
new format joins that test's table of such refusals. A dataset of the new format is then
declared in ``tasks/catalog/datasets/`` with ``format: <name>``.
"""

from tasks.formats._base import (
    REJECT_COLUMNS,
    Format,
    FormatSpec,
    NotRepresentableError,
    ParsedBatch,
    UnreadableFileError,
    likely_cause,
    read_file,
    registry,
    tokenize,
)

FORMATS: tuple[str, ...] = tuple(registry())  # every format's name, alphabetical

__all__ = [
    "FORMATS",
    "REJECT_COLUMNS",
    "Format",
    "FormatSpec",
    "NotRepresentableError",
    "ParsedBatch",
    "UnreadableFileError",
    "likely_cause",
    "read_file",
    "registry",
    "tokenize",
]
