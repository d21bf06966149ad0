"""The deployment tests' fixtures (defined in ``ownimage``)."""

from tests.deploy.ownimage import own_image, postgres_url

__all__ = ["own_image", "postgres_url"]
