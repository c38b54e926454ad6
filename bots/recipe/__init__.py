"""Recipes: YAML files that tell a bot how to work a legacy system, validated up front."""

from .loader import LoadedRecipe, load_recipe
from .model import STEP_TYPES, Recipe, StepBase, walk_steps

__all__ = ["STEP_TYPES", "LoadedRecipe", "Recipe", "StepBase", "load_recipe", "walk_steps"]
