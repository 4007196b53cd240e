"""The accuracy panel (``make bench-accuracy``): the pipeline and the mlforecast reference over many worlds and origins.

Modules: ``cases`` (the panel, declared), ``worlds`` (a case's world, kept), ``m5real`` (the real
M5 series as Kaggle files), ``pipeline_run`` (the pipeline's forecast and evaluation of an
origin under the configuration under test), ``folders`` (its output folders), ``peer`` (the
mlforecast reference, kept), ``scores`` (one origin's numbers), ``runner`` (the command line),
``table`` (docs/accuracy-panel.md and the comparison of two configurations).
"""
