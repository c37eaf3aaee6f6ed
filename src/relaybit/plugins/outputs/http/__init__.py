"""The ``http`` output: records as JSON, NDJSON, msgpack or GELF over HTTP, through an Upstream."""
