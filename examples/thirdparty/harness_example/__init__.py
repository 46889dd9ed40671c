"""An example third-party harness plugin package (see ../pyproject.toml)."""
