"""Train: the gradient-descent driver (``fit``), its history, schedules and stopping rules.

``reference.NumpyModel`` is the plain NumPy meaning of the training loop that compiled
models implement, and the oracle they are tested against.
"""
from symgrad.train.driver import EarlyStopping, fit
from symgrad.train.history import History
from symgrad.train.reference import NumpyModel
from symgrad.train.schedules import (Constant, CosineDecay, ExponentialDecay, InverseTimeDecay,
                                     Schedule, StepDecay)
from symgrad.train.sweeps import sweep
from symgrad.train.sweep_result import SweepResult

__all__ = ["Constant", "CosineDecay", "EarlyStopping", "ExponentialDecay", "History",
           "InverseTimeDecay", "NumpyModel", "Schedule", "StepDecay", "SweepResult", "fit", "sweep"]
