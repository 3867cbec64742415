"""Data loaders of the experiments and the semi-supervised container they produce."""

from training.data.semi import (
    FunctionSource,
    SemiSupervisedData,
    Source,
    SubsetSource,
    TensorSource,
    make_semi_supervised,
    split_supervision,
    subset,
)

__all__ = [
    "FunctionSource",
    "SemiSupervisedData",
    "Source",
    "SubsetSource",
    "TensorSource",
    "make_semi_supervised",
    "split_supervision",
    "subset",
]
