"""Registered reference gates, one module per mechanism; each module cites its paper and equation.

Modules are discovered by convention: the gate registry (``suite.gates.entries.gates``) imports
every module here whose name does not start with an underscore.
"""
