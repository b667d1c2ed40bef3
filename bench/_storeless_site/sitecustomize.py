"""Run at start-up by the holders of ``bench_fanout_ab.py --storeless`` (this directory heads
their ``PYTHONPATH``): their stores write nothing per call. See ``bench/_storeless.py``."""

from bench._storeless import strip_classes

strip_classes()
