"""Hand-written baseline trainers and timing helpers for the symgrad benchmark.

Importing ``bench`` pins every numeric library to one thread (see
``bench.env``); this only takes effect if it happens before numpy / numba /
torch / jax are first imported, so import ``bench`` first in entry points.
"""
from .env import set_single_thread_env

set_single_thread_env()
