"""Looking at runs: ``compare`` (FF against FGFF over seeds), ``findings`` (what a page says out loud),
``inspect`` (significance against activity) and ``embeddings`` (t-SNE maps and their separation scores)."""
