"""Temporary alias while benchmarks move to robodm_engine.synthetic."""

from robodm_engine.synthetic import *  # noqa: F403
from robodm_engine.synthetic import make_episode, mean_psnr, psnr, raw_bytes_per_step, timestamps_ms  # noqa: F401
