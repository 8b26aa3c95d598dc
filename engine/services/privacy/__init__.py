"""The data-protection rights of the people Nurture emails: erasure and export."""

from engine.services.privacy.erase import ERASED_EXIT_REASON, ErasureReport, erase_prospect
from engine.services.privacy.export import EXPORT_FORMAT, erased_record, export_prospect

__all__ = [
    "ERASED_EXIT_REASON",
    "EXPORT_FORMAT",
    "ErasureReport",
    "erase_prospect",
    "erased_record",
    "export_prospect",
]
