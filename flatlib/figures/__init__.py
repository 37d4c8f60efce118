"""Figures and slider UIs of the book's chapters, one module per part of the paper.

Each function returns a :class:`matplotlib.figure.Figure` or a
:class:`flatlib.widgets.SliderFigure`; the mathematics they draw comes from
:mod:`flatlib.scalar`, :mod:`flatlib.linear` and :mod:`flatlib.hessian`.
"""
