"""The errors the pipeline raises on purpose: each says what is wrong and where."""


class PipelineError(RuntimeError):
    """Base class: a run cannot go on, and nothing was written."""


class DatabaseError(PipelineError):
    """The source database cannot be reached or lacks what the pipeline needs."""


class DatabaseURLError(DatabaseError):
    """The database URL itself is wrong (SQLAlchemy cannot parse it): a setting to fix, no retry can help."""


class DataError(PipelineError):
    """The data as of the run date is unusable (empty, negative, duplicated, out of range)."""


class ModelCheckError(PipelineError):
    """A compiled model disagrees with LightGBM, or features disagree with the model."""
