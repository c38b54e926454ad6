"""Tools that help a person write a recipe for a new legacy system."""
