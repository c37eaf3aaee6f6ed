"""The ``es`` output: the Elasticsearch / OpenSearch Bulk API through an Upstream."""
