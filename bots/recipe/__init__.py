"""Recipes: YAML files that tell a bot how to work a legacy system, validated up front."""

from .loader import LoadedRecipe, load_recipe
from .model import Recipe, recipe_model
from .steps import StepBase, walk_steps

__all__ = ["LoadedRecipe", "Recipe", "StepBase", "load_recipe", "recipe_model", "walk_steps"]
