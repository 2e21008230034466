"""Measuring helpers of the analysis tools, beside the scripts that use them (as mmseg's
``tools/analysis_tools/``): the speed / memory benchmark (``bench_*``, script ``benchmark.py``)
and the batch-padding share of training batches (``batch_padding``, script
``padding_share.py``).

They time the library's own code paths and re-implement none of them. Import them as
``tools.analysis_tools.<module>`` with the repository root on ``sys.path`` (the scripts put it
there; the tests' ``conftest.py`` does too).
"""
