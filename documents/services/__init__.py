"""Writes to collections and documents, by subsystem: acl (read and manage ACLs), uploads
(documents and versions), queue (what the worker is sent), ingestion (the pipeline), index
(full-text vectors, HNSW indexes), loading (bulk loads)."""
