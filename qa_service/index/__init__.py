"""The search index on disk and in memory.

Owns the versioned build folders and their manifest, atomic publishing and rollback, the vector
index (the only importer of faiss) and ``FaqIndex`` (``store``); the keyword (BM25) index and its
spelling corrector (``keywords``); the build caches (``embedcache``, ``cachefiles``) and numpy
helpers (``arrays``). Builds write it (``qa_service.build``); answering reads it.
"""
