"""Reading crawls: WARC files in, pages with their image references (archived bytes or not) out.

``warc`` reads records by offset, ``index`` is the first pass (an on-disk SQLite index of every capture),
``html`` finds a page's image references, ``pages`` is the second pass that joins them. Nothing here knows
the detector: the drivers (server/crawl_scan.py) score what this package reads.
"""
