"""The embedding model: the ``Embedder`` protocol, the sentence-transformers embedder (the only
importer of sentence_transformers and so of torch) and its training loop (``embedder``), the fast
encoder on packed tokens (``packed``), and keeping a server's memory flat around it (``memory``).
"""
