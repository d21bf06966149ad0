import math
from typing import Callable, Dict


class JobEntrypoint:
    def perform(self, x: float, y: float) -> float:
        """Return the distance of the point from the origin."""
        return math.hypot(x, y)

    def auxiliary_endpoints(self) -> Dict[str, Callable]:
        """Dict of custom endpoint paths (besides "/perform") handled by Entrypoint methods"""
        return {
            '/explain': self.explain,
            '/random': self.random,
        }

    def explain(self, x: float, y: float) -> Dict[str, float]:
        """Explain the importance of each coordinate."""
        total = x + y
        return {'x_importance': x / total, 'y_importance': y / total}

    def random(self, start: int = 0, end: int = 10) -> int:
        """Return a number between start and end (always the middle here, for tests)."""
        return (start + end) // 2

    def docs_input_examples(self) -> Dict[str, Dict]:
        """Return mapping of Job's endpoints to corresponding exemplary inputs."""
        return {
            '/perform': {'x': 3, 'y': 4},
            '/explain': {'x': 1, 'y': 3},
            '/random': {'start': 0, 'end': 100},
        }
