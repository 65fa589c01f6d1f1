"""A crawl scan's Parquet output: one row per (page, image), the columns generated from the contract."""

from __future__ import annotations

import json

from gamma_detect.contract import CRAWL_IMAGE_FIELDS, CRAWL_PAGE_FIELDS, RESULT_FIELDS


def parquet_rows(record: dict) -> list[dict]:
    """One row per (page, image): the contract's page and image fields, then result_<field> per RESULT_FIELDS
    (nested values as JSON text)."""
    page = dict(zip(CRAWL_PAGE_FIELDS, (record["page_url"], record["crawl_date"], record["warc_file"],
                                        record["offset"], record["record_id"])))
    rows = []
    for entry in record["images"]:
        row = dict(page)
        error = entry.get("error") or {}
        row.update({name: entry.get(name) for name in CRAWL_IMAGE_FIELDS})
        row.update(error_code=error.get("code"), error_message=error.get("message"))
        result = entry.get("result") or {}
        for name in RESULT_FIELDS:
            value = result.get(name)
            row[f"result_{name}"] = json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value
        rows.append(row)
    return rows


def parquet_schema():
    import pyarrow as pa

    types = {"page_offset": pa.int64(), "offset": pa.int64(), "http_status": pa.int64(),
             "result_ai_probability": pa.float64(), "result_mask_fraction": pa.float64(), "result_cached": pa.bool_()}
    names = [*CRAWL_PAGE_FIELDS, *CRAWL_IMAGE_FIELDS, *(f"result_{name}" for name in RESULT_FIELDS)]
    return pa.schema([(name, types.get(name, pa.string())) for name in names])


class ParquetOut:
    """Rows written in row groups as pages come (memory bounded), to a temporary file renamed at the end."""
    GROUP_ROWS = 10_000

    def __init__(self, path: str):
        self.check()
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.schema, self.rows = pa, parquet_schema(), []
        self.writer = pq.ParquetWriter(path, self.schema)

    @staticmethod
    def check() -> None:
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:
            raise SystemExit("gamma scan: --parquet needs pyarrow: pip install 'gamma-detect[parquet]'") from exc

    def add(self, record: dict) -> None:
        self.rows += parquet_rows(record)
        if len(self.rows) >= self.GROUP_ROWS:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.writer.write_table(self.pa.Table.from_pylist(self.rows, schema=self.schema))
            self.rows = []

    def close(self) -> None:
        self.flush()
        self.writer.close()
