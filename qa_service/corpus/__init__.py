"""The curated corpus: what the clinic's FAQ says, as staff edit it.

Owns the entry schema and the YAML files (``entries``: ``FaqEntry``, ``load_corpus``, atomic
writes), reading human-edited YAML with file:line errors (``yamlfile``), near-duplicate entries
(``duplicates``) and the importers that turn pages and spreadsheets into corpus files
(``importers``). Everything else reads the corpus through ``qa_service.corpus.entries``.
"""
