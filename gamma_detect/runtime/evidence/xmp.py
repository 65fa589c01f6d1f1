"""XMP packets: the IPTC DigitalSourceType and the other Iptc4xmpExt fields, and xmp:CreatorTool.

Parsed with the standard library's expat after the size cap, refusing any DOCTYPE (XMP never has
one) as the parser meets it, before the declarations inside it: that closes the entity-expansion
attacks in every encoding (a byte search for "<!DOCTYPE" missed a UTF-16 packet, found by fuzzing).
Unsigned: anybody can write these fields, so an AI source type is `strong`, a capture source type
only `weak`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from . import sourcetypes
from .config import EvidenceConfig
from .items import Evidence, EvidenceError

IPTC_EXT = "{http://iptc.org/std/Iptc4xmpExt/2008-02-29/}"
CREATOR_TOOL = "{http://ns.adobe.com/xap/1.0/}CreatorTool"
RDF_RESOURCE = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}resource"
# IPTC 2025 AI fields that may hold the prompt: returned to the client, never logged.
PRIVATE_FIELDS = frozenset({"AIPromptInformation", "AIPromptWriterName"})
MAX_FIELDS, MAX_VALUE_CHARS = 32, 2000


class _NoDoctype(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise EvidenceError("xmp_malformed", "the XMP packet declares a DOCTYPE or an entity, which XMP never does")


def parse(packet: bytes | str, config: EvidenceConfig) -> dict[str, str]:
    """The Iptc4xmpExt fields (by local name) and CreatorTool of one packet, first value of each."""
    raw = packet.encode("utf-8", "replace") if isinstance(packet, str) else packet
    if len(raw) > config.max_xmp_bytes:
        raise EvidenceError("xmp_too_large", f"the XMP packet holds {len(raw)} bytes, over the "
                            f"{config.max_xmp_bytes}-byte limit")
    parser = ET.XMLParser(target=_NoDoctype())
    try:
        parser.feed(raw.strip(b"\x00 \r\n\t"))
        root = parser.close()
    except ET.ParseError as exc:
        raise EvidenceError("xmp_malformed", f"the XMP packet is not well-formed XML ({exc})") from None
    fields: dict[str, str] = {}

    def keep(name: str, value: str | None) -> None:
        if value and value.strip() and name not in fields and len(fields) < MAX_FIELDS:
            fields[name] = value.strip()[:MAX_VALUE_CHARS]

    for element in root.iter():
        for attribute, value in element.attrib.items():
            if attribute.startswith(IPTC_EXT):
                keep(attribute[len(IPTC_EXT):], value)
            elif attribute == CREATOR_TOOL:
                keep("CreatorTool", value)
        if element.tag.startswith(IPTC_EXT):
            # Simple value as text, a URI as rdf:resource, a structure's first leaf text otherwise.
            leaf = next((e.text for e in element.iter() if e.text and e.text.strip()), None)
            keep(element.tag[len(IPTC_EXT):], element.get(RDF_RESOURCE) or leaf)
        elif element.tag == CREATOR_TOOL:
            keep("CreatorTool", element.text)
    return fields


def read(packet: bytes | str, config: EvidenceConfig) -> list[Evidence]:
    fields = parse(packet, config)
    public = {k: v for k, v in fields.items() if k not in PRIVATE_FIELDS}
    private = {k: v for k, v in fields.items() if k in PRIVATE_FIELDS}
    items = []
    source_type = fields.get("DigitalSourceType")
    if source_type:
        reason = sourcetypes.reason(source_type)
        strength = "strong" if reason in ("ai_generated", "ai_edited") else "weak"
        items.append(Evidence(source="xmp", status="ok", strength=strength, reason=reason,
                              summary=f"IPTC digital source type: {sourcetypes.term(source_type)} (unsigned)",
                              details=public, private=private))
    elif "CreatorTool" in fields:
        items.append(Evidence(source="xmp", status="ok", strength="weak", reason="software",
                              summary=f"Software: {fields['CreatorTool']} (not proof)", details=public))
    return items
