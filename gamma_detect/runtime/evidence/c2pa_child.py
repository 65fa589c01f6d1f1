"""Runs c2pa-python's Reader on one file in its own process (started by ``c2pa.py``, never imported).

Input on stdin: a 4-byte big-endian length, that many bytes of settings JSON
({"mime", "memory_bytes", "cpu_seconds", "c2pa": <c2pa-rs settings>}), then the file's bytes.
Output on stdout: one JSON object, {"store": <Reader.json()> | null, "state": ...} or {"error": ...}.
Run as a script (not ``-m``) so that it imports c2pa and the standard library only.
"""

import io
import json
import resource
import struct
import sys


def main() -> None:
    raw = sys.stdin.buffer.read()
    (length,) = struct.unpack(">I", raw[:4])
    settings = json.loads(raw[4:4 + length])
    data = raw[4 + length:]
    # Limits of the hostile-input sandbox, set before the native library is loaded.
    resource.setrlimit(resource.RLIMIT_AS, (settings["memory_bytes"], settings["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_CPU, (settings["cpu_seconds"], settings["cpu_seconds"]))
    import c2pa

    try:
        context = c2pa.Context.from_dict(settings["c2pa"])
        with c2pa.Reader(settings["mime"], io.BytesIO(data), context=context) as reader:
            result = {"store": json.loads(reader.json()), "state": reader.get_validation_state()}
    except c2pa.C2paError as exc:
        text = str(exc)
        # No manifest in the file is the common case, not a failure.
        result = {"store": None} if type(exc).__name__.endswith("ManifestNotFound") \
            else {"error": f"{type(exc).__name__}: {text[:300]}"}
    sys.stdout.write(json.dumps(result))


if __name__ == "__main__":
    main()
