"""CSV imports of prospects: read any file safely, map its columns, check it, run it in
batches as a background job, and report every refused row with its line."""

from engine.services.imports.checking import (
    CheckState,
    DryRun,
    dry_run,
    get_check,
    request_check,
    run_check,
)
from engine.services.imports.mapping import FIELDS, SKIP, check_mapping, suggest_mapping
from engine.services.imports.reading import (
    MAX_CELL_CHARS,
    MAX_UPLOAD_BYTES,
    ImportFileError,
    decode_upload,
)
from engine.services.imports.recovery import STALE_AFTER, resume_import, stop_stale_imports
from engine.services.imports.running import BATCH_ROWS, error_report, run_import
from engine.services.imports.service import (
    ImportView,
    Preview,
    discard_import,
    get_import,
    list_imports,
    preview_import,
    refused_rows,
    set_mapping,
    start_import,
    upload_import,
)

__all__ = [
    "BATCH_ROWS",
    "FIELDS",
    "MAX_CELL_CHARS",
    "MAX_UPLOAD_BYTES",
    "SKIP",
    "STALE_AFTER",
    "CheckState",
    "DryRun",
    "ImportFileError",
    "ImportView",
    "Preview",
    "check_mapping",
    "decode_upload",
    "discard_import",
    "dry_run",
    "error_report",
    "get_check",
    "get_import",
    "list_imports",
    "preview_import",
    "refused_rows",
    "request_check",
    "resume_import",
    "run_check",
    "run_import",
    "set_mapping",
    "start_import",
    "stop_stale_imports",
    "suggest_mapping",
    "upload_import",
]
