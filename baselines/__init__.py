"""Registered reference gates, one module per mechanism; each module cites its paper and equation.

Modules are discovered by convention (``suite.gates.entries.load_baselines`` imports every module here
whose name does not start with an underscore).
"""
