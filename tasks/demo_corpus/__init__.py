"""The embedded bilingual demo corpus (dvc stage ``demo_corpus``): ``python -m tasks.demo_corpus.generate``."""
