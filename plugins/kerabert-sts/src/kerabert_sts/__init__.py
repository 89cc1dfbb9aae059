"""kerabert-sts: a sentence-pair similarity head for kerabert, installed as a plugin.

After `pip install kerabert-sts`, kerabert finds the head through the
`kerabert.heads` entry point `sentence-similarity`: `kerabert heads` lists it, and
`kerabert train --head sentence-similarity ...` trains it.
"""

from kerabert_sts.correlation import pearson, spearman
from kerabert_sts.head import SentenceSimilarityHead, SimilarityPreprocessor

__version__ = "0.1.0"

__all__ = ["SentenceSimilarityHead", "SimilarityPreprocessor", "pearson", "spearman"]
