"""Provenance evidence read from a file's original bytes: C2PA Content Credentials, IPTC/XMP source type,
EXIF, generator parameters and the reference pipelines' invisible watermark; and the rule that
combines them with the pixel verdict. Torch-free.
"""

from ...contract import VERDICT_REASONS
from .combine import Decision, annotate, combine, without_private
from .config import TRUST_ANCHORS_ENV, EvidenceConfig
from .items import ERROR_CODES, REASONS, SOURCES, STATUSES, STRENGTHS, Evidence, EvidenceError
from .reader import read_evidence, reusable_pixels

__all__ = ["ERROR_CODES", "REASONS", "SOURCES", "STATUSES", "STRENGTHS", "TRUST_ANCHORS_ENV", "VERDICT_REASONS",
           "Decision", "Evidence", "EvidenceConfig", "EvidenceError", "annotate", "combine",
           "read_evidence", "reusable_pixels", "without_private"]
