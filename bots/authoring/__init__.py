"""Tools for a recipe's author: ``try`` a section, ``explain`` a step, ``scaffold`` a recipe."""
