"""The prediction service: FastAPI over the chain's outputs and the source database (``make serve``).

The layer above ``tasks``: it asks the chain's own tasks which model serves a date and where its
files are, reads the published forecasts, and computes one series' features online
(:mod:`pipeline.core.online`, proven equal to the batch engine's by the tests). It writes nothing.
"""
