"""REFI-QDA exchange with NVivo, ATLAS.ti, MAXQDA and QualCoder: ``.qdpx`` projects and ``.qdc`` codebooks."""
from .archive import Limits, SafeArchive
from .qdc import read_qdc, write_qdc
from .qdpx import QdpxExport, QdpxImport, export_qdpx, import_qdpx, read_qdpx
from .validate import problems

__all__ = ["Limits", "QdpxExport", "QdpxImport", "SafeArchive", "export_qdpx", "import_qdpx", "problems", "read_qdc",
           "read_qdpx", "write_qdc"]
