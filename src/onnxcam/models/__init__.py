"""Small time-series classifiers and the UCR/UEA data they are trained on (demo, tests, bench).

The framework modules (`fcn_torch`, `fcn_keras`) import torch or keras at their top: import them
only where that framework is wanted.
"""
