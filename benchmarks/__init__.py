"""Speed benchmarks of the FF/FGFF/BP engine: ``python -m benchmarks.run`` (see ``benchmarks/run.py``)."""
